// SPDX-License-Identifier: MIT
#pragma once
// Values that cross a process boundary (arguments, items, results).
//
// Two encodings, chosen at compile time from the type alone (both ends run the same binary, so
// they always agree):
//  - bytes: a trivially copyable type that provably holds no address is its object
//    representation, one memcpy (the proof, address_proof.hpp: arithmetic types, enums, the
//    standard composites of such, aggregates whose members all are such; or the user's word,
//    mproc::address_free). Raw pointers, references, member pointers and pointer-holding
//    standard types (std::string_view, std::span, std::reference_wrapper), alone or anywhere
//    inside, are refused: an address means nothing in another process. A user-written cereal
//    member (serialize/save/load) wins over bytes, so a type can take control of its own
//    encoding.
//  - cereal: everything else, through cereal's binary archive, written straight into the
//    WireWriter. The payload is prefixed with its size, so decoding can never read past the
//    value (nor into the frame's next field), and a sender and receiver that disagree on the
//    type are caught when the sizes do not match. std::string and std::vector of a bytes type
//    skip cereal: a size and one block copy.
// A type that is neither is a compile-time error (static_assert) that says what to add; a
// trivially copyable type mproc cannot prove address-free (private members, say) needs a
// serialize member or mproc::address_free.
//
// Trivially copyable types nested in cereal-encoded containers (std::map<int, Point>,
// std::optional<Point>, ...) also cross as bytes, through a cereal serialize overload for the
// binary archives defined at the end of this file (cereal alone would demand a serialize
// function of Point).

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <forward_list>
#include <functional>
#include <istream>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#if !__has_include(<cereal/cereal.hpp>)
#error                                                                                             \
    "mproc: mproc::Pool and mproc::MpiPool encode what crosses to worker processes with cereal, which is not installed (Debian: libcereal-dev); mproc::ThreadPool alone does not need it"
#endif
#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/forward_list.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "mproc/detail/wire/address_proof.hpp"
#include "mproc/detail/wire/checked_input_archive.hpp"
#include "mproc/detail/wire/lent_memory.hpp"
#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

// ---- which types hold addresses -------------------------------------------------------------

/// Standard class templates over types whose encoding is their elements' encoding: the
/// transport checks look inside them (for addresses, and for element types cereal cannot
/// handle), so that `std::vector<int*>` is refused with mproc's message rather than deep inside
/// cereal.
template <template <class...> class Template>
inline constexpr bool is_std_wrapper_v = false;
template <>
inline constexpr bool is_std_wrapper_v<std::vector> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::deque> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::list> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::forward_list> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::map> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::multimap> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::unordered_map> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::unordered_multimap> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::set> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::multiset> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::unordered_set> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::unordered_multiset> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::pair> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::tuple> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::optional> = true;
template <>
inline constexpr bool is_std_wrapper_v<std::variant> = true;

/// Whether T has a cereal member function (serialize, save/load, save_minimal/load_minimal,
/// versioned or not). Such a type was written for cereal, so cereal encodes it even when it is
/// trivially copyable.
template <class T>
inline constexpr bool has_cereal_member_v = [] {
    if constexpr (std::is_class_v<T>) {
        using Out = cereal::BinaryOutputArchive;
        using In = cereal::BinaryInputArchive;
        using namespace cereal::traits;
        return has_member_serialize<T, Out>::value ||
               has_member_versioned_serialize<T, Out>::value || has_member_save<T, Out>::value ||
               has_member_versioned_save<T, Out>::value || has_member_save_minimal<T, Out>::value ||
               has_member_versioned_save_minimal<T, Out>::value || has_member_load<T, In>::value ||
               has_member_versioned_load<T, In>::value || has_member_load_minimal<T, In>::value ||
               has_member_versioned_load_minimal<T, In>::value;
    } else {
        return false;
    }
}();

/// Whether the proof (address_proof.hpp) finds an address in T. A type with its own cereal
/// member chose what crosses: its members are not looked at (nor taken apart, which an
/// anonymous union member would not survive).
template <class T>
consteval bool proven_to_hold_address() {
    if constexpr (has_cereal_member_v<T>) {
        return false;
    } else {
        return prove<T>() == Proof::holds_address;
    }
}

/// Whether a value of T contains an address: itself, in a member, or in an element of a
/// standard container. (cv-unqualified T; see holds_address_v) The proof knows the standard
/// types that refer elsewhere (std::string_view, std::span, std::reference_wrapper).
template <class T>
struct holds_address : std::bool_constant<proven_to_hold_address<T>()> {};

template <class T>
inline constexpr bool holds_address_v = holds_address<std::remove_cv_t<T>>::value;

template <class T, std::size_t N>
struct holds_address<T[N]> : std::bool_constant<holds_address_v<T>> {};
template <class T, std::size_t N>
struct holds_address<std::array<T, N>> : std::bool_constant<holds_address_v<T>> {};
template <class T, class Deleter>
struct holds_address<std::unique_ptr<T, Deleter>> : std::bool_constant<holds_address_v<T>> {};
template <class T>
struct holds_address<std::shared_ptr<T>> : std::bool_constant<holds_address_v<T>> {};
template <template <class...> class Template, class... Args>
consteval bool template_holds_address() {
    if constexpr (is_std_wrapper_v<Template>) {
        return (holds_address_v<Args> || ...);
    } else {
        return proven_to_hold_address<Template<Args...>>();
    }
}
template <template <class...> class Template, class... Args>
struct holds_address<Template<Args...>>
    : std::bool_constant<template_holds_address<Template, Args...>()> {};

/// The type inside T that holds the address, for the refusal's message: T's member's
/// (FirstAddress), or through a standard wrapper its element's; void when none is named.
template <class T>
struct AddressInside {
    using type = typename FirstAddress<T>::type;
};
template <class... Args>
struct FirstAddressInside {
    using type = void;
};
template <class Arg, class... Rest>
struct FirstAddressInside<Arg, Rest...> {
    using type = typename std::conditional_t<holds_address_v<Arg>, AddressInside<Arg>,
                                             FirstAddressInside<Rest...>>::type;
};
template <template <class...> class Template, class... Args>
requires is_std_wrapper_v<Template>
struct AddressInside<Template<Args...>> {
    using type = typename FirstAddressInside<Args...>::type;
};
template <class T, class Deleter>
struct AddressInside<std::unique_ptr<T, Deleter>> {
    using type = typename FirstAddressInside<T>::type;
};
template <class T>
struct AddressInside<std::shared_ptr<T>> {
    using type = typename FirstAddressInside<T>::type;
};

// ---- what cereal knows about a type ---------------------------------------------------------

/// Whether T crosses as its bytes: trivially copyable, provably free of addresses, and without
/// a cereal member of its own (which wins, and whose type is then not taken apart at all: an
/// anonymous union member would stop compilation there). Nested `if constexpr`, because `&&`
/// in a constant condition still instantiates prove<T>.
template <class T>
consteval bool provably_bytes() {
    if constexpr (!std::is_trivially_copyable_v<T> || has_cereal_member_v<T>) {
        return false;
    } else {
        return prove<T>() == Proof::address_free;
    }
}

/// Whether cereal can write and read T with the binary archives.
template <class T>
inline constexpr bool cereal_serializable_v =
    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value&&
        cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

// ---- the transport decision -----------------------------------------------------------------

/// How a type crosses a process boundary, or why it cannot.
enum class Transport {
    bytes,                     // trivially copyable: its object representation
    cereal,                    // cereal binary archive (or a block fast path)
    not_an_object,             // a reference, function, void, or cv-qualified type
    c_array,                   // T[N]: cannot be returned by value
    address,                   // holds a raw address
    address_member,            // an aggregate with a member that holds a raw address
    unproven,                  // trivially copyable, but not provably free of addresses
    not_serializable,          // neither trivially copyable nor known to cereal
    not_default_constructible, // known to cereal, but cannot be loaded into
};

template <class T>
consteval Transport transport_of();

/// Whether a value of T can be loaded by cereal as part of a larger value (a container
/// element, a tuple member, a map key): cereal loads into default-constructed elements.
template <class T>
consteval bool loadable_element() {
    if constexpr (std::is_class_v<T> && std::is_empty_v<T>) {
        // cereal writes nothing for an empty class and loads it by default construction. This
        // also covers the allocator, comparator and hash arguments of the containers (which
        // cereal never writes; std::allocator is not even trivially copyable).
        return std::is_default_constructible_v<T>;
    } else {
        constexpr Transport how = transport_of<T>();
        return how == Transport::cereal ||
               (how == Transport::bytes && std::is_default_constructible_v<T>);
    }
}

/// Whether a smart pointer's pointee can be loaded: as an element, or through cereal's
/// load_and_construct (which needs no default constructor).
template <class T>
consteval bool loadable_pointee() {
    constexpr Transport how = transport_of<T>();
    return loadable_element<T>() ||
           (how == Transport::not_default_constructible &&
            cereal::traits::has_load_and_construct<T, cereal::BinaryInputArchive>::value);
}

/// Whether the elements of a standard wrapper (including its allocator, comparator and hash
/// arguments, empty unless the user chose otherwise) can all be loaded. Other types are checked
/// by cereal's traits alone.
template <class T>
struct elements_loadable : std::true_type {};
template <class... Args>
struct all_loadable : std::bool_constant<(loadable_element<Args>() && ...)> {};
template <template <class...> class Template, class... Args>
struct elements_loadable<Template<Args...>>
    : std::conditional_t<is_std_wrapper_v<Template>, all_loadable<Args...>, std::true_type> {};
template <class T, std::size_t N>
struct elements_loadable<std::array<T, N>> : std::bool_constant<loadable_element<T>()> {};
template <class T, class Deleter>
struct elements_loadable<std::unique_ptr<T, Deleter>> : std::bool_constant<loadable_pointee<T>()> {
};
template <class T>
struct elements_loadable<std::shared_ptr<T>> : std::bool_constant<loadable_pointee<T>()> {};

template <class T>
consteval Transport transport_of() {
    if constexpr (!std::is_object_v<T> || std::is_const_v<T> || std::is_volatile_v<T>) {
        return Transport::not_an_object;
    } else if constexpr (std::is_array_v<T>) {
        return Transport::c_array;
    } else if constexpr (holds_address_v<T>) {
        using Found = typename AddressInside<T>::type;
        return std::is_void_v<Found> || std::is_same_v<Found, T> ? Transport::address
                                                                 : Transport::address_member;
    } else if constexpr (provably_bytes<T>()) {
        return Transport::bytes;
    } else if constexpr (std::is_trivially_copyable_v<T> && !has_cereal_member_v<T> &&
                         !cereal_serializable_v<T>) {
        return Transport::unproven;
    } else if constexpr (!cereal_serializable_v<T> || !elements_loadable<T>::value) {
        return Transport::not_serializable;
    } else if constexpr (!std::is_default_constructible_v<T> && !has_cereal_member_v<T>) {
        // A type with its own cereal member may give cereal::access a private default
        // constructor (cereal's documented way); decode_with_cereal uses it.
        return Transport::not_default_constructible;
    } else {
        return Transport::cereal;
    }
}

/// Whether values of T can be sent to and received from another process with encode_value /
/// decode_value.
template <class T>
inline constexpr bool transportable_v = transport_of<T>() == Transport::bytes
                                        || transport_of<T>() == Transport::cereal;

/// Types that cross as bytes when nested inside a cereal-encoded value, through the serialize
/// overload at the end of this file: class types cereal has no serialization for of its own.
/// Empty classes are left to cereal, which writes nothing for them.
template <class T>
inline constexpr bool needs_byte_serializer_v = [] {
    if constexpr ((std::is_class_v<T> || std::is_union_v<T>)&&!std::is_empty_v<T> &&
                  provably_bytes<T>()) {
        // cereal's own non-member functions for standard types (std::optional, std::variant,
        // std::chrono, std::complex, ...) are save/load pairs; a user's may be too. Either wins.
        // A user's non-member serialize wins by overload resolution (it is more specialised).
        // Both directions are checked: some of cereal's internal wrappers have a load for one
        // instantiation and a save for another.
        using Out = cereal::BinaryOutputArchive;
        using In = cereal::BinaryInputArchive;
        using namespace cereal::traits;
        return !has_non_member_save<T, Out>::value &&
               !has_non_member_versioned_save<T, Out>::value &&
               !has_non_member_save_minimal<T, Out>::value &&
               !has_non_member_versioned_save_minimal<T, Out>::value &&
               !has_non_member_versioned_serialize<T, Out>::value &&
               !has_non_member_load<T, In>::value && !has_non_member_versioned_load<T, In>::value &&
               !has_non_member_load_minimal<T, In>::value &&
               !has_non_member_versioned_load_minimal<T, In>::value &&
               !has_non_member_versioned_serialize<T, In>::value;
    } else {
        return false;
    }
}();

// ---- compile-time diagnostics ---------------------------------------------------------------

template <class>
inline constexpr bool dependent_false_v = false;

/// Fails compilation naming, in the template arguments the compiler prints, the type and the
/// type of its member or element that holds an address.
template <class T, class MemberHoldingAddress>
auto report_address_member() {
    static_assert(dependent_false_v<T>,
                  "mproc: type T holds a raw address in a member or element (a pointer, a "
                  "reference, a pointer to member, std::string_view or std::span, whose type "
                  "the compiler shows as MemberHoldingAddress), which means nothing in another "
                  "process: hold the data itself (e.g. std::vector instead of a pointer and a "
                  "size), or give the type a cereal serialize member that sends what the "
                  "address refers to");
}

/// Fails compilation with the message that says what T lacks. Exactly one static_assert fires.
template <class T, Transport how>
auto report_untransportable() {
    if constexpr (how == Transport::not_an_object) {
        static_assert(dependent_false_v<T>,
                      "mproc: only object types cross a process boundary, not references, "
                      "functions, void or const/volatile-qualified types: use std::decay_t<T>");
    } else if constexpr (how == Transport::c_array) {
        static_assert(dependent_false_v<T>,
                      "mproc: a C array cannot cross a process boundary: use std::array or "
                      "std::vector");
    } else if constexpr (how == Transport::address) {
        static_assert(dependent_false_v<T>,
                      "mproc: type T holds a raw address (a pointer, a pointer to member, "
                      "std::string_view, std::span or std::reference_wrapper, possibly inside a "
                      "container), which means nothing in another process: send the value it "
                      "refers to instead (e.g. std::string, not std::string_view)");
    } else if constexpr (how == Transport::address_member) {
        report_address_member<T, typename AddressInside<T>::type>();
    } else if constexpr (how == Transport::unproven) {
        static_assert(dependent_false_v<T>,
                      "mproc: type T is trivially copyable, but mproc cannot prove that its bytes "
                      "hold no address (it has private members, a base class with members, a C "
                      "array member of several elements, or more than 16 members): give it a "
                      "cereal serialize member, or, if its bytes are its whole value, declare "
                      "`template <> struct mproc::address_free<T> : std::true_type {};`");
    } else if constexpr (how == Transport::not_serializable) {
        static_assert(dependent_false_v<T>,
                      "mproc: type T cannot cross a process boundary: give it a cereal `template "
                      "<class Archive> void serialize(Archive&)` member, or make it trivially "
                      "copyable with no address inside (e.g. an aggregate of numbers) (for a "
                      "standard container, tuple, optional or variant: make its element types "
                      "so, and default-constructible)");
    } else if constexpr (how == Transport::not_default_constructible) {
        static_assert(dependent_false_v<T>,
                      "mproc: type T cannot be decoded in another process: cereal loads into a "
                      "default-constructed object, so give T a public default constructor (or a "
                      "cereal serialize() member and a private default constructor with `friend "
                      "class cereal::access;`)");
    }
}

/// Fails compilation, with the message that says what to add, unless T can cross.
template <class T>
auto require_sendable_value() {
    if constexpr (!transportable_v<T>) {
        report_untransportable<T, transport_of<T>()>();
    }
}

// ---- streams over the wire buffers ----------------------------------------------------------

/// A std::streambuf that appends whatever is written to a WireWriter, so that cereal's archive
/// writes into the frame directly, without an intermediate buffer.
class WireOutputBuffer final : public std::streambuf {
  public:
    /// Directs output to `out` (nullptr: detached; writing then is a bug).
    void attach(WireWriter* out) noexcept { out_ = out; }

  protected:
    std::streamsize xsputn(const char* data, std::streamsize size) override {
        out_->write_bytes(data, static_cast<std::size_t>(size));
        return size;
    }
    int_type overflow(int_type byte) override {
        if (!traits_type::eq_int_type(byte, traits_type::eof())) {
            const char c = traits_type::to_char_type(byte);
            out_->write_bytes(&c, 1);
        }
        return traits_type::not_eof(byte);
    }

  private:
    WireWriter* out_ = nullptr;
};

/// A std::streambuf that reads a fixed span of bytes in place. Reading stops at the span's end
/// (sgetn returns short, and cereal throws), so a value cannot be decoded from bytes that are
/// not its own.
class WireInputBuffer final : public std::streambuf {
  public:
    /// Reads from [data, data + size) from now on.
    void attach(const std::byte* data, std::size_t size) noexcept {
        // The get area is never written through: pbackfail is not overridden, so a putback
        // that would change a byte fails instead.
        char* begin = const_cast<char*>(reinterpret_cast<const char*>(data));
        setg(begin, begin, begin + size);
    }

    /// How many bytes have been read since attach().
    std::size_t consumed() const noexcept { return static_cast<std::size_t>(gptr() - eback()); }
};

/// A stream over a wire buffer, kept per thread and reused: constructing a std::ostream or
/// std::istream costs about 100 ns (it copies the global locale), as much as encoding a small
/// value with cereal does.
template <class Buffer, class Stream>
struct ReusableStream {
    Buffer buffer;
    Stream stream{&buffer};
    bool in_use = false;
};

/// Calls `use(buffer, stream)` with this thread's reusable stream, or with a fresh one when the
/// thread's is in use (a user's serialize function that itself encodes or decodes a value).
template <class Buffer, class Stream, class Use>
decltype(auto) with_stream(ReusableStream<Buffer, Stream>& reusable, Use&& use) {
    if (reusable.in_use) {
        ReusableStream<Buffer, Stream> fresh;
        return use(fresh.buffer, fresh.stream);
    }
    struct Release {
        ReusableStream<Buffer, Stream>& reusable;
        ~Release() { reusable.in_use = false; }
    };
    reusable.in_use = true;
    const Release release{reusable};
    reusable.stream.clear(); // cereal does not set stream state, but a user's function might
    return use(reusable.buffer, reusable.stream);
}

inline ReusableStream<WireOutputBuffer, std::ostream>& thread_output_stream() {
    thread_local ReusableStream<WireOutputBuffer, std::ostream> reusable;
    return reusable;
}

inline ReusableStream<WireInputBuffer, std::istream>& thread_input_stream() {
    thread_local ReusableStream<WireInputBuffer, std::istream> reusable;
    return reusable;
}

/// Encodes with cereal, prefixed by the payload's size. On an exception the writer is left as
/// it was before the call.
template <class T>
void encode_with_cereal(WireWriter& out, const T& value) {
    const std::size_t start = out.size();
    out.write<std::uint64_t>(0); // the size, patched below
    try {
        with_stream(thread_output_stream(), [&](WireOutputBuffer& buffer, std::ostream& stream) {
            buffer.attach(&out);
            cereal::BinaryOutputArchive archive(stream);
            archive(value);
            buffer.attach(nullptr);
        });
    } catch (...) {
        out.truncate(start);
        throw;
    }
    out.patch<std::uint64_t>(start, static_cast<std::uint64_t>(out.size() - start - 8));
}

/// Decodes what encode_with_cereal wrote. Throws WireError if the bytes are truncated, do not
/// decode, or do not decode to exactly their announced size.
template <class T>
T decode_with_cereal(WireReader& in) {
    const auto size = in.read<std::uint64_t>();
    if (size > in.remaining()) {
        throw WireError("mproc: truncated frame (a value announces " + std::to_string(size) +
                        " bytes, " + std::to_string(in.remaining()) + " left)");
    }
    const std::byte* data = in.take(static_cast<std::size_t>(size));
    return with_stream(thread_input_stream(), [&](WireInputBuffer& buffer, std::istream& stream) {
        buffer.attach(data, static_cast<std::size_t>(size));
        CheckedBinaryInputArchive archive(stream);
        // Loaded into a default-constructed object: the public constructor, or the private one a
        // type with a cereal member may open to cereal::access.
        std::optional<T> public_default;
        std::unique_ptr<T> private_default;
        if constexpr (std::is_default_constructible_v<T>) {
            public_default.emplace();
        } else {
            private_default.reset(cereal::access::construct<T>());
        }
        T& value = public_default ? *public_default : *private_default;
        try {
            archive(value);
        } catch (const cereal::Exception& error) {
            throw WireError(std::string("mproc: a value does not decode: ") + error.what());
        }
        if (buffer.consumed() != size) {
            throw WireError("mproc: a value decoded from " + std::to_string(buffer.consumed()) +
                            " of its " + std::to_string(size) +
                            " bytes (sender and receiver disagree on its type)");
        }
        return T(std::move(value));
    });
}

// ---- block fast paths -----------------------------------------------------------------------

/// Contiguous sequences of a bytes type that are sent as a count and one block copy.
template <class T>
inline constexpr bool is_block_element_v = transport_of<T>() == Transport::bytes &&
                                           !std::is_same_v<T, bool>; // vector<bool>: no data()

template <class T>
struct block_sequence : std::false_type {};
template <class T>
struct block_sequence<std::vector<T, std::allocator<T>>>
    : std::bool_constant<is_block_element_v<T>> {
    using element = T;
};
template <class Char>
struct block_sequence<std::basic_string<Char, std::char_traits<Char>, std::allocator<Char>>>
    : std::bool_constant<is_block_element_v<Char>> {
    using element = Char;
};

/// How long a value being encoded stays alive and unchanged: only for the call (a worker's
/// result, a temporary), or until the writer is sent or cleared (what a job holds for a chunk
/// it has handed out: its arguments, or a map's input). Large blocks of the second kind may
/// travel by reference (WireWriter::write_borrowed) instead of being copied into the frame.
enum class ValueLifetime { temporary, outlives_send };

template <class Sequence>
void encode_block(WireWriter& out, const Sequence& sequence, ValueLifetime lifetime) {
    using Element = typename block_sequence<Sequence>::element;
    out.write<std::uint64_t>(sequence.size());
    const std::size_t bytes = sequence.size() * sizeof(Element);
    if (lifetime == ValueLifetime::outlives_send) {
        out.write_borrowed(sequence.data(), bytes);
    } else {
        out.write_bytes(sequence.data(), bytes);
    }
}

/// The elements of a block read in place from bytes at any address (a frame's fields are not
/// aligned): a forward iterator whose elements are copied out with memcpy, so that a sequence
/// can be built from a misaligned block in one pass, without value-initialising it first.
template <class Element>
class UnalignedElements {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Element;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Element;

    UnalignedElements() = default;
    explicit UnalignedElements(const std::byte* at) noexcept : at_(at) {}

    Element operator*() const noexcept {
        Element element;
        std::memcpy(static_cast<void*>(std::addressof(element)), at_, sizeof(Element));
        return element;
    }
    UnalignedElements& operator++() noexcept {
        at_ += sizeof(Element);
        return *this;
    }
    UnalignedElements operator++(int) noexcept {
        UnalignedElements before = *this;
        ++*this;
        return before;
    }
    friend difference_type operator-(UnalignedElements a, UnalignedElements b) noexcept {
        return (a.at_ - b.at_) / static_cast<difference_type>(sizeof(Element));
    }
    friend bool operator==(UnalignedElements, UnalignedElements) noexcept = default;

  private:
    const std::byte* at_ = nullptr;
};

/// Writes `value` as a lent block (lent_memory.hpp) and keeps it in `lends`, where they allow
/// it and it is a block sequence of min_lent_bytes or more, not referred to elsewhere (an
/// rvalue); returns false (and leaves everything as it was) otherwise.
template <class T>
bool lend_block(WireWriter& out, T&& value, LentValues& lends = this_process_lends) {
    using Sequence = std::remove_cvref_t<T>;
    if constexpr (block_sequence<Sequence>::value && !std::is_lvalue_reference_v<T>) {
        using Element = typename block_sequence<Sequence>::element;
        if (!lends.allowed() || value.size() * sizeof(Element) < min_lent_bytes) {
            return false;
        }
        // Moved, so that the elements stay where they are until the caller has read them.
        auto kept = std::make_shared<const Sequence>(std::move(value));
        out.write<std::uint64_t>(kept->size() | lent_block_flag);
        out.write<std::uint64_t>(reinterpret_cast<std::uintptr_t>(kept->data()));
        lends.keep(std::move(kept));
        return true;
    } else {
        return false;
    }
}

/// Reads a lent block of `count` elements: from the memory of the process that lent it.
template <class Sequence>
Sequence decode_lent_block(WireReader& in, std::uint64_t count) {
    using Element = typename block_sequence<Sequence>::element;
    const auto address = in.read<std::uint64_t>();
    // A lent block is no larger than a frame could be: a garbled count is a WireError, not a
    // huge allocation.
    if (in.lender() < 0 || count > max_lent_bytes / sizeof(Element)) {
        throw WireError(in.lender() < 0 ? "mproc: a lent block where none may be"
                                        : "mproc: a lent block of " + std::to_string(count) +
                                              " elements refused");
    }
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(Element);
    Sequence sequence;
    sequence.reserve(count);
    advise_huge_pages(sequence.data(), bytes);
    sequence.resize(count); // zeroed first: a sequence of the standard allocator cannot skip it
    read_lent(in.lender(), address, sequence.data(), bytes);
    return sequence;
}

template <class Sequence>
Sequence decode_block(WireReader& in) {
    using Element = typename block_sequence<Sequence>::element;
    const auto count = in.read<std::uint64_t>();
    if ((count & lent_block_flag) != 0) {
        return decode_lent_block<Sequence>(in, count & ~lent_block_flag);
    }
    // Checked before allocating, so a garbled count is a WireError, not a huge allocation.
    if (count > in.remaining() / sizeof(Element)) {
        throw WireError("mproc: truncated frame (a sequence announces " + std::to_string(count) +
                        " elements of " + std::to_string(sizeof(Element)) + " bytes, " +
                        std::to_string(in.remaining()) + " bytes left)");
    }
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(Element);
    const std::byte* data = in.take(bytes);
    // Copied straight into the new sequence's storage: one pass, where value-initialising it
    // first and copying then would be two (and for a large result the first one pays the page
    // faults of fresh memory, a third of a map's time over vectors of a megabyte).
    auto copy_into = [&](auto&& make) -> Sequence {
        if (reinterpret_cast<std::uintptr_t>(data) % alignof(Element) == 0) {
            const auto* elements = reinterpret_cast<const Element*>(data);
            return make(elements, elements + count);
        }
        return make(UnalignedElements<Element>(data), UnalignedElements<Element>(data + bytes));
    };
    if (bytes < huge_page_advice_threshold) {
        return copy_into([](auto first, auto last) { return Sequence(first, last); });
    }
    // A large block: its storage is reserved and advised to take huge pages before the copy
    // touches it (the fresh memory's page faults would cost several times the copy itself).
    return copy_into([&](auto first, auto last) {
        Sequence sequence;
        sequence.reserve(count);
        advise_huge_pages(sequence.data(), bytes);
        sequence.insert(sequence.end(), first, last);
        return sequence;
    });
}

// ---- pairs and tuples of bytes types -------------------------------------------------------

/// A std::pair or std::tuple whose members all cross as bytes (the arguments of a starmap
/// item, typically) crosses member after member as their bytes: it is not trivially copyable
/// itself (its assignment operators are user-provided), but a cereal stream for two integers
/// would cost more than the task.
template <class T>
struct bytes_members : std::false_type {};
template <class... Members>
struct bytes_members<std::tuple<Members...>>
    : std::bool_constant<((transport_of<Members>() == Transport::bytes &&
                           std::is_default_constructible_v<Members>)&&...)> {};
template <class First, class Second>
struct bytes_members<std::pair<First, Second>> : bytes_members<std::tuple<First, Second>> {};

template <class T>
void encode_members(WireWriter& out, const T& value) {
    std::apply(
        [&](const auto&... member) {
            (out.write_bytes(std::addressof(member), sizeof(member)), ...);
        },
        value);
}

template <class T>
T decode_members(WireReader& in) {
    T value;
    std::apply(
        [&](auto&... member) { (in.read_bytes(std::addressof(member), sizeof(member)), ...); },
        value);
    return value;
}

// ---- sizes known without encoding ----------------------------------------------------------

/// How many bytes encode_value writes for `value`, where that is known without encoding it (a
/// bytes type, a block sequence); 0 where it is not (cereal's encodings are found out only by
/// writing them). What the auto chunksize of a process pool weighs items by.
template <class T>
std::size_t known_encoded_size(const T& value) noexcept {
    if constexpr (transport_of<T>() == Transport::bytes) {
        return sizeof(T);
    } else if constexpr (block_sequence<T>::value) {
        return sizeof(std::uint64_t) + value.size() * sizeof(typename block_sequence<T>::element);
    } else {
        return 0;
    }
}

// ---- the codec ------------------------------------------------------------------------------

/// Appends `value` to `out` so that decode_value<T> in any process running the same binary
/// re-creates it.
/// @tparam T the value's type: trivially copyable (without raw pointers), or serializable by
///     cereal; anything else fails to compile with a message that says what to add.
/// @throws std::bad_alloc; whatever a user's cereal serialize/save function throws (the writer
///     is then left as it was).
template <class T>
void encode_value(WireWriter& out, const T& value,
                  ValueLifetime lifetime = ValueLifetime::temporary) {
    constexpr Transport how = transport_of<T>();
    if constexpr (how == Transport::bytes) {
        out.write_bytes(std::addressof(value), sizeof(T));
    } else if constexpr (how == Transport::cereal) {
        if constexpr (block_sequence<T>::value) {
            encode_block(out, value, lifetime);
        } else if constexpr (bytes_members<T>::value) {
            encode_members(out, value);
        } else {
            encode_with_cereal(out, value);
        }
    } else {
        report_untransportable<T, how>();
    }
}

/// Reads a value written by encode_value<T>.
/// @returns the value.
/// @throws WireError if the bytes are truncated or do not decode as a T (never reads past the
///     end of `in`); std::bad_alloc; whatever a user's cereal load function throws.
template <class T>
T decode_value(WireReader& in) {
    constexpr Transport how = transport_of<T>();
    if constexpr (how == Transport::bytes) {
        if constexpr (std::is_default_constructible_v<T>) {
            T value;
            in.read_bytes(std::addressof(value), sizeof(T));
            return value;
        } else {
            // No default constructor to read into: build the value from its bytes instead.
            std::array<std::byte, sizeof(T)> bytes;
            in.read_bytes(bytes.data(), sizeof(T));
            return std::bit_cast<T>(bytes);
        }
    } else if constexpr (how == Transport::cereal) {
        if constexpr (block_sequence<T>::value) {
            return decode_block<T>(in);
        } else if constexpr (bytes_members<T>::value) {
            return decode_members<T>(in);
        } else {
            return decode_with_cereal<T>(in);
        }
    } else {
        report_untransportable<T, how>();
        std::terminate(); // not reached: the static_assert above has failed compilation
    }
}

} // namespace mproc::detail

namespace cereal {

/// Trivially copyable class types that cereal has no serialization for cross as their bytes when
/// nested in a cereal-encoded value, as they do at the top level. Only for the binary archives
/// mproc uses, so a program's own JSON or XML archives see no change. Found by argument-
/// dependent lookup through the archive type, as cereal's own overloads are.
template <class Archive, class T>
std::enable_if_t<(std::is_same_v<Archive, BinaryOutputArchive> ||
                  std::is_same_v<Archive, BinaryInputArchive> ||
                  std::is_same_v<Archive, mproc::detail::CheckedBinaryInputArchive>)&&mproc::
                     detail::needs_byte_serializer_v<T>>
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& archive, T& value) {
    archive(binary_data(std::addressof(value), sizeof(T)));
}

} // namespace cereal
