// SPDX-License-Identifier: MIT
#pragma once
// The queue between the threads that submit chunks to a process pool and its I/O thread, and
// the wake-up call that goes with it.

#include <deque>
#include <mutex>
#include <optional>
#include <span>

#include "mproc/detail/job.hpp"

namespace mproc::detail {

/// The I/O thread sleeps in poll, on wake_fd() among the workers' sockets. A thread with news
/// (chunks, close, terminate) pays for the system call that wakes it only when it finds it
/// asleep: the I/O thread looks for news once more before it sleeps (ready_to_sleep).
class SubmissionQueue {
  public:
    /// Throws std::system_error when no eventfd can be made.
    SubmissionQueue();
    ~SubmissionQueue();
    SubmissionQueue(const SubmissionQueue&) = delete;
    SubmissionQueue& operator=(const SubmissionQueue&) = delete;

    int wake_fd() const noexcept { return wake_fd_; }

    // ---- any thread ----
    /// Queues the chunks and returns how many are queued now; nullopt (nothing queued) once
    /// closed.
    std::optional<std::size_t> submit(ChunkBatch chunks);
    /// How many chunks are queued now.
    std::size_t size();
    void close();
    /// Closes, marks the pool terminating and hands back what was queued, for the caller to
    /// cancel; empty when it already was terminating.
    std::optional<std::deque<Chunk*>> terminate();
    /// Wakes the I/O thread whether it sleeps or not.
    void wake() noexcept;

    // ---- the I/O thread ----
    struct State {
        bool closed;
        bool terminating;
        bool news; // something changed since the last look
    };
    /// The state, and the news flag reset.
    State look();
    /// Called before poll: false when news came since look() (look again); otherwise the I/O
    /// thread counts as asleep from now on unless it `spins` (polls without sleeping, seeing
    /// news without the wake-up call).
    bool ready_to_sleep(bool spins);
    /// Reads the wake-up call once poll has reported it.
    void drain_wake() noexcept;

    /// Removes and returns the front chunk if `accept(front)` says so; nullptr when the queue
    /// is empty or the front chunk is refused.
    template <class Accept>
    Chunk* pop_front_if(Accept accept) {
        std::lock_guard lock(mutex_);
        if (queue_.empty() || !accept(*queue_.front())) {
            return nullptr;
        }
        Chunk* chunk = queue_.front();
        queue_.pop_front();
        return chunk;
    }
    /// Puts chunks back at the front, in their order; false (nothing queued) once terminating,
    /// when nobody would take them again.
    bool push_front(std::span<Chunk* const> chunks);
    bool empty();
    bool terminating();
    /// Closed, and nothing left to run: no worker is needed any more.
    bool closed_and_empty();
    /// Empties the queue, handing back what it held.
    std::deque<Chunk*> take_all();
    /// Removes the chunks of `job`, handing them back.
    std::deque<Chunk*> take_job(const Job& job);

  private:
    /// With mutex_ held, after a change: whether the I/O thread sleeps (the caller wakes it).
    bool tell_io_thread_locked() noexcept;

    const int wake_fd_;
    std::mutex mutex_; // guards all below
    std::deque<Chunk*> queue_;
    bool closed_ = false;
    bool terminating_ = false;
    bool io_asleep_ = false;
    bool news_ = false;
};

} // namespace mproc::detail
