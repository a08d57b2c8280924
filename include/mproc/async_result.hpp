// SPDX-License-Identifier: MIT
#pragma once
/// @file async_result.hpp
/// `mproc::AsyncResult<T>`: Python's `AsyncResult`, returned by `apply_async`, `map_async` and
/// `starmap_async`.

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <type_traits>
#include <utility>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/result_state.hpp"
#include "mproc/detail/resumer.hpp"
#include "mproc/errors.hpp"

namespace mproc {

/// The pending outcome of one asynchronous call: a value of type `T` or an exception.
///
/// Move-only, like `std::future`; unlike `std::future`, `get()` may be called any number of
/// times (as in Python). A call whose pool is terminated or destroyed before it ran ends with
/// `mproc::PoolTerminated`, so `get()` never waits for ever on a dead pool.
///
/// Example:
/// @code
///   mproc::ThreadPool pool(4);
///   mproc::AsyncResult<int> r = pool.apply_async([](int x) { return x * x; }, 7);
///   if (r.wait(std::chrono::seconds(1))) std::cout << r.get() << '\n';   // 49
/// @endcode
template <class T>
class AsyncResult {
  public:
    /// An empty handle; `valid()` is false and every other member is undefined.
    AsyncResult() = default;

    /// Waits for the outcome; returns the value or throws the task's exception (on the thread
    /// pool, the very object the task threw). The value stays in this handle.
    const T& get() const& {
        wait();
        return state_->value();
    }
    /// As above, but moves the value out of the handle (`std::move(result).get()`), which saves
    /// a copy of a large vector from `map_async`.
    T get() && {
        wait();
        return std::move(state_->value());
    }

    /// As `get()`, but throws `mproc::TimeoutError` when the outcome is not ready within
    /// `timeout`. The call goes on: a later `get()` can still return the value.
    template <class Rep, class Period>
    const T& get(std::chrono::duration<Rep, Period> timeout) const& {
        throw_if_not_ready_in(timeout);
        return state_->value();
    }
    /// As `get(timeout)`, moving the value out of the handle.
    template <class Rep, class Period>
    T get(std::chrono::duration<Rep, Period> timeout) && {
        throw_if_not_ready_in(timeout);
        return std::move(state_->value());
    }

    /// Waits until the outcome is ready (callbacks included).
    void wait() const {
        if (!outcome_stored_) {
            state_->wait_until(detail::Clock::time_point::max());
        }
    }

    /// Waits at most `timeout`; returns whether the outcome is ready.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return outcome_stored_ || state_->wait_until(detail::deadline_after(timeout));
    }

    /// Whether the call has ended (with a value or an error). Never blocks.
    bool ready() const { return outcome_stored_ || state_->ready(); }

    /// Whether the call ended with a value; throws `mproc::ResultNotReady` if it has not ended
    /// yet (Python raises ValueError).
    bool successful() const {
        if (!ready()) {
            throw ResultNotReady("mproc: successful() called before the result is ready");
        }
        return state_->successful();
    }

    /// Cancels the call (Python's `Future.cancel`): true when it will end with
    /// `mproc::Cancelled` instead of its value; false when it has ended already, or cannot be
    /// stopped. What it stops depends on the pool class:
    ///  - a task not started yet is dropped, on every pool class;
    ///  - a task running on a `Pool` or an `MpiPool` is killed with its worker process, which is
    ///    replaced (as for a time limit); the other tasks of the pool run on;
    ///  - a task running on a `ThreadPool` cannot be stopped: `false`, and it runs to its end.
    /// A `map_async` call is cancelled as a whole: its tasks not started are dropped and, on
    /// a process or MPI pool, its running ones are killed (on a `ThreadPool`, only while none
    /// has started). Once it returns true, `cancelled()` is true and the call ends soon: its
    /// callbacks, done callbacks and waiters see `mproc::Cancelled`.
    bool cancel() { return state_->cancel(); }

    /// Whether `cancel()` succeeded (Python's `Future.cancelled`). Never blocks.
    bool cancelled() const noexcept { return state_->cancelled(); }

    /// Calls `callback(result)` once the call has ended, with a handle to this result on which
    /// `get()`, `ready()` and `successful()` answer at once (Python's
    /// `Future.add_done_callback`). At once, on this thread, when the call has ended already;
    /// else on the thread that ends it (a worker thread of a `ThreadPool`, the thread of a
    /// `Pool` that receives results), before `get()` and `wait()` return anywhere. Callbacks
    /// run in the order they were added, after the call's own `callbacks`. A callback must not
    /// block on another result of the same pool; an exception it throws is reported on
    /// standard error and otherwise ignored, as Python does.
    template <class F>
    requires std::invocable<F&, const AsyncResult&>
    void add_done_callback(F callback) {
        detail::ResultState<T>* state = state_.get();
        state->before_ready([state, callback = std::move(callback)]() mutable noexcept {
            state->acquire();
            const AsyncResult view(detail::JobRef<detail::ResultState<T>>(state), OutcomeStored{});
            try {
                callback(view);
            } catch (const std::exception& error) {
                std::fprintf(stderr, "mproc: a done callback threw: %s\n", error.what());
            } catch (...) {
                std::fprintf(stderr, "mproc: a done callback threw\n");
            }
        });
    }

    /// `co_await result` in a coroutine: suspends it until the call has ended (no thread waits),
    /// then gives the value or throws the call's error, as `get()`. The coroutine goes on at
    /// once when the call has ended already; else it resumes on the thread that ends the call
    /// on a `ThreadPool` (a worker, which may then wait and help as any task does), and on a
    /// thread of the pool's own for that on a `Pool` or `MpiPool`, never on the thread that
    /// delivers their results: there it may block, compute or make blocking calls on the pool.
    /// On an rvalue (`co_await pool.apply_async(...)`) the value is moved out.
    ///@{
    auto operator co_await() const& noexcept { return Awaiter<const T&>{state_.get()}; }
    auto operator co_await() && noexcept { return Awaiter<T>{state_.get()}; }
    ///@}

    /// For `mproc::wait` and `mproc::as_completed`: the result's completion, whatever `T` is.
    detail::CompletionSource& completion() const noexcept { return *state_; }

    /// False for a default-constructed or moved-from handle.
    bool valid() const noexcept { return static_cast<bool>(state_); }

    /// For the pool front end, which creates results.
    explicit AsyncResult(detail::JobRef<detail::ResultState<T>> state) noexcept
        : state_(std::move(state)) {}

    /// Moves the handle; assigning over a handle first discards what it held (as destroying
    /// it does).
    ///@{
    AsyncResult(AsyncResult&&) noexcept = default;
    AsyncResult& operator=(AsyncResult&& other) noexcept {
        if (this != &other) {
            discard();
            state_ = std::move(other.state_);
            outcome_stored_ = other.outcome_stored_;
        }
        return *this;
    }
    ///@}
    AsyncResult(const AsyncResult&) = delete;
    AsyncResult& operator=(const AsyncResult&) = delete;
    /// Destroys the value (or error) here and now if the call has ended: the pool keeps nothing
    /// of a result once its handle is gone.
    ~AsyncResult() { discard(); }

  private:
    struct OutcomeStored {};
    /// A handle given to a done callback: the outcome is stored (the call is being published as
    /// ended), so nothing waits; and it is not the owner, so it discards nothing.
    AsyncResult(detail::JobRef<detail::ResultState<T>> state, OutcomeStored) noexcept
        : state_(std::move(state)), outcome_stored_(true) {}

    template <class Value>
    struct Awaiter {
        detail::ResultState<T>* state;
        bool await_ready() const { return state->ready(); }
        bool await_suspend(std::coroutine_handle<> coroutine) {
            return state->observe_if_pending(
                       [coroutine] { detail::resume_coroutine(coroutine); }) != 0;
        }
        Value await_resume() const {
            if constexpr (std::is_reference_v<Value>) {
                return state->value();
            } else {
                return std::move(state->value());
            }
        }
    };

    // The worker that ended the call may still hold a reference to the state for a moment after
    // waking us, and would otherwise destroy the value later, on its own thread.
    void discard() noexcept {
        if (state_ && !outcome_stored_) {
            state_->discard_if_ready();
        }
    }

    template <class Rep, class Period>
    void throw_if_not_ready_in(std::chrono::duration<Rep, Period> timeout) const {
        if (!outcome_stored_ && !state_->wait_until(detail::deadline_after(timeout))) {
            throw TimeoutError("mproc: result not ready within the timeout");
        }
    }

    detail::JobRef<detail::ResultState<T>> state_;
    bool outcome_stored_ = false;
};

} // namespace mproc
