// SPDX-License-Identifier: MIT
#pragma once
// The state behind an AsyncResult: one value or one error, the callbacks, and the wait.

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/function.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/spin_wait.hpp"

namespace mproc::detail {

template <class R>
class ResultState : public Job {
  public:
    /// Installs the callbacks; `serial` is the pool's mutex that keeps callbacks one at a time.
    /// Must happen before the first chunk is submitted.
    void set_callbacks(Function<void(const R&)> on_success,
                       Function<void(std::exception_ptr)> on_error, std::recursive_mutex* serial) {
        on_success_ = std::move(on_success);
        on_error_ = std::move(on_error);
        callback_mutex_ = serial;
    }

    bool ready() const {
        std::lock_guard lock(mutex_);
        return ready_;
    }

    /// Waits until ready or `deadline`; returns ready(). Polls first for a short while: most
    /// fork-joins end sooner than a sleep and a wake-up would.
    bool wait_until(Clock::time_point deadline) const {
        if (deadline - Clock::now() > waiter_spin_budget &&
            spin_until([this] { return published_.load(std::memory_order_acquire); },
                       waiter_spin_budget)) {
            return true;
        }
        std::unique_lock lock(mutex_);
        if (deadline == Clock::time_point::max()) {
            ready_changed_.wait(lock, [&] { return ready_; });
            return true;
        }
        return ready_changed_.wait_until(lock, deadline, [&] { return ready_; });
    }

    /// Only once ready: false when the call ended with an error.
    bool successful() const {
        std::lock_guard lock(mutex_);
        return error_ == nullptr;
    }

    /// Called by the only handle as it goes away: once ready, destroys the outcome now, on the
    /// caller's thread, instead of whenever the last chunk reference is released (which may be a
    /// worker, a moment after it woke the caller). Nothing else touches the outcome once ready.
    void discard_if_ready() noexcept {
        {
            std::lock_guard lock(mutex_);
            if (!ready_) {
                return;
            }
        }
        value_.reset();
        error_ = nullptr;
    }

    /// Only once ready: the value, or throws the call's error.
    R& value() {
        if (error_) {
            std::rethrow_exception(error_);
        }
        return *value_;
    }

  protected:
    /// Ends the call: stores the outcome, runs the callbacks (which finish before any waiter
    /// wakes), then wakes the waiters. Called exactly once, by whichever thread settles the last
    /// chunk.
    void finish(std::optional<R>&& value, std::exception_ptr error) noexcept {
        // Written before ready_ is published and never again, so readers need no lock.
        value_ = std::move(value);
        error_ = std::move(error);
        run_callbacks();
        {
            std::lock_guard lock(mutex_);
            ready_ = true;
        }
        published_.store(true, std::memory_order_release);
        ready_changed_.notify_all(); // no system call when nobody sleeps on it
    }

  private:
    void run_callbacks() noexcept {
        if (!on_success_ && !on_error_) {
            return;
        }
        std::unique_lock serial(*callback_mutex_);
        try {
            if (error_) {
                if (on_error_) on_error_(error_);
            } else if (on_success_) {
                on_success_(*value_);
            }
        } catch (...) {
            // Python's result-handler thread dies here and every later result hangs; we end this
            // result with the callback's exception instead.
            value_.reset();
            error_ = std::current_exception();
        }
        on_success_ = nullptr; // drop whatever state the callbacks captured
        on_error_ = nullptr;
    }

    mutable std::mutex mutex_;
    mutable std::condition_variable ready_changed_;
    bool ready_ = false;
    std::atomic<bool> published_{false}; // ready_, for waiters polling without the lock
    std::optional<R> value_;
    std::exception_ptr error_;
    Function<void(const R&)> on_success_;
    Function<void(std::exception_ptr)> on_error_;
    std::recursive_mutex* callback_mutex_ = nullptr;
};

} // namespace mproc::detail
