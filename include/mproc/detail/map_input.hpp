#pragma once
// The items of a map call, read by index from any worker: either borrowed from the caller's
// random-access range (blocking map: the caller waits until every chunk has settled, so the
// range outlives every read) or copied into a vector the job owns (map_async, and inputs that
// are not random access or whose size is unknown, which Python materialises too).

#include <iterator>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc::detail {

template <class Range>
concept borrowable_input =
    std::ranges::random_access_range<const Range> && std::ranges::sized_range<const Range>;

template <class Range>
class BorrowedInput {
  public:
    using value_type = std::ranges::range_value_t<const Range>;
    /// Items lie next to each other in memory (a chunk can be copied as one block).
    static constexpr bool contiguous = std::ranges::contiguous_range<const Range>;

    explicit BorrowedInput(const Range& range)
        : begin_(std::ranges::begin(range)), size_(std::ranges::size(range)) {}

    decltype(auto) operator[](std::size_t i) const {
        return begin_[static_cast<std::ranges::range_difference_t<const Range>>(i)];
    }
    std::size_t size() const noexcept { return size_; }
    void release() noexcept {}

  private:
    std::ranges::iterator_t<const Range> begin_;
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
    using Value = std::ranges::range_value_t<Range>;
    if constexpr (std::is_same_v<std::remove_cvref_t<Range>, std::vector<Value>> &&
                  !std::is_lvalue_reference_v<Range>) {
        return OwnedInput<Value>(std::move(range));
    } else {
        std::vector<Value> items;
        if constexpr (std::ranges::sized_range<Range>) {
            items.reserve(std::ranges::size(range));
        }
        for (auto&& item : range) {
            items.emplace_back(std::forward<decltype(item)>(item));
        }
        return OwnedInput<Value>(std::move(items));
    }
}

} // namespace mproc::detail
