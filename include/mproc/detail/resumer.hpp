// SPDX-License-Identifier: MIT
#pragma once
// Where a coroutine that awaited a result goes on (co_await on an AsyncResult). On a thread of
// the caller or a ThreadPool worker, at once, on the thread that ended the call. Not on the
// thread that delivers a process pool's results (its I/O thread, the MPI hub): a coroutine
// resumed there would hold up every other result while it runs, and one that then waits for a
// result (a blocking `map` after a `co_await`) would wait for itself. That thread hands the
// coroutine to its pool's Resumer instead: a thread of its own that resumes them one at a time.

#include <coroutine>
#include <memory>

namespace mproc::detail {

/// Resumes `coroutine` on this thread, or on the Resumer that serves this thread.
void resume_coroutine(std::coroutine_handle<> coroutine);

/// A thread, started when it first gets a coroutine, that resumes the coroutines handed to it in
/// order.
class Resumer {
  public:
    Resumer();
    Resumer(const Resumer&) = delete;
    Resumer& operator=(const Resumer&) = delete;
    ~Resumer(); // stop()

    /// From now on, resume_coroutine on the calling thread hands coroutines to this resumer.
    void serve_this_thread() noexcept;

    /// Resumes every coroutine handed over so far, then ends the thread; on the resumer's own
    /// thread (a coroutine that ends its pool), the thread ends once that coroutine returns.
    /// Coroutines handed over later are resumed at once, on the thread that hands them over.
    void stop() noexcept;

  private:
    friend void resume_coroutine(std::coroutine_handle<> coroutine);
    void post(std::coroutine_handle<> coroutine);

    struct State;
    std::shared_ptr<State> state_; // shared with the thread, which may outlive *this (stop)
};

} // namespace mproc::detail
