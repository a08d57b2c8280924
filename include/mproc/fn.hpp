// SPDX-License-Identifier: MIT
#pragma once
/// @file fn.hpp
/// `mproc::fn<f>`: a plain function passed as a function object whose call the compiler sees.

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

namespace mproc {

/// The function `F` as a function object. A function passed by name (`pool.map(square, xs)`)
/// reaches the pool as a pointer, and every item becomes an indirect call the compiler cannot
/// inline; `Fn<square>` names the function in its type, so the pool's loop calls it directly
/// and inlines it where it can. It has no state: a process pool sends it as nothing (the
/// worker's code, instantiated for this type, knows the function), on every start method.
template <auto F>
requires std::is_pointer_v<decltype(F)> && std::is_function_v<std::remove_pointer_t<decltype(F)>>
struct Fn {
    /// Calls `F(args...)`.
    template <class... Args>
    requires std::invocable<decltype(F), Args...>
    constexpr decltype(auto) operator()(Args&&... args) const
        noexcept(std::is_nothrow_invocable_v<decltype(F), Args...>) {
        return std::invoke(F, std::forward<Args>(args)...);
    }
};

/// `mproc::fn<square>`: the function `square` as an inlinable function object, for any pool
/// call that takes a callable (`pool.map(mproc::fn<square>, xs)`).
template <auto F>
inline constexpr Fn<F> fn{};

} // namespace mproc
