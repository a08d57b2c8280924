// SPDX-License-Identifier: MIT
#pragma once
// The input iterator of a single-pass view that holds its current element itself
// (mproc::Batched, mproc::Lines): it points at the view, yields the view's current(), calls its
// advance() on ++ and asks its at_end() at the sentinel. `*it` is valid until `++it`.

#include <cstddef>
#include <iterator>

namespace mproc::detail {

template <class View, class Value>
class PullIterator {
  public:
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    using reference = const Value&;
    using iterator_concept = std::input_iterator_tag;

    PullIterator() = default;
    explicit PullIterator(View* view) noexcept : view_(view) {}

    const Value& operator*() const noexcept { return view_->current(); }
    PullIterator& operator++() {
        view_->advance();
        return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const PullIterator& it, std::default_sentinel_t) noexcept {
        return it.at_end();
    }

  private:
    // A member (the view's friend), where the operator above is not.
    bool at_end() const noexcept { return view_->at_end(); }

    View* view_ = nullptr;
};

} // namespace mproc::detail
