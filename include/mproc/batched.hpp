// SPDX-License-Identifier: MIT
#pragma once
/// @file batched.hpp
/// `mproc::batched(input, n)`: an input in batches of `n` items, for tasks worth sending.

#include <cstddef>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/pull_iterator.hpp"
#include "mproc/detail/ranges.hpp"
#include "mproc/errors.hpp"

namespace mproc {

/// The items of `Input` in `std::vector`s of `n` (the last one shorter), read lazily: one
/// batch at a time, as it is asked for, so an endless input gives endless batches. A single
/// pass, like the input ranges it reads (an `std::istream`'s, say). Made by `mproc::batched`.
template <class Input>
class Batched {
    using Range = std::remove_reference_t<Input>;

  public:
    /// An item of the input.
    using Item = std::remove_cvref_t<detail::range_reference_t<Range>>;
    /// A batch of items.
    using Batch = std::vector<Item>;

    /// An input iterator over the batches; `*it` is valid until `++it`.
    using iterator = detail::PullIterator<Batched, Batch>;

    /// Batches of `n` items of `input` (see `mproc::batched`).
    Batched(Input&& input, std::size_t n) : input_(std::forward<Input>(input)), n_(n) {}

    /// Movable before iteration starts; the iterators point at the view, so it stays where it
    /// was made once they exist.
    ///@{
    Batched(Batched&&) = default;
    Batched& operator=(Batched&&) = default;
    ///@}

    /// Reads the first batch (once: a single pass).
    iterator begin() {
        if (!started_) {
            started_ = true;
            next_ = std::ranges::begin(input_.get());
            advance();
        }
        return iterator(this);
    }
    /// The end of the batches.
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    friend iterator;
    const Batch& current() const noexcept { return batch_; }
    bool at_end() const noexcept { return batch_.empty(); }
    /// Reads the next batch.
    void advance() {
        batch_.clear();
        while (batch_.size() < n_ && next_ != std::ranges::end(input_.get())) {
            batch_.push_back(*next_);
            ++next_;
        }
    }

    detail::HeldRange<Input> input_;
    std::size_t n_;
    detail::iterator_t<Range> next_{};
    bool started_ = false;
    Batch batch_;
};

/// `input` (any input range: a container, a view, an endless `std::views::iota(0)`, the words
/// of an `std::istream`) in `std::vector`s of `n` items, for `map`, `imap` and
/// `imap_unordered`: one task a batch, where one task an item would cost more in sending than
/// in running (Python: `itertools.batched(input, n)`, 3.12+). An lvalue `input` is read where
/// it is (it must outlive the batches); an rvalue is moved in. Throws std::invalid_argument
/// unless `n` > 0.
///
/// @code
///   auto blocks = mproc::batched(mproc::lines(in), 5000);
///   for (std::size_t count : pool.imap_unordered(count_words, std::move(blocks)))
///       total += count;
/// @endcode
template <class Input>
requires detail::input_range<std::remove_reference_t<Input>> Batched<Input>
batched(Input&& input, std::ptrdiff_t n) {
    if (n <= 0) {
        detail::throw_invalid_argument("n", "must be positive", n);
    }
    return Batched<Input>(std::forward<Input>(input), static_cast<std::size_t>(n));
}

} // namespace mproc
