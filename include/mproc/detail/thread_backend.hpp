// SPDX-License-Identifier: MIT
#pragma once
// The thread backend: worker threads of this process take chunks from one shared queue and run
// them in place, so arguments and results are never copied or serialised. An idle worker polls
// the queue briefly before it sleeps (spin_wait.hpp), so a burst of chunks that follows the last
// one closely costs no wake-up system call.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/detail/job.hpp"
#include "mproc/detail/recorder.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ThreadBackend {
  public:
    /// Chunks run in this address space: jobs need no wire half.
    template <class CoreJob>
    using job_type = CoreJob;
    /// A thread running a task cannot be killed: no hard time limits (with_timeout).
    static constexpr bool kills_running_tasks = false;

    /// Starts `options.workers` threads.
    explicit ThreadBackend(ValidatedOptions options);
    /// Terminates and joins if the front end has not (it always has).
    ~ThreadBackend();

    ThreadBackend(const ThreadBackend&) = delete;
    ThreadBackend& operator=(const ThreadBackend&) = delete;

    std::size_t worker_count() const noexcept { return worker_count_; }

    // The PoolBackend contract (job.hpp). Here a running chunk cannot be interrupted:
    // terminate() lets it finish, and join() waits for it.
    bool submit(ChunkBatch chunks);
    /// Only while none of the job's chunks has started (a running one cannot be stopped).
    bool cancel(Job& job);
    void close();
    void terminate();
    void join();

    /// PoolOptions::caller_runs_chunks: removes from the queue and returns a chunk of `job` that
    /// no worker has taken yet, or nullptr when none is queued. Only for the thread that
    /// submitted the job's chunks; it then runs the chunk, which settles it as a worker would.
    Chunk* take_queued_chunk(const Job& job);
    /// Runs a chunk taken by take_queued_chunk on the calling thread (recorded on its lane).
    void run_taken_chunk(Chunk& chunk);

    Recorder& recorder() noexcept { return recorder_; }
    /// Chunks queued and not yet taken by a worker.
    std::size_t queue_depth();

  private:
    class Helper;
    /// The chunk at the front of the queue, removed, or nullptr when none is queued: for a
    /// worker that waits on a result and helps meanwhile.
    Chunk* take_any_queued_chunk();
    void start_worker(std::size_t slot, std::thread predecessor);
    void run_worker(std::size_t slot, std::thread predecessor);
    /// Next chunk to run, or nullptr when the worker should exit.
    Chunk* next_chunk();
    /// Swaps the calling worker for a fresh thread in its slot; false if the pool is stopping.
    bool retire(std::size_t slot);

    const std::size_t worker_count_;
    const Initializer initializer_;
    const std::size_t max_tasks_per_child_;

    std::mutex mutex_;
    std::condition_variable work_available_;
    std::condition_variable worker_exited_;
    std::deque<Chunk*> queue_;
    std::size_t idle_workers_ = 0; // waiting on work_available_: notify only if someone sleeps
    bool closed_ = false;
    // Mirrors of queue_ being non-empty and of closed_, written under mutex_ and polled without
    // it by spinning workers.
    std::atomic<bool> work_queued_{false};
    std::atomic<bool> closed_flag_{false};
    bool terminating_ = false;
    std::vector<std::thread> threads_; // one slot per worker; a replacement takes its slot
    std::size_t running_workers_ = 0;
    // A lane per worker slot, and one more for the calling threads with caller_runs_chunks.
    Recorder recorder_;
};

} // namespace mproc::detail
