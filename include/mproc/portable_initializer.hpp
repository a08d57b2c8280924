// SPDX-License-Identifier: MIT
#pragma once
/// @file portable_initializer.hpp
/// `mproc::portable_initializer`: an initializer with state that the `spawn` and `forkserver`
/// start methods can send to the programs they re-run.

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/callable_codec.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/initializer.hpp"

namespace mproc {

namespace detail {
/// The entry of an initializer sent with its state (portable_initializer).
template <class F>
void run_encoded_initializer(const std::byte* state, std::size_t size) {
    WireReader in(state, size);
    const F initializer = decode_callable<F>(in);
    initializer();
}
} // namespace detail

/// An initializer that a re-executed worker (`spawn`, `forkserver`) runs too: `initializer` is
/// a function object with a cereal `serialize` member (its data members are Python's
/// `initargs`), or anything a task may be. Function pointers and lambdas without captures need
/// no wrapping.
///
/// Example:
/// @code
///   struct Seed {
///       unsigned value;
///       void operator()() const { std::srand(value); }
///       template <class Archive> void serialize(Archive& archive) { archive(value); }
///   };
///   mproc::Pool pool({.initializer = mproc::portable_initializer(Seed{42}),
///                     .start_method = mproc::StartMethod::spawn});
/// @endcode
/// @throws what encoding its state throws.
template <class F>
requires std::invocable < const std::decay_t<F>
& > Initializer portable_initializer(F&& initializer) {
    using Callable = std::decay_t<F>;
    detail::WireWriter state;
    detail::encode_callable(state, static_cast<const Callable&>(initializer));
    return Initializer(detail::PortableInitializerTag{},
                       detail::Function<void()>(std::forward<F>(initializer)),
                       &detail::run_encoded_initializer<Callable>,
                       std::span<const std::byte>(state.data(), state.size()));
}

} // namespace mproc
