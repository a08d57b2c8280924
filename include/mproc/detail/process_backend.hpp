// SPDX-License-Identifier: MIT
#pragma once
// The process backend: chunks run in worker processes (forked from a fork server, or spawned).
// On the caller's side, submitting threads only queue chunks and wake one I/O thread, which
// hands them to idle workers, reads results and runs callbacks (as Python's result-handler
// thread does).

#include <cstddef>
#include <memory>

#include "mproc/detail/job.hpp"
#include "mproc/detail/wire/wire_jobs.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ProcessBackend {
  public:
    /// Jobs carry their wire half: chunks are encoded and sent to other processes.
    template <class CoreJob>
    using job_type = wire_job_t<CoreJob>;
    /// What an item takes on the wire where that is known without encoding it (0 otherwise):
    /// the automatic chunksize keeps a chunk's bytes within max_auto_chunk_bytes.
    template <class Item>
    static std::size_t item_bytes(const Item& item) {
        return known_encoded_size(item);
    }
    /// A task past its time limit has its worker process killed (with_timeout, task_timeout).
    static constexpr bool kills_running_tasks = true;

    /// Starts the fork server and `options.workers` worker processes. Throws std::system_error
    /// when the system refuses a process or a socket.
    explicit ProcessBackend(ValidatedOptions options);
    ~ProcessBackend();

    ProcessBackend(const ProcessBackend&) = delete;
    ProcessBackend& operator=(const ProcessBackend&) = delete;

    std::size_t worker_count() const noexcept { return worker_count_; }

    // The PoolBackend contract (job.hpp). Here terminate() kills busy workers, so their chunks
    // end with mproc::PoolTerminated too, and join() also reaps the launcher.
    bool submit(ChunkBatch chunks);
    /// Drops the job's queued chunks here and now; its running ones end as their worker
    /// processes are killed (by the I/O thread, which replaces them).
    bool cancel(Job& job);
    void close();
    void terminate();
    void join();

    Recorder& recorder() noexcept;
    std::size_t queue_depth();

  private:
    class Impl;
    const std::size_t worker_count_;
    std::unique_ptr<Impl> impl_;
};

} // namespace mproc::detail
