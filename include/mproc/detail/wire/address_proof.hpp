// SPDX-License-Identifier: MIT
#pragma once
// Whether a type's bytes can hold an address, proven from the type alone: the rule by which a
// trivially copyable value crosses a process boundary as its bytes (value_codec.hpp).
//
// Aggregates are taken apart member by member without a dependency, as Boost.PFR does: the
// number of members is the largest n for which T can be brace-initialised from n values of a
// type that converts to anything (AnyMember), and structured binding of that many names yields
// the members' types.

#include <array>
#include <bitset>
#include <chrono>
#include <complex>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/address_free.hpp"

namespace mproc::detail {

/// Aggregates of up to this many direct members are inspected member by member.
inline constexpr std::size_t max_inspected_members = 16;

template <std::size_t N>
using Count = std::integral_constant<std::size_t, N>;

template <class... Members>
struct TypeList {};

/// Converts to any member type of an aggregate T, but not to a base of T.
template <class T>
struct AnyMember {
    template <class U>
    requires(!std::is_base_of_v<std::remove_cvref_t<U>, T>) operator U() const;
};

/// Whether `T{any, any, ...}` (n values) is valid. Each initialiser takes exactly one member,
/// except that an array member, or a base (to which AnyMember does not convert), takes its own
/// elements from the list (brace elision).
template <class T, std::size_t... I>
constexpr bool initializable_with(std::index_sequence<I...>) {
    return requires { T{(static_cast<void>(I), AnyMember<T>{})...}; };
}

/// Whether `T{any, ..., {}, ..., any}` is valid, with as many values before and after `{}` as
/// the sequences hold. `{}` takes one element whole: where it lands on the first of an array
/// member's k > 1 elements, the list has k - 1 initialisers too many.
template <class T, std::size_t... Before, std::size_t... After>
constexpr bool empty_braces_fit(std::index_sequence<Before...>, std::index_sequence<After...>) {
    return requires {
        T{(static_cast<void>(Before), AnyMember<T>{})...,
          {},
          (static_cast<void>(After), AnyMember<T>{})...};
    };
}

template <class T, std::size_t n, std::size_t... At>
constexpr bool every_position_takes_one(std::index_sequence<At...>) {
    return (empty_braces_fit<T>(std::make_index_sequence<At>{},
                                std::make_index_sequence<n - 1 - At>{}) &&
            ...);
}

/// The largest n (at most max_inspected_members + 1) that initializable_with accepts.
template <class T, std::size_t N = max_inspected_members + 1>
constexpr std::size_t initializer_count() {
    if constexpr (N == 0 || initializable_with<T>(std::make_index_sequence<N>{})) {
        return N;
    } else {
        return initializer_count<T, N - 1>();
    }
}

/// T's number of members, when structured binding takes T apart into exactly that many; 0 when
/// mproc cannot tell. The count of initialisers is the count of members unless brace elision
/// spread a member over several: an array member (found by every_position_takes_one), or a base
/// with several members (likewise). Standard layout rules out members in both a base and T,
/// which structured binding refuses.
template <class T>
constexpr std::size_t member_count() {
    if constexpr (!std::is_aggregate_v<T> || std::is_union_v<T> || !std::is_standard_layout_v<T>) {
        return 0;
    } else {
        constexpr std::size_t n = initializer_count<T>();
        if constexpr (n == 0 || n > max_inspected_members) {
            return 0;
        } else {
            return every_position_takes_one<T, n>(std::make_index_sequence<n>{}) ? n : 0;
        }
    }
}

template <class T>
auto member_types(const T& value, Count<1>) {
    const auto& [m0] = value;
    return TypeList<decltype(m0)>{};
}
template <class T>
auto member_types(const T& value, Count<2>) {
    const auto& [m0, m1] = value;
    return TypeList<decltype(m0), decltype(m1)>{};
}
template <class T>
auto member_types(const T& value, Count<3>) {
    const auto& [m0, m1, m2] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2)>{};
}
template <class T>
auto member_types(const T& value, Count<4>) {
    const auto& [m0, m1, m2, m3] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3)>{};
}
template <class T>
auto member_types(const T& value, Count<5>) {
    const auto& [m0, m1, m2, m3, m4] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4)>{};
}
template <class T>
auto member_types(const T& value, Count<6>) {
    const auto& [m0, m1, m2, m3, m4, m5] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5)>{};
}
template <class T>
auto member_types(const T& value, Count<7>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6)>{};
}
template <class T>
auto member_types(const T& value, Count<8>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7)>{};
}
template <class T>
auto member_types(const T& value, Count<9>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8)>{};
}
template <class T>
auto member_types(const T& value, Count<10>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9)>{};
}
template <class T>
auto member_types(const T& value, Count<11>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10)>{};
}
template <class T>
auto member_types(const T& value, Count<12>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10), decltype(m11)>{};
}
template <class T>
auto member_types(const T& value, Count<13>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10), decltype(m11), decltype(m12)>{};
}
template <class T>
auto member_types(const T& value, Count<14>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10), decltype(m11), decltype(m12), decltype(m13)>{};
}
template <class T>
auto member_types(const T& value, Count<15>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10), decltype(m11), decltype(m12), decltype(m13), decltype(m14)>{};
}
template <class T>
auto member_types(const T& value, Count<16>) {
    const auto& [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15] = value;
    return TypeList<decltype(m0), decltype(m1), decltype(m2), decltype(m3), decltype(m4),
                    decltype(m5), decltype(m6), decltype(m7), decltype(m8), decltype(m9),
                    decltype(m10), decltype(m11), decltype(m12), decltype(m13), decltype(m14),
                    decltype(m15)>{};
}

template <class T>
using member_types_t = decltype(member_types(std::declval<const T&>(), Count<member_count<T>()>{}));

/// What the type system shows of a type's bytes.
enum class Proof {
    address_free,  // no address among them
    holds_address, // a pointer, reference, member pointer, std::string_view, std::span... inside
    unknown,       // mproc cannot tell (private members, a base, a C-array member, too many)
};

template <class T>
consteval Proof prove();

template <class List>
struct ProveAll;
template <class... Members>
struct ProveAll<TypeList<Members...>> {
    static consteval Proof value() {
        Proof result = Proof::address_free;
        ((result = result == Proof::address_free ? prove<Members>() : result), ...);
        return result;
    }
};

/// Standard class types whose members mproc knows: the types those members are.
template <class T>
struct KnownMembers {
    static constexpr bool known = false;
};
template <class T, std::size_t N>
struct KnownMembers<std::array<T, N>> {
    static constexpr bool known = true;
    using members = TypeList<T>;
};
template <class A, class B>
struct KnownMembers<std::pair<A, B>> {
    static constexpr bool known = true;
    using members = TypeList<A, B>;
};
template <class... Ts>
struct KnownMembers<std::tuple<Ts...>> {
    static constexpr bool known = true;
    using members = TypeList<Ts...>;
};
template <class T>
struct KnownMembers<std::optional<T>> {
    static constexpr bool known = true;
    using members = TypeList<T>;
};
template <class T>
struct KnownMembers<std::complex<T>> {
    static constexpr bool known = true;
    using members = TypeList<T>;
};
template <class Rep, class Period>
struct KnownMembers<std::chrono::duration<Rep, Period>> {
    static constexpr bool known = true;
    using members = TypeList<Rep>;
};
template <class Clock, class Duration>
struct KnownMembers<std::chrono::time_point<Clock, Duration>> {
    static constexpr bool known = true;
    using members = TypeList<Duration>;
};
template <std::size_t N>
struct KnownMembers<std::bitset<N>> {
    static constexpr bool known = true;
    using members = TypeList<>;
};

/// Standard class types that refer to memory elsewhere.
template <class T>
inline constexpr bool refers_elsewhere_v = false;
template <class Char, class Traits>
inline constexpr bool refers_elsewhere_v<std::basic_string_view<Char, Traits>> = true;
template <class T, std::size_t Extent>
inline constexpr bool refers_elsewhere_v<std::span<T, Extent>> = true;
template <class T>
inline constexpr bool refers_elsewhere_v<std::reference_wrapper<T>> = true;

template <class T>
consteval Proof prove() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_reference_v<T> || std::is_pointer_v<U> || std::is_member_pointer_v<U> ||
                  std::is_same_v<U, std::nullptr_t> || refers_elsewhere_v<U>) {
        return Proof::holds_address;
    } else if constexpr (std::is_arithmetic_v<U> || std::is_enum_v<U>) {
        return Proof::address_free;
    } else if constexpr (std::is_array_v<U>) {
        return prove<std::remove_extent_t<U>>();
    } else if constexpr (address_free<U>::value) {
        return Proof::address_free;
    } else if constexpr (KnownMembers<U>::known) {
        return ProveAll<typename KnownMembers<U>::members>::value();
    } else if constexpr (std::is_empty_v<U>) {
        return Proof::address_free;
    } else if constexpr (member_count<U>() != 0) {
        return ProveAll<member_types_t<U>>::value();
    } else {
        return Proof::unknown;
    }
}

/// The first type inside T (T itself, or a member, recursively) that holds an address; void
/// when there is none.
template <class T>
struct FirstAddress;

template <class List>
struct FirstAddressAmong {
    using type = void;
};
template <class Member, class... Rest>
struct FirstAddressAmong<TypeList<Member, Rest...>> {
    using type = std::conditional_t<prove<Member>() == Proof::holds_address,
                                    typename FirstAddress<Member>::type,
                                    typename FirstAddressAmong<TypeList<Rest...>>::type>;
};

template <class T>
struct FirstAddress {
    static consteval auto find() {
        using U = std::remove_cv_t<T>;
        if constexpr (prove<T>() != Proof::holds_address) {
            return std::type_identity<void>{};
        } else if constexpr (std::is_array_v<U>) {
            return std::type_identity<typename FirstAddress<std::remove_extent_t<U>>::type>{};
        } else if constexpr (std::is_class_v<U> && !refers_elsewhere_v<U> &&
                             !address_free<U>::value && KnownMembers<U>::known) {
            return std::type_identity<
                typename FirstAddressAmong<typename KnownMembers<U>::members>::type>{};
        } else if constexpr (std::is_class_v<U> && !refers_elsewhere_v<U> &&
                             member_count<U>() != 0) {
            return std::type_identity<typename FirstAddressAmong<member_types_t<U>>::type>{};
        } else {
            return std::type_identity<T>{};
        }
    }
    using type = typename decltype(find())::type;
};

} // namespace mproc::detail
