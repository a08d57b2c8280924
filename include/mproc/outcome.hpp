// SPDX-License-Identifier: MIT
#pragma once
/// @file outcome.hpp
/// `mproc::Outcome<T>`: one item's result as a value, either what the task returned or the error
/// it ended with. What `map_outcomes`, `imap_outcomes` and `imap_unordered_outcomes` return, so
/// that one bad item out of a million costs one error instead of the whole call (Python's `map`
/// throws every good result away when one item fails).
///
/// Example:
/// @code
///   for (const mproc::Outcome<Tree>& parsed : pool.map_outcomes(parse, files)) {
///       if (parsed) use(*parsed);
///       else log(parsed.error());   // e.g. mproc::WorkerLost: the parser crashed on this one
///   }
/// @endcode

#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

namespace mproc {

/// A value of type T, or the exception that took its place (like C++23's
/// `std::expected<T, std::exception_ptr>`).
template <class T>
class Outcome {
  public:
    /// An outcome that holds a value.
    Outcome(T value) : value_(std::move(value)) {}
    /// An outcome that holds an error; throws std::invalid_argument if `error` is null.
    Outcome(std::exception_ptr error) : error_(std::move(error)) {
        if (!error_) {
            throw std::invalid_argument("mproc: an Outcome's error must not be null");
        }
    }

    /// True when the task returned a value.
    bool has_value() const noexcept { return value_.has_value(); }
    /// `has_value()`.
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; throws the error when there is none.
    ///@{
    T& value() & {
        throw_if_error();
        return *value_;
    }
    const T& value() const& {
        throw_if_error();
        return *value_;
    }
    T&& value() && {
        throw_if_error();
        return std::move(*value_);
    }
    ///@}

    /// The value without a check (undefined when there is none), as std::optional.
    ///@{
    T& operator*() & noexcept { return *value_; }
    const T& operator*() const& noexcept { return *value_; }
    T* operator->() noexcept { return &*value_; }
    const T* operator->() const noexcept { return &*value_; }
    ///@}

    /// The error, or null when there is a value.
    const std::exception_ptr& error() const noexcept { return error_; }

  private:
    void throw_if_error() const {
        if (error_) {
            std::rethrow_exception(error_);
        }
    }

    std::optional<T> value_;
    std::exception_ptr error_;
};

namespace detail {
template <class T>
inline constexpr bool is_outcome = false;
template <class T>
inline constexpr bool is_outcome<Outcome<T>> = true;
} // namespace detail

} // namespace mproc
