// SPDX-License-Identifier: MIT
#pragma once
// A copyable, type-erased callable for the few places the headers store one (an initializer, a
// result's callbacks). std::function would do, but <functional> is among the heaviest standard
// headers, and every translation unit that includes a pool pays for what its headers include.

#include <memory>
#include <type_traits>
#include <utility>

namespace mproc::detail {

template <class Signature>
class Function;

/// Holds any copyable callable invocable as `R(Args...)`, or nothing (also when given a null
/// pointer). Copies copy the callable. As with std::function, a const Function calls its
/// callable as non-const (a mutable lambda works).
template <class R, class... Args>
class Function<R(Args...)> {
  public:
    Function() = default;
    Function(std::nullptr_t) noexcept {}

    template <class F>
    requires(!std::is_same_v<std::decay_t<F>, Function> &&
             std::is_copy_constructible_v<std::decay_t<F>> &&
             std::is_invocable_r_v<R, std::decay_t<F>&, Args...>) Function(F&& f) {
        if constexpr (std::is_pointer_v<std::decay_t<F>> ||
                      std::is_member_pointer_v<std::decay_t<F>>) {
            const std::decay_t<F> pointer = f; // F may be a reference to a function
            if (pointer == nullptr) {
                return; // as std::function: a null pointer makes an empty Function
            }
        }
        held_ = std::make_unique<Held<std::decay_t<F>>>(std::forward<F>(f));
    }

    Function(const Function& other) : held_(other.held_ ? other.held_->copy() : nullptr) {}
    Function(Function&&) noexcept = default;
    Function& operator=(const Function& other) {
        if (this != &other) {
            held_ = other.held_ ? other.held_->copy() : nullptr;
        }
        return *this;
    }
    Function& operator=(Function&&) noexcept = default;
    ~Function() = default;

    explicit operator bool() const noexcept { return held_ != nullptr; }
    R operator()(Args... args) const { return held_->call(std::forward<Args>(args)...); }

  private:
    struct Base {
        virtual ~Base() = default;
        virtual R call(Args... args) = 0;
        virtual std::unique_ptr<Base> copy() const = 0;
    };
    template <class F>
    struct Held final : Base {
        template <class G>
        explicit Held(G&& g) : f(std::forward<G>(g)) {}
        R call(Args... args) override {
            if constexpr (std::is_void_v<R>) {
                f(std::forward<Args>(args)...);
            } else {
                return f(std::forward<Args>(args)...);
            }
        }
        std::unique_ptr<Base> copy() const override { return std::make_unique<Held>(f); }
        F f;
    };

    std::unique_ptr<Base> held_;
};

} // namespace mproc::detail
