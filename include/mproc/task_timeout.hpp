// SPDX-License-Identifier: MIT
#pragma once
/// @file task_timeout.hpp
/// `mproc::with_timeout(f, limit)`: a hard time limit for the tasks of one call (process pools),
/// on top of or instead of the pool's `PoolOptions::task_timeout`.
///
/// A task still running when its limit passes has its worker process killed and ends with
/// `mproc::TaskTimeout`; the pool starts a replacement worker and goes on. A task is one chunk
/// (as in Python): with chunksize > 1 the limit covers the whole chunk. `ThreadPool` refuses it
/// at compile time: a thread cannot be killed.
///
/// Example:
/// @code
///   auto trees = pool.map_outcomes(mproc::with_timeout(parse, std::chrono::seconds(5)), files);
/// @endcode

#include <chrono>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace mproc {

/// A callable with the hard time limit of its tasks; made by `with_timeout`.
template <class F>
struct TimeLimited {
    F function;                     ///< what each task calls
    std::chrono::nanoseconds limit; ///< the hard limit of each task
};

/// `f` with a hard time limit for each of its tasks. Throws std::invalid_argument unless
/// `limit` is positive (a NaN is not). A limit longer than `std::chrono::nanoseconds` holds (about
/// 292 years) becomes `nanoseconds::max()`, which never passes.
template <class F, class Rep, class Period>
TimeLimited<std::decay_t<F>> with_timeout(F&& f, std::chrono::duration<Rep, Period> limit) {
    // Counted in long double, whose range no duration's count exceeds: converting a long limit
    // to nanoseconds in integers would overflow.
    const long double nanoseconds =
        std::chrono::duration_cast<std::chrono::duration<long double, std::nano>>(limit).count();
    if (!(nanoseconds > 0)) {
        throw std::invalid_argument("mproc: with_timeout's limit must be positive");
    }
    if (nanoseconds >= static_cast<long double>(std::chrono::nanoseconds::max().count())) {
        return {std::forward<F>(f), std::chrono::nanoseconds::max()};
    }
    // Rounded up (a limit of 0.5 ns is 1 ns, never 0) without std::ceil: <cmath> is heavy.
    auto whole = static_cast<std::chrono::nanoseconds::rep>(nanoseconds); // in range, truncated
    if (static_cast<long double>(whole) < nanoseconds) {
        ++whole;
    }
    return {std::forward<F>(f), std::chrono::nanoseconds(whole)};
}

namespace detail {
template <class F>
struct CallableOf {
    using type = F;
    static constexpr bool time_limited = false;
};
template <class F>
struct CallableOf<TimeLimited<F>> {
    using type = F;
    static constexpr bool time_limited = true;
};

/// The callable a call runs: `F` itself, or the function inside `with_timeout`.
template <class F>
using callable_t = typename CallableOf<std::decay_t<F>>::type;

template <class F>
inline constexpr bool time_limited_v = CallableOf<std::decay_t<F>>::time_limited;

/// The callable to store in the call's job (moved out of a TimeLimited rvalue).
template <class F>
decltype(auto) unwrap_callable(F&& f) {
    if constexpr (time_limited_v<F>) {
        return (std::forward<F>(f).function);
    } else {
        return std::forward<F>(f);
    }
}

/// The call's own time limit, zero for none.
template <class F>
std::chrono::nanoseconds time_limit_of(const F& f) noexcept {
    if constexpr (time_limited_v<F>) {
        return f.limit;
    } else {
        return std::chrono::nanoseconds::zero();
    }
}
} // namespace detail

} // namespace mproc
