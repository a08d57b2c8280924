// SPDX-License-Identifier: MIT
#pragma once
// The range vocabulary the front end needs, defined as the standard defines it, from the range
// access of <iterator>: <ranges> (views, adaptors) would add more to every translation unit
// that includes a pool than all of mproc's own headers.

#include <concepts>
#include <iterator>
#include <type_traits>
#include <utility>

namespace mproc::detail {

template <class R>
using iterator_t = decltype(std::ranges::begin(std::declval<R&>()));
template <class R>
using sentinel_t = decltype(std::ranges::end(std::declval<R&>()));

/// std::ranges::range and its refinements.
template <class R>
concept range = requires(R& r) {
    std::ranges::begin(r);
    std::ranges::end(r);
};
template <class R>
concept input_range = range<R> && std::input_iterator<iterator_t<R>> &&
    std::sentinel_for<sentinel_t<R>, iterator_t<R>>;
template <class R>
concept random_access_range = input_range<R> && std::random_access_iterator<iterator_t<R>>;
template <class R>
concept sized_range = range<R> && requires(R& r) {
    std::ranges::size(r);
};

template <class R>
using range_value_t = std::iter_value_t<iterator_t<R>>;
template <class R>
using range_reference_t = std::iter_reference_t<iterator_t<R>>;
template <class R>
using range_difference_t = std::iter_difference_t<iterator_t<R>>;

template <class R>
concept contiguous_range = random_access_range<R> && std::contiguous_iterator<iterator_t<R>> &&
    requires(R& r) {
    { std::ranges::data(r) } -> std::same_as<std::add_pointer_t<range_reference_t<R>>>;
};

/// The caller's imap input as its stream holds it (what std::views::all makes of it): an
/// lvalue range by reference, which must outlive the stream, or an rvalue range moved in.
template <class Input>
class HeldRange {
  public:
    using Range = std::remove_reference_t<Input>;

    explicit HeldRange(Input&& input) : range_(hold(std::forward<Input>(input))) {}
    Range& get() noexcept {
        if constexpr (std::is_lvalue_reference_v<Input>) {
            return *range_;
        } else {
            return range_;
        }
    }

  private:
    static auto hold(Input&& input) {
        if constexpr (std::is_lvalue_reference_v<Input>) {
            return &input;
        } else {
            return Range(std::move(input));
        }
    }

    std::conditional_t<std::is_lvalue_reference_v<Input>, Range*, Range> range_;
};

} // namespace mproc::detail
