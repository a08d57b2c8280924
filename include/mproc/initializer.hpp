#pragma once
/// @file initializer.hpp
/// `mproc::Initializer`: what `PoolOptions::initializer` holds (Python's `initializer` and
/// `initargs`).

#include <concepts>
#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/callable_codec.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc {

namespace detail {
/// Runs an initializer sent in its portable form (see Initializer::portable()).
template <class F>
void run_portable_initializer(WireReader& in) {
    const F initializer = decode_callable<F>(in);
    initializer();
}
using PortableInitializerEntry = void (*)(WireReader&);
} // namespace detail

/// A callable run once in each worker before it takes work. Any callable works for
/// `ThreadPool` and for `Pool` with the `fork` start method (the worker is a copy of the caller);
/// the `spawn` and `forkserver` start methods re-run the program, so there the initializer must
/// be transportable like a task: a function pointer, a lambda without captures, or a function
/// object with a cereal `serialize` member (bind `initargs` into such an object).
///
/// Example:
/// @code
///   mproc::Pool pool({.workers = 4, .initializer = [] { std::srand(42); }});
/// @endcode
class Initializer {
  public:
    Initializer() = default;
    Initializer(std::nullptr_t) {}

    template <class F>
    requires std::invocable < const std::decay_t<F>
    & > &&(!std::same_as<std::decay_t<F>, Initializer>)Initializer(F&& initializer)
        : run_(initializer) {
        using Callable = std::decay_t<F>;
        if constexpr (detail::transportable_callable_v<Callable>) {
            detail::WireWriter out;
            constexpr detail::PortableInitializerEntry entry =
                &detail::run_portable_initializer<Callable>;
            out.write(detail::code_address_of(reinterpret_cast<const void*>(entry)));
            detail::encode_callable(out, static_cast<const Callable&>(initializer));
            portable_.assign(out.data(), out.data() + out.size());
        }
    }

    explicit operator bool() const noexcept { return static_cast<bool>(run_); }
    void operator()() const { run_(); }

    /// The initializer as bytes a re-executed copy of this program can run (see
    /// `run_portable_initializer`); empty when the callable is not transportable.
    const std::vector<std::byte>& portable() const noexcept { return portable_; }

  private:
    std::function<void()> run_;
    std::vector<std::byte> portable_;
};

namespace detail {
/// Turns the portable bytes back into a callable (in a re-executed worker). Throws mproc::Error
/// if they name code this program does not have.
std::function<void()> initializer_from_portable(std::vector<std::byte> portable);
} // namespace detail

} // namespace mproc
