// SPDX-License-Identifier: MIT
#pragma once
/// @file initializer.hpp
/// `mproc::Initializer`: what `PoolOptions::initializer` holds (Python's `initializer` and
/// `initargs`).

#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/function.hpp"

namespace mproc {

namespace detail {
/// Runs an initializer from the bytes of its state, as Initializer::portable() holds them after
/// the entry's own code address.
using PortableInitializerEntry = void (*)(const std::byte* state, std::size_t size);

/// Throws mproc::Error: an initializer's state has not the size its entry reads.
[[noreturn]] void throw_truncated_initializer(std::size_t size, std::size_t expected);

/// The entry of a function pointer: its state is the function's CodeAddress.
template <class Function>
void run_function_initializer(const std::byte* state, std::size_t size) {
    CodeAddress address{};
    if (size != sizeof address) {
        throw_truncated_initializer(size, sizeof address);
    }
    std::memcpy(&address, state, sizeof address);
    Function* function = resolve_function<Function>(address);
    if (function == nullptr) {
        throw_unresolved_code_address(address);
    }
    function();
}

/// The entry of a function object without state: its type is the whole initializer.
template <class F>
void run_stateless_initializer(const std::byte*, std::size_t) {
    const F initializer{};
    initializer();
}

struct PortableInitializerTag {};
} // namespace detail

/// A callable run once in each worker before it takes work. Any callable works for
/// `ThreadPool` and for `Pool` with the `fork` start method (the worker is a copy of the caller);
/// the `spawn` and `forkserver` start methods re-run the program, so there the initializer must
/// be one they can send: a function pointer, a lambda without captures, or a function object
/// with a cereal `serialize` member wrapped in `mproc::portable_initializer` (bind `initargs`
/// into such an object).
///
/// Example:
/// @code
///   mproc::Pool pool({.workers = 4, .initializer = [] { std::srand(42); }});
///   mproc::Pool spawned({.initializer = mproc::portable_initializer(Seed{42}),
///                        .start_method = mproc::StartMethod::spawn});
/// @endcode
class Initializer {
  public:
    /// No initializer.
    ///@{
    Initializer() = default;
    Initializer(std::nullptr_t) {}
    ///@}

    /// Any callable taking no argument. A function or a stateless function object can also
    /// run in a re-executed worker (`spawn`); one with state needs `mproc::portable_initializer`.

    template <class F>
    requires std::invocable < const std::decay_t<F>
    & > &&(!std::same_as<std::decay_t<F>, Initializer>)Initializer(F&& initializer)
        : run_(initializer) {
        using Callable = std::decay_t<F>;
        if constexpr (std::is_pointer_v<Callable> &&
                      std::is_function_v<std::remove_pointer_t<Callable>>) {
            using Function = std::remove_pointer_t<Callable>;
            const Callable function = initializer; // F may be a reference to the function
            if (function != nullptr) {
                const detail::CodeAddress address = detail::code_address_of_function(function);
                set_portable(&detail::run_function_initializer<Function>,
                             std::as_bytes(std::span(&address, 1)));
            }
        } else if constexpr (std::is_empty_v<Callable> &&
                             std::is_default_constructible_v<Callable>) {
            set_portable(&detail::run_stateless_initializer<Callable>, {});
        }
        // A function object with state stays in this process: mproc::portable_initializer
        // sends it, through its serialize member.
    }

    /// Used by mproc::portable_initializer: `state` is the object's encoded state, which
    /// `entry` runs.
    Initializer(detail::PortableInitializerTag, detail::Function<void()> run,
                detail::PortableInitializerEntry entry, std::span<const std::byte> state)
        : run_(std::move(run)) {
        set_portable(entry, state);
    }

    /// Whether there is an initializer.
    explicit operator bool() const noexcept { return static_cast<bool>(run_); }
    /// Runs it (in this process).
    void operator()() const { run_(); }

    /// The initializer as bytes a re-executed copy of this program can run: the CodeAddress
    /// of its entry (a detail::PortableInitializerEntry), then its state; empty when the
    /// callable cannot be sent.
    const std::vector<std::byte>& portable() const noexcept { return portable_; }

  private:
    void set_portable(detail::PortableInitializerEntry entry, std::span<const std::byte> state) {
        const detail::CodeAddress address =
            detail::code_address_of(reinterpret_cast<const void*>(entry));
        const auto address_bytes = std::as_bytes(std::span(&address, 1));
        portable_.assign(address_bytes.begin(), address_bytes.end());
        portable_.insert(portable_.end(), state.begin(), state.end());
    }

    detail::Function<void()> run_;
    std::vector<std::byte> portable_;
};

} // namespace mproc
