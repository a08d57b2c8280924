#pragma once
// Timeouts arrive as any std::chrono duration; waits need a steady-clock deadline that does not
// overflow for huge durations (duration::max() means "wait for ever").

#include <chrono>

namespace mproc::detail {

using Clock = std::chrono::steady_clock;

template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
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
