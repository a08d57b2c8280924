// SPDX-License-Identifier: MIT
#pragma once
// The state behind an AsyncResult: one value or one error, the callbacks, and the wait.

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "mproc/detail/cancel_route.hpp"
#include "mproc/detail/completion.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/function.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/spin_wait.hpp"
#include "mproc/detail/wait_helper.hpp"

namespace mproc::detail {

template <class R>
class ResultState : public Job, public CompletionSource {
  public:
    /// Installs the callbacks; `serial` is the pool's mutex that keeps callbacks one at a time.
    /// Must happen before the first chunk is submitted.
    void set_callbacks(Function<void(const R&)> on_success,
                       Function<void(std::exception_ptr)> on_error, std::recursive_mutex* serial) {
        on_success_ = std::move(on_success);
        on_error_ = std::move(on_error);
        callback_mutex_ = serial;
    }

    /// Makes the call cancellable through `route`. Only the call's handle reads it (cancel()),
    /// so the front end may set it after the submission, before it hands the handle out.
    void set_cancel_route(std::shared_ptr<CancelRoute> route) noexcept {
        cancel_route_ = std::move(route);
    }

    /// AsyncResult::cancel: true when the call is cancelled (now, or before).
    bool cancel() { return cancelled() || (cancel_route_ && cancel_route_->cancel(*this)); }

    bool ready() const override {
        std::lock_guard lock(mutex_);
        return ready_;
    }

    /// Waits until ready or `deadline`; returns ready(). Polls first for a short while: most
    /// fork-joins end sooner than a sleep and a wake-up would. On a ThreadPool's worker thread,
    /// runs queued chunks of its pool meanwhile (wait_helper.hpp).
    bool wait_until(Clock::time_point deadline) const {
        if (WaitHelper* helper = current_wait_helper()) {
            return help_until(
                *helper, deadline, [this] { return published_.load(std::memory_order_acquire); },
                [this](Clock::time_point until) {
                    std::unique_lock lock(mutex_);
                    ready_changed_.wait_until(lock, until, [&] { return ready_; });
                });
        }
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
    bool successful() const override {
        std::lock_guard lock(mutex_);
        return error_ == nullptr;
    }

    /// Runs `callback` (which reads the outcome) before the call is published as ready, as the
    /// call's own callbacks are, so the only handle cannot discard the outcome under it; at once
    /// when the call is already ready. A registration that meets the call between the two
    /// waits until it is ready, then runs the callback itself.
    void before_ready(Function<void()> callback) {
        {
            std::unique_lock lock(mutex_);
            if (!callbacks_taken_) {
                done_callbacks_.push_back(std::move(callback));
                return;
            }
            ready_changed_.wait(lock, [&] { return ready_; });
        }
        callback();
    }

    ObserverId observe_if_pending(Function<void()> observer) override {
        std::lock_guard lock(mutex_);
        if (ready_) {
            return 0;
        }
        observers_.emplace_back(++last_observer_, std::move(observer));
        return last_observer_;
    }

    void forget(ObserverId id) noexcept override {
        std::lock_guard lock(mutex_);
        for (auto it = observers_.begin(); it != observers_.end(); ++it) {
            if (it->first == id) {
                observers_.erase(it);
                return;
            }
        }
    }

    /// Called by the only handle as it goes away: once ready, destroys the outcome now, on the
    /// caller's thread, instead of whenever the last chunk reference is released (which may be a
    /// worker, a moment after it woke the caller). Only the observers of a wait that has
    /// returned may still look at the outcome once ready (successful(), under the lock, on the
    /// thread that ended the call): the error is taken out under it.
    void discard_if_ready() noexcept {
        std::exception_ptr error;
        {
            std::lock_guard lock(mutex_);
            if (!ready_) {
                return;
            }
            error = std::exchange(error_, nullptr);
        }
        value_.reset();
    }

    /// Only once ready: the value, or throws the call's error.
    R& value() {
        if (error_) {
            std::rethrow_exception(error_);
        }
        return *value_;
    }

  protected:
    /// Ends the call: stores the outcome, runs the callbacks and the done callbacks (which finish
    /// before any waiter wakes), wakes the waiters, then runs the observers. Called exactly once,
    /// by whichever thread settles the last chunk, while it holds that chunk's reference.
    void finish(std::optional<R>&& value, std::exception_ptr error) noexcept {
        // Written before ready_ is published and never again, so readers need no lock.
        if (mark_finished()) {
            value_ = std::move(value);
            error_ = std::move(error);
        } else {
            error_ = cancelled_call_error(); // whatever its chunks gave before they were stopped
        }
        run_callbacks();
        std::vector<Function<void()>> done_callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks_taken_ = true;
            done_callbacks.swap(done_callbacks_);
        }
        for (auto& callback : done_callbacks) {
            callback();
        }
        std::vector<std::pair<ObserverId, Function<void()>>> observers;
        {
            std::lock_guard lock(mutex_);
            ready_ = true;
            observers.swap(observers_);
        }
        published_.store(true, std::memory_order_release);
        ready_changed_.notify_all(); // no system call when nobody sleeps on it
        // An observer may resume a coroutine that drops the handle; the reference of the chunk
        // whose settling called finish() keeps the state alive until they are done.
        for (auto& [id, observer] : observers) {
            observer();
        }
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
    bool callbacks_taken_ = false; // finish() has taken done_callbacks_
    std::vector<Function<void()>> done_callbacks_;
    ObserverId last_observer_ = 0;
    std::vector<std::pair<ObserverId, Function<void()>>> observers_;
    Function<void(const R&)> on_success_;
    Function<void(std::exception_ptr)> on_error_;
    std::recursive_mutex* callback_mutex_ = nullptr;
    std::shared_ptr<CancelRoute> cancel_route_; // none for a blocking call's job
};

} // namespace mproc::detail
