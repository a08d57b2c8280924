// SPDX-License-Identifier: MIT
#pragma once
/// @file address_free.hpp
/// `mproc::address_free<T>`: a user's word that a type's bytes are its whole value.

#include <type_traits>

namespace mproc {

/// A process pool sends a trivially copyable value as its bytes only when it can prove that
/// the bytes hold no address (a pointer means nothing in another process): arithmetic types,
/// enums, std::array, std::pair, std::tuple, std::optional, std::complex and std::chrono types
/// of such, and aggregates whose members are all such (up to 16 members, no C-array member, no
/// base class with members). For another trivially copyable type (private members, say) whose
/// bytes are nonetheless its whole value, specialise this trait:
///
/// @code
///   class Rgb { ... private: std::uint8_t r_, g_, b_; };
///   template <> struct mproc::address_free<Rgb> : std::true_type {};
/// @endcode
///
/// The specialisation is a promise mproc cannot check: a pointer or an index into this
/// process's memory among the bytes arrives meaning something else. Or give the type a cereal
/// `serialize` member instead.
template <class T>
struct address_free : std::false_type {};

} // namespace mproc
