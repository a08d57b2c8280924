// SPDX-License-Identifier: MIT
#pragma once
// What waiting on many results needs of each, whatever its value type (mproc::wait,
// mproc::as_completed, co_await): whether it is ready, and a call when it becomes ready.

#include <cstdint>

#include "mproc/detail/function.hpp"

namespace mproc::detail {

class CompletionSource {
  public:
    /// A registered observer, for `forget`; 0 when it ran at once.
    using ObserverId = std::uint64_t;

    virtual bool ready() const = 0;
    /// Only once ready: false when the call ended with an error.
    virtual bool successful() const = 0;
    /// Registers `observer` to be called once the result is ready, on the thread that completes
    /// it, after waiters were woken; returns 0 without calling it when the result already is.
    /// Observers must not throw nor block.
    virtual ObserverId observe_if_pending(Function<void()> observer) = 0;
    /// As `observe_if_pending`, but calls `observer` at once, on this thread, when the result is
    /// ready already (and returns 0).
    ObserverId when_ready(Function<void()> observer) {
        const ObserverId id = observe_if_pending(observer);
        if (id == 0) {
            observer();
        }
        return id;
    }
    /// Drops an observer that has not run; nothing when it has (or is running).
    virtual void forget(ObserverId id) noexcept = 0;

  protected:
    ~CompletionSource() = default;
};

} // namespace mproc::detail
