// SPDX-License-Identifier: MIT
#pragma once
// Callables that cross a process boundary: what a worker process needs to call the same
// function the caller passed.
//
//  - a function pointer crosses as its CodeAddress (module + offset), never as a raw address;
//    a worker running another binary cannot resolve it and refuses the task;
//  - a stateless function object (a captureless lambda, std::plus<>, an empty struct) crosses
//    as nothing: the worker default-constructs it (C++20 closure types without captures are
//    default-constructible), and its type, known to the worker's instantiated entry, says
//    which code to run;
//  - a function object with state crosses as a value (value_codec.hpp): with a serialize
//    member, or as its bytes when its members provably hold no address.
//
// A lambda with captures is refused even when it is trivially copyable: by-reference captures
// are addresses, and a forked worker would silently read its own stale copy of the caller's
// memory through them. The compiler's name for the type is the only way to tell a closure
// from a struct (closure types have no other distinguishing trait), so GCC's and Clang's
// spelling of it is looked for; on another compiler every trivially copyable function object
// without a cereal member is refused.

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

/// The compiler's spelling of T, inside a function signature.
template <class T>
consteval std::string_view type_signature() {
    return __PRETTY_FUNCTION__;
}

/// Whether T is (or, as a template argument, contains) a lambda's closure type, judged by the
/// compiler's name for it: GCC spells it `<lambda(...)>`, Clang `(lambda at file:line:column)`.
template <class T>
inline constexpr bool names_closure_type_v = [] {
#if defined(__GNUC__) || defined(__clang__)
    constexpr std::string_view signature = type_signature<T>();
    return signature.find("<lambda(") != std::string_view::npos ||
           signature.find("(lambda at ") != std::string_view::npos;
#else
    return !has_cereal_member_v<T>; // cannot tell: refuse any function object that is not cereal's
#endif
}();

/// How a callable crosses a process boundary, or why it cannot.
enum class CallableTransport {
    code_address,   // a function pointer
    stateless,      // nothing sent; default-constructed by the worker
    value,          // value_codec
    member_pointer, // refused: wrap it in a lambda
    not_an_object,  // refused: a function type or reference, or cv-qualified
    with_state,     // refused: a lambda with captures
    value_refused,  // refused: a function object whose state cannot cross (value_codec says why)
};

template <class F>
consteval CallableTransport callable_transport_of() {
    if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) {
        return CallableTransport::code_address;
    } else if constexpr (std::is_member_pointer_v<F>) {
        return CallableTransport::member_pointer;
    } else if constexpr (!std::is_class_v<F> || std::is_const_v<F> || std::is_volatile_v<F>) {
        return CallableTransport::not_an_object;
    } else if constexpr (std::is_empty_v<F> && std::is_default_constructible_v<F>) {
        return CallableTransport::stateless;
    } else if constexpr (names_closure_type_v<F>) {
        return CallableTransport::with_state;
    } else if constexpr (!transportable_v<F>) {
        return CallableTransport::value_refused;
    } else {
        return CallableTransport::value;
    }
}

/// Whether F can be sent to a worker process with encode_callable / decode_callable.
template <class F>
inline constexpr bool
    transportable_callable_v = callable_transport_of<F>() == CallableTransport::code_address
                               || callable_transport_of<F>() == CallableTransport::stateless
                               || callable_transport_of<F>() == CallableTransport::value;

/// Fails compilation with the message that says how to make F sendable.
template <class F, CallableTransport how>
auto report_untransportable_callable() {
    if constexpr (how == CallableTransport::member_pointer) {
        static_assert(dependent_false_v<F>,
                      "mproc: a pointer to member cannot be sent to a worker process: wrap the "
                      "call in a lambda without captures, e.g. [](const Foo& foo) { return "
                      "foo.bar(); }");
    } else if constexpr (how == CallableTransport::not_an_object) {
        static_assert(dependent_false_v<F>,
                      "mproc: pass a callable by value (a function pointer or a function object), "
                      "not a function type, reference or const-qualified type: use "
                      "std::decay_t<F>");
    } else if constexpr (how == CallableTransport::with_state) {
        static_assert(dependent_false_v<F>,
                      "mproc: this callable cannot be sent to a worker process (a lambda with "
                      "captures?): pass the state as arguments, set it up in the pool's "
                      "initializer, or use a function object with a cereal serialize() member "
                      "(a lambda with a capture-default, [&] or [=], counts as capturing even "
                      "when it captures nothing)");
    } else if constexpr (how == CallableTransport::value_refused) {
        report_untransportable<F, transport_of<F>()>();
    }
}

/// Fails compilation, with the message that says what to do, unless F can cross.
template <class F>
auto require_sendable_callable() {
    if constexpr (!transportable_callable_v<F>) {
        report_untransportable_callable<F, callable_transport_of<F>()>();
    }
}

/// Appends what a worker needs to re-create `f`: its code address, nothing, or its state.
/// @tparam F a function pointer, a stateless function object, or a function object that is a
///     transportable value; anything else fails to compile with a message saying what to do.
/// @throws std::invalid_argument for a null function pointer; mproc::Error if a function
///     pointer points outside every loaded module; what encode_value throws.
template <class F>
void encode_callable(WireWriter& out, const F& f) {
    constexpr CallableTransport how = callable_transport_of<F>();
    if constexpr (how == CallableTransport::code_address) {
        if (f == nullptr) {
            throw std::invalid_argument("mproc: the function to call is a null pointer");
        }
        out.write(code_address_of_function(f));
    } else if constexpr (how == CallableTransport::stateless) {
        // Nothing: the type is the whole callable.
    } else if constexpr (how == CallableTransport::value) {
        encode_value(out, f);
    } else {
        report_untransportable_callable<F, how>();
    }
}

/// Re-creates a callable written by encode_callable<F>.
/// @returns the function pointer resolved in this process, `F{}`, or the decoded object.
/// @throws mproc::Error when a function pointer's code address does not resolve here (the
///     worker runs another binary); WireError for truncated bytes; what decode_value throws.
template <class F>
F decode_callable(WireReader& in) {
    constexpr CallableTransport how = callable_transport_of<F>();
    if constexpr (how == CallableTransport::code_address) {
        const auto address = in.read<CodeAddress>();
        F f = resolve_function<std::remove_pointer_t<F>>(address);
        if (f == nullptr) {
            throw_unresolved_code_address(address);
        }
        return f;
    } else if constexpr (how == CallableTransport::stateless) {
        return F{};
    } else if constexpr (how == CallableTransport::value) {
        return decode_value<F>(in);
    } else {
        report_untransportable_callable<F, how>();
        std::terminate(); // not reached: the static_assert above has failed compilation
    }
}

} // namespace mproc::detail
