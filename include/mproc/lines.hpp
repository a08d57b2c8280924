// SPDX-License-Identifier: MIT
#pragma once
/// @file lines.hpp
/// `mproc::lines(stream)`: the lines of an `std::istream`, read lazily.

#include <cstddef>
#include <istream>
#include <iterator>
#include <string>

#include "mproc/detail/pull_iterator.hpp"

namespace mproc {

/// The lines of a stream, without their '\n', read one at a time as they are asked for (as
/// `std::getline` reads them; a last line without '\n' counts, an empty stream has none). A
/// single pass. Made by `mproc::lines`.
class Lines {
  public:
    /// An input iterator over the lines; `*it` is valid until `++it`.
    using iterator = detail::PullIterator<Lines, std::string>;

    /// The lines of `in`, which must outlive the view.
    explicit Lines(std::istream& in) noexcept : in_(&in) {}

    /// Movable before iteration starts; the iterators point at the view, so it stays where it
    /// was made once they exist.
    ///@{
    Lines(Lines&&) = default;
    Lines& operator=(Lines&&) = default;
    ///@}

    /// Reads the first line (once: a single pass).
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    /// The end of the lines.
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    friend iterator;
    const std::string& current() const noexcept { return line_; }
    bool at_end() const noexcept { return done_; }
    /// Reads the next line.
    void advance() { done_ = !std::getline(*in_, line_); }

    std::istream* in_;
    std::string line_;
    bool started_ = false;
    bool done_ = false;
};

/// The lines of `in`, lazily, for `map`, `imap` and `imap_unordered` (where
/// `std::views::istream<std::string>` would give its words). `in` must outlive the view.
/// Pair it with `mproc::batched` to send a block of lines a task.
inline Lines lines(std::istream& in) noexcept { return Lines(in); }

} // namespace mproc
