// SPDX-License-Identifier: MIT
#pragma once
// Help while waiting: a worker thread of a ThreadPool that blocks on a result (get, wait, a
// blocking call, a stream's next) runs queued chunks of its pool meanwhile, so tasks that wait
// for tasks they submitted to their own pool (nested parallelism) never starve for threads.
// Other threads wait as before, except the threads that deliver results (a process pool's I/O
// thread, the MPI hub): a callback or a coroutine resumed there that waited for a result would
// wait for itself, so such a wait throws at once instead of hanging.

#include <algorithm>
#include <chrono>

#include "mproc/detail/deadline.hpp"

namespace mproc::detail {

class WaitHelper {
  public:
    /// Runs (or, as the worker would, cancels) one chunk queued in the pool; false when none
    /// is queued. Throws mproc::Error where the thread must not wait at all.
    virtual bool run_one_queued_chunk() = 0;

  protected:
    ~WaitHelper() = default;
};

/// The calling thread's helper: its pool's on a ThreadPool worker thread, else null.
WaitHelper* current_wait_helper() noexcept;
/// Makes `helper` the calling thread's (null: none).
void set_current_wait_helper(WaitHelper* helper) noexcept;
/// Marks the calling thread as one that delivers results: from now on, a wait on it for a
/// result not ready yet throws mproc::Error (`get`, `wait`, a blocking call, a stream's `next`,
/// `mproc::wait`, `as_completed`), since only this thread could have made it ready.
void refuse_waits_on_this_thread() noexcept;

/// Waits until `done()` or `deadline`, running the helper's queued chunks meanwhile; between
/// them, when none is queued, `sleep(until)` waits until `until` at most (it may return as soon
/// as `done()` may have changed), for 20 µs first, then for twice as long each time, up to 1 ms:
/// a chunk queued meanwhile by another thread is run at most that late. Returns `done()`.
template <class Done, class Sleep>
bool help_until(WaitHelper& helper, Clock::time_point deadline, Done done, Sleep sleep) {
    constexpr auto first_pause = std::chrono::microseconds(20);
    constexpr auto longest_pause = std::chrono::milliseconds(1);
    Clock::duration pause = first_pause;
    while (!done()) {
        if (helper.run_one_queued_chunk()) {
            pause = first_pause;
            continue;
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            return done();
        }
        sleep(deadline - now < pause ? deadline : now + pause);
        pause = std::min<Clock::duration>(pause * 2, longest_pause);
    }
    return true;
}

} // namespace mproc::detail
