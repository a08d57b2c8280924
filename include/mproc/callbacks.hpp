// SPDX-License-Identifier: MIT
#pragma once
/// @file callbacks.hpp
/// Python's `callback=` and `error_callback=` for `apply`, `apply_async`, `map_async` and
/// `starmap_async`.
///
/// Callbacks run on a pool thread, one at a time for the whole pool (never two at once, as in
/// Python, so a callback may append to a container without a lock), exactly once per call, and
/// have finished before `get()`/`wait()` return. Keep them short: a slow callback delays every
/// other result. If a callback throws, the result ends with that exception (Python's result
/// thread dies and the pool hangs instead). On `Pool` and `MpiPool` a callback that waits for
/// a result not ready yet throws `mproc::Error`: the thread running it is the one that would
/// deliver that result.
///
/// Example:
/// @code
///   std::vector<int> seen;
///   auto r = pool.apply_async(mproc::callbacks([&](int v) { seen.push_back(v); },
///                                              [&](std::exception_ptr e) { log(e); }),
///                             square, 7);
///   r.wait();   // seen == {49}
/// @endcode

#include <exception>
#include <utility>

namespace mproc {

/// The callback pair a call takes; build it with `callbacks`, `on_success` or `on_error`.
/// `OnSuccess` is called with the result (`const T&`; for map calls the whole vector), `OnError`
/// with the `std::exception_ptr` of the failure.
template <class OnSuccess, class OnError>
struct Callbacks {
    OnSuccess on_success; ///< called with the result
    OnError on_error;     ///< called with the failure's `std::exception_ptr`
};

/// The callback that does nothing, for the half of a pair that is not wanted.
struct NoCallback {
    /// Does nothing with anything.
    template <class... Args>
    void operator()(Args&&...) const noexcept {}
};

/// Both callbacks.
template <class OnSuccess, class OnError>
Callbacks<OnSuccess, OnError> callbacks(OnSuccess on_success, OnError on_error) {
    return {std::move(on_success), std::move(on_error)};
}

/// A success callback alone (Python's `callback=`).
template <class OnSuccess>
Callbacks<OnSuccess, NoCallback> on_success(OnSuccess on_success) {
    return {std::move(on_success), NoCallback{}};
}

/// An error callback alone (Python's `error_callback=`).
template <class OnError>
Callbacks<NoCallback, OnError> on_error(OnError on_error) {
    return {NoCallback{}, std::move(on_error)};
}

namespace detail {
template <class T>
inline constexpr bool is_callbacks = false;
template <class S, class E>
inline constexpr bool is_callbacks<Callbacks<S, E>> = true;
} // namespace detail

} // namespace mproc
