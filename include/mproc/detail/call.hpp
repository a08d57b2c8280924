#pragma once
// How the front end calls user functions, and the type of what they return.

#include <concepts>
#include <functional>
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

template <class F, class... Args>
call_result_t<F, Args...> call_storing(const F& f, Args&&... args) {
    if constexpr (std::is_void_v<std::invoke_result_t<const F&, Args...>>) {
        std::invoke(f, std::forward<Args>(args)...);
        return {};
    } else {
        return std::invoke(f, std::forward<Args>(args)...);
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
