// SPDX-License-Identifier: MIT
#pragma once
// Timeouts arrive as any std::chrono duration; waits need a steady-clock deadline that does not
// overflow for huge durations (duration::max() means "wait for ever").

#include <chrono>
#include <stdexcept>
#include <type_traits>

namespace mproc::detail {

using Clock = std::chrono::steady_clock;

/// The time `timeout` from now: now for a zero or negative one, Clock::time_point::max() (for
/// ever) for one past the clock's range. Throws std::invalid_argument for a NaN timeout, which
/// is no duration at all.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
    if constexpr (std::is_floating_point_v<Rep>) {
        const Rep count = timeout.count();
        if (count != count) { // NaN, the only value unequal to itself (<cmath> is heavy)
            throw std::invalid_argument("mproc: timeout must be a number (got NaN)");
        }
    }
    const auto now = Clock::now();
    if (timeout <= timeout.zero()) {
        return now;
    }
    const auto room =
        std::chrono::duration_cast<std::chrono::duration<double>>(Clock::time_point::max() - now);
    if (std::chrono::duration_cast<std::chrono::duration<double>>(timeout) >= room) {
        return Clock::time_point::max();
    }
    return now + std::chrono::ceil<Clock::duration>(timeout);
}

} // namespace mproc::detail
