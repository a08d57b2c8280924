// SPDX-License-Identifier: MIT
#pragma once
// The MPI backend (rank 0's side of mproc::MpiPool): chunks run on the worker ranks, each of
// which runs them in supervised worker processes of its own. Submitting threads only queue
// chunks and wake the hub, one thread per process that talks MPI for every MpiPool of the
// program: it hands chunks to ranks with a free worker (dynamic load balancing: no static
// split), reads results and settles chunks (callbacks run there, as on the process pool's I/O
// thread). No MPI header is needed to include this.

#include <cstddef>
#include <memory>

#include "mproc/detail/job.hpp"
#include "mproc/detail/wire/wire_jobs.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class MpiBackend {
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
    /// No: time limits are not sent to the ranks, so with_timeout is refused at compile time
    /// rather than run unlimited.
    static constexpr bool kills_running_tasks = false;
    /// PoolOptions::in_rank: each worker rank may run the tasks in its own process.
    static constexpr bool runs_tasks_in_rank = true;

    /// Opens the pool on the worker ranks: `options.workers` worker processes spread over them
    /// round robin. Throws mproc::Error when a rank refuses (it runs a different program, or
    /// cannot start worker processes), or when the program was not started by mpirun.
    explicit MpiBackend(ValidatedOptions options);
    ~MpiBackend();

    MpiBackend(const MpiBackend&) = delete;
    MpiBackend& operator=(const MpiBackend&) = delete;

    std::size_t worker_count() const noexcept { return worker_count_; }

    // The PoolBackend contract (job.hpp). terminate() kills the worker processes that are
    // running chunks, on every rank; their chunks end with mproc::PoolTerminated at once.
    bool submit(ChunkBatch chunks);
    /// Drops the job's queued chunks here and now; its running ones end at once, and their
    /// ranks kill the worker processes running them (and replace them).
    bool cancel(Job& job);
    void close();
    void terminate();
    void join();

    Recorder& recorder() noexcept;
    std::size_t queue_depth();

    class State;

  private:
    const std::size_t worker_count_;
    std::shared_ptr<State> state_;
};

/// The number of worker ranks of this MPI job (ranks other than 0): MpiPool's default number
/// of workers. Starts MPI if needed; on a worker rank it serves instead and never returns.
std::size_t mpi_worker_ranks();

} // namespace mproc::detail
