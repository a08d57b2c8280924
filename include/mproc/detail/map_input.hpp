// SPDX-License-Identifier: MIT
#pragma once
// The items of a map call, read by index from any worker: either borrowed from the caller's
// random-access range (blocking map: the caller waits until every chunk has settled, so the
// range outlives every read) or copied into a vector the job owns (map_async, and inputs that
// are not random access or whose size is unknown, which Python materialises too).

#include <concepts>
#include <cstddef>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/ranges.hpp"

namespace mproc::detail {

/// A map call's items as its job holds them (BorrowedInput, OwnedInput): read by index.
template <class Input>
concept map_items = requires(const Input& input, std::size_t i) {
    typename Input::value_type;
    input[i];
    { input.size() } -> std::same_as<std::size_t>;
    { Input::contiguous } -> std::convertible_to<bool>;
};

template <class Range>
concept borrowable_input = random_access_range<const Range> && sized_range<const Range>;

template <class Range>
class BorrowedInput {
  public:
    using value_type = range_value_t<const Range>;
    /// Items lie next to each other in memory (a chunk can be copied as one block).
    static constexpr bool contiguous = contiguous_range<const Range>;

    explicit BorrowedInput(const Range& range)
        : begin_(std::ranges::begin(range)), size_(std::ranges::size(range)) {}

    decltype(auto) operator[](std::size_t i) const {
        return begin_[static_cast<range_difference_t<const Range>>(i)];
    }
    std::size_t size() const noexcept { return size_; }
    void release() noexcept {}

  private:
    iterator_t<const Range> begin_;
    std::size_t size_;
};

template <class Value>
class OwnedInput {
  public:
    using value_type = Value;
    static constexpr bool contiguous = !std::is_same_v<Value, bool>; // vector<bool> packs bits

    explicit OwnedInput(std::vector<Value> items) : items_(std::move(items)) {}

    // decltype(auto): std::vector<bool> hands out bits by value; a `const Value&` return type
    // would bind to that temporary and dangle.
    decltype(auto) operator[](std::size_t i) const { return items_[i]; }
    std::size_t size() const noexcept { return items_.size(); }
    /// The pool keeps no copy of the arguments once the call has ended.
    void release() noexcept { std::vector<Value>().swap(items_); }

  private:
    std::vector<Value> items_;
};

/// Copies (or, from an rvalue vector, moves) any input range into an owned vector.
template <class Range>
auto materialise(Range&& range) {
    using Value = range_value_t<Range>;
    if constexpr (std::is_same_v<std::remove_cvref_t<Range>, std::vector<Value>> &&
                  !std::is_lvalue_reference_v<Range>) {
        return OwnedInput<Value>(std::move(range));
    } else {
        std::vector<Value> items;
        if constexpr (sized_range<Range>) {
            items.reserve(std::ranges::size(range));
        }
        for (auto&& item : range) {
            items.emplace_back(std::forward<decltype(item)>(item));
        }
        return OwnedInput<Value>(std::move(items));
    }
}

} // namespace mproc::detail
