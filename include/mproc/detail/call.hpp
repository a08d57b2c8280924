// SPDX-License-Identifier: MIT
#pragma once
// How the front end calls user functions, and the type of what they return.

#include <concepts>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace mproc::detail {

/// What a call's result is stored as: the decayed return type, or std::monostate (Python's
/// None) for a function returning void, so that map over a void function is still a vector.
template <class R>
using stored_t = std::conditional_t<std::is_void_v<R>, std::monostate, std::remove_cvref_t<R>>;

/// Workers call the function through a const reference, because in map several workers call
/// the same function object at once; a mutable lambda would race.
template <class F, class... Args>
using call_result_t = stored_t<std::invoke_result_t<const F&, Args...>>;

template <class Member>
struct MemberOf;
template <class T, class Class>
struct MemberOf<T Class::*> {
    using type = Class;
};

/// The object a member pointer applies to: `object` itself, or what it points to (a pointer,
/// a smart pointer).
template <class Member, class Object>
decltype(auto) member_target(Object&& object) {
    if constexpr (std::is_base_of_v<typename MemberOf<Member>::type, std::remove_cvref_t<Object>>) {
        return std::forward<Object>(object);
    } else {
        return *std::forward<Object>(object);
    }
}

template <class Member, class Object, class... Args>
decltype(auto) invoke_member(Member member, Object&& object, Args&&... args) {
    if constexpr (std::is_member_function_pointer_v<Member>) {
        return (member_target<Member>(std::forward<Object>(object)).*
                member)(std::forward<Args>(args)...);
    } else {
        return member_target<Member>(std::forward<Object>(object)).*member;
    }
}

/// std::invoke for what a pool is given: a callable, or a pointer to a member called on an
/// object or a pointer to one (std::invoke is in <functional>, which these headers avoid).
template <class F, class... Args>
decltype(auto) invoke(const F& f, Args&&... args) {
    if constexpr (std::is_member_pointer_v<F>) {
        return invoke_member(f, std::forward<Args>(args)...);
    } else {
        return f(std::forward<Args>(args)...);
    }
}

template <class F, class... Args>
call_result_t<F, Args...> call_storing(const F& f, Args&&... args) {
    if constexpr (std::is_void_v<std::invoke_result_t<const F&, Args...>>) {
        invoke(f, std::forward<Args>(args)...);
        return {};
    } else {
        return invoke(f, std::forward<Args>(args)...);
    }
}

/// How an item of map/imap is passed: as the single argument, or unpacked (starmap).
enum class Unpack { no, yes };

template <class F, class Item, Unpack unpack>
struct ItemCall;

template <class F, class Item>
struct ItemCall<F, Item, Unpack::no> {
    static constexpr bool valid = std::is_invocable_v<const F&, const Item&>;
    static auto call(const F& f, const Item& item) { return call_storing(f, item); }
};

/// Whether `f(std::get<0>(t), std::get<1>(t), ...)` is valid for a tuple-like `Tuple`.
template <class F, class Tuple>
constexpr bool invocable_with_elements_of() {
    if constexpr (requires { std::tuple_size<Tuple>::value; }) {
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return std::is_invocable_v<const F&,
                                       decltype(std::get<I>(std::declval<const Tuple&>()))...>;
        }
        (std::make_index_sequence<std::tuple_size_v<Tuple>>{});
    } else {
        return false;
    }
}

template <class F, class Item>
struct ItemCall<F, Item, Unpack::yes> {
    static constexpr bool valid = invocable_with_elements_of<F, Item>();
    static auto call(const F& f, const Item& item) {
        return std::apply([&f](const auto&... args) { return call_storing(f, args...); }, item);
    }
};

template <class F, class Item, Unpack unpack>
using item_result_t = decltype(ItemCall<F, Item, unpack>::call(std::declval<const F&>(),
                                                               std::declval<const Item&>()));

} // namespace mproc::detail
