// SPDX-License-Identifier: MIT
#pragma once
// A pool of rank 0's that a worker rank serves in its own process (PoolOptions::in_rank): no
// worker process, so a task costs no hop beyond the MPI message, and a task that crashes ends
// the rank and with it the MPI job.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>

#include "mproc/detail/job.hpp"
#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

/// The chunks of one pool that this rank runs itself, one at a time, on its serving thread. The
/// same calls as a local ProcessBackend (the serving loop treats both alike), plus run_next(),
/// which the serving loop calls to run them.
class InRankPool {
  public:
    /// Runs `initializer` (if any) now, on the calling thread (the serving thread, which runs
    /// the tasks), as worker `worker_id`; if it throws, every chunk ends with its exception, as
    /// in a worker process.
    InRankPool(const std::function<void()>& initializer, std::uint64_t worker_id);

    InRankPool(const InRankPool&) = delete;
    InRankPool& operator=(const InRankPool&) = delete;

    /// From the serving thread or another local pool's I/O thread (which hands over the requests
    /// it received): queues the chunks, or returns false once closed.
    bool submit(ChunkBatch chunks);
    /// The serving thread: runs the chunk at the front of the queue, and settles it (its answer
    /// leaves for rank 0 from there). False when none was queued.
    bool run_next();
    /// Drops the job's queued chunks (cancelled_call_error). Nothing of it is running: only the
    /// serving thread runs chunks, and it is the one that calls this.
    bool cancel(Job& job);
    /// No more chunks; those queued still run.
    void close();
    /// Drops the queued chunks (terminated_error).
    void terminate();
    /// How long the last chunk run_next() ran took (zero before the first).
    std::chrono::nanoseconds last_run() const noexcept { return last_run_; }
    /// Runs the chunks still queued (a closed pool finishes its work), on the calling thread:
    /// the serving one. No thread or process of its own to wait for.
    void join();
    /// One worker: the rank itself.
    std::size_t worker_count() const noexcept { return 1; }

  private:
    const std::uint64_t worker_id_;
    const long pid_; // this process's: the worker's pid that rank 0 records
    std::exception_ptr initializer_error_;
    std::chrono::nanoseconds last_run_{0}; // the serving thread's
    std::mutex mutex_; // the queue and closed_: other pools' I/O threads submit too
    std::deque<Chunk*> queue_;
    bool closed_ = false;
    // Kept between chunks, so that a stream of small chunks allocates nothing.
    WireWriter request_;
    WireWriter response_;
};

} // namespace mproc::detail
