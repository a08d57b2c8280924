// SPDX-License-Identifier: MIT
#pragma once
/// @file progress.hpp
/// `mproc::progress`: a tqdm-like progress bar for `imap`/`imap_unordered` streams, and
/// `mproc::ProgressBar` to count anything else.
///
/// @code
///   for (auto r : mproc::progress(pool.imap_unordered(f, inputs), {.total = inputs.size()}))
///       use(r);
/// @endcode
///
/// On a terminal it redraws one line in place:
///   `tasks:  45%|#########           | 45/100 [00:03<00:04, 13.2 it/s]`
/// Elsewhere (a log file, a pipe, CI) it prints a plain line now and then:
///   `tasks: 45/100 (45%) 13.2 it/s elapsed 00:03 eta 00:04`
/// Without a total it shows the count and the rate only.
///
/// On a terminal the line is redrawn every `interval` even while no item arrives, so elapsed
/// time, rate and ETA stay current through a long task; it is cut to the terminal's width
/// (measured at each draw, so resizing is followed). Print with `println` while a bar is shown,
/// so the line lands above the bar instead of through it. The bar uses no colour, so `NO_COLOR`
/// has nothing to turn off; `Style::off` and `Style::only_on_terminal` silence it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "mproc/result_stream.hpp"

namespace mproc {

/// How a progress bar draws; every field has a default.
struct ProgressOptions {
    /// How many items to expect; without it the bar shows count and rate only.
    std::optional<std::size_t> total{};
    /// Printed before the figures, e.g. "tasks".
    std::string label{};
    /// Where to draw. Standard error by default, as tqdm does, so results on standard output
    /// stay clean.
    std::FILE* out = stderr;
    /// How to draw.
    enum class Style {
        automatic,        ///< `terminal` on a terminal (`TERM` not `dumb`), else `lines`
        terminal,         ///< one line redrawn in place (carriage return, clear to end of line)
        lines,            ///< a plain line per report, for logs and pipes
        only_on_terminal, ///< `terminal` on a terminal, nothing elsewhere (logs stay clean)
        off,              ///< nothing is drawn; the bar still counts
    };
    /// How to draw; chosen from `out` by default.
    Style style = Style::automatic;
    /// The least time between two reports; default 100 ms on a terminal, 1 s for lines.
    /// Zero reports every update. The final report is always drawn. On a terminal it is also
    /// how often the line is redrawn while no item arrives (100 ms when zero).
    std::optional<std::chrono::milliseconds> interval{};
};

namespace detail {
/// One report's figures, separate from the clock and the output so they can be tested alone.
struct ProgressSnapshot {
    std::size_t count = 0;
    std::optional<std::size_t> total{};
    std::chrono::duration<double> elapsed{0};
};
/// The report line without any terminal control characters. `bar_width` 0: the plain form
/// (for `lines`); otherwise the terminal form with a bar of that many cells.
std::string format_progress(const std::string& label, const ProgressSnapshot& snapshot,
                            std::size_t bar_width);
/// The terminal form that fits `columns` (the last column left free, so the terminal never
/// wraps): a bar of up to 40 cells where there is room, else the plain form cut short.
std::string terminal_progress_line(const std::string& label, const ProgressSnapshot& snapshot,
                                   std::size_t columns);
} // namespace detail

/// Counts items and draws the count, percent, rate and ETA. `update` and `println` may be
/// called from any thread (callbacks included); drawing is rate-limited by
/// `ProgressOptions::interval`. On a terminal a thread of the bar's own redraws the line while
/// nothing arrives; it ends with `finish`.
class ProgressBar {
  public:
    /// Draws the empty bar at once on a terminal.
    explicit ProgressBar(ProgressOptions options = {});
    /// Calls `finish`.
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    /// `n` more items are done.
    void update(std::size_t n = 1);
    /// Prints `text` and a newline to the bar's stream, above the bar, and redraws the bar
    /// under it. Use it instead of printing to the same terminal directly, which would write
    /// through the bar. Printed whatever the style, `off` included.
    void println(std::string_view text);
    /// Draws the final report (ending the terminal line). Idempotent; the destructor calls it.
    void finish();
    /// The items counted so far.
    std::size_t count() const;

  private:
    using Clock = std::chrono::steady_clock;
    enum class Drawing { terminal, lines, nothing };
    static Drawing drawing_for(const ProgressOptions& options);
    void draw_locked(bool final);
    void redraw_while_waiting();

    const ProgressOptions options_;
    const Drawing drawing_;
    const Clock::duration interval_;
    const Clock::time_point start_;
    mutable std::mutex mutex_;
    std::condition_variable finished_changed_;
    std::size_t count_ = 0;
    Clock::time_point last_draw_;
    std::optional<std::size_t> drawn_count_; // the count the last report showed
    bool finished_ = false;
    std::thread redrawer_; // terminal only
};

/// An `imap`/`imap_unordered` stream that moves a `ProgressBar` on as its results are taken.
/// An item counts when the consumer gets it (the iterator reaches it, or `next` returns it), a
/// failed one too (its exception still reaches the consumer), so after a `break` the bar shows
/// exactly the items the loop saw. The bar is finished when the stream ends or the wrapper is
/// destroyed (leaving a loop early).
template <class T>
class ProgressStream {
  public:
    /// Input iterator over the stream, counting each item it reaches.
    class iterator {
      public:
        /// What `std::input_iterator` asks of an iterator.
        ///@{
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;
        T& operator*() const { return *inner_; }
        T* operator->() const { return &**this; }
        iterator& operator++() {
            ++inner_;
            owner_->count_arrival(inner_ == std::default_sentinel);
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return it.inner_ == std::default_sentinel;
        }
        ///@}

      private:
        friend class ProgressStream;
        iterator(ProgressStream* owner, typename ResultStream<T>::iterator inner)
            : owner_(owner), inner_(std::move(inner)) {}
        ProgressStream* owner_ = nullptr;
        typename ResultStream<T>::iterator inner_;
    };

    /// Wraps `stream`; see `mproc::progress`.
    ProgressStream(ResultStream<T> stream, ProgressOptions options)
        : stream_(std::move(stream)), bar_(std::move(options)) {}

    /// As `ResultStream::begin()`, counting the first item.
    iterator begin() {
        auto inner = stream_.begin();
        count_arrival(inner == std::default_sentinel);
        return iterator(this, std::move(inner));
    }
    /// The end of the stream.
    std::default_sentinel_t end() const noexcept { return {}; }

    /// As `ResultStream::next()`, counting the item (a failed one too).
    std::optional<T> next() {
        return counted([&] { return stream_.next(); });
    }
    /// As `ResultStream::next(timeout)`, counting the item.
    template <class Rep, class Period>
    std::optional<T> next(std::chrono::duration<Rep, Period> timeout) {
        return counted([&] { return stream_.next(timeout); });
    }

    /// Prints a line above the bar (`ProgressBar::println`).
    void println(std::string_view text) { bar_.println(text); }
    /// The bar itself.
    ProgressBar& bar() noexcept { return bar_; }

  private:
    template <class Fetch>
    std::optional<T> counted(Fetch fetch) {
        std::optional<T> value;
        try {
            value = fetch();
        } catch (const TimeoutError&) {
            throw; // nothing arrived: nothing to count
        } catch (...) {
            bar_.update(); // the item's own error
            throw;
        }
        if (value) {
            bar_.update();
        } else {
            bar_.finish();
        }
        return value;
    }
    void count_arrival(bool ended) {
        if (ended) {
            bar_.finish();
        } else {
            bar_.update();
        }
    }

    ResultStream<T> stream_;
    ProgressBar bar_;
};

/// Wraps an `imap`/`imap_unordered` stream in a progress bar.
template <class T>
ProgressStream<T> progress(ResultStream<T> stream, ProgressOptions options = {}) {
    return ProgressStream<T>(std::move(stream), std::move(options));
}

} // namespace mproc
