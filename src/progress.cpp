// SPDX-License-Identifier: MIT
// The progress bar: formatting (pure) and drawing (rate-limited, thread-safe).

#include "mproc/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/ioctl.h>
#include <unistd.h>

namespace mproc {
namespace {

/// mm:ss, or h:mm:ss from an hour on.
std::string clock_text(double seconds) {
    const long total = std::lround(std::max(0.0, seconds));
    char text[32];
    if (total >= 3600) {
        std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60,
                      total % 60);
    } else {
        std::snprintf(text, sizeof text, "%02ld:%02ld", total / 60, total % 60);
    }
    return text;
}

/// "13.2 it/s", "1.50k it/s", or "2.50 s/it" when an item takes longer than a second.
std::string rate_text(const detail::ProgressSnapshot& snapshot) {
    const double seconds = snapshot.elapsed.count();
    if (snapshot.count == 0 || seconds <= 0) {
        return "? it/s";
    }
    const double rate = static_cast<double>(snapshot.count) / seconds;
    char text[32];
    if (rate < 1) {
        std::snprintf(text, sizeof text, "%.2f s/it", 1 / rate);
    } else if (rate >= 1e6) {
        std::snprintf(text, sizeof text, "%.2fM it/s", rate / 1e6);
    } else if (rate >= 1e3) {
        std::snprintf(text, sizeof text, "%.2fk it/s", rate / 1e3);
    } else {
        std::snprintf(text, sizeof text, "%.1f it/s", rate);
    }
    return text;
}

/// The time left at the rate so far; "?" before the first item.
std::string eta_text(const detail::ProgressSnapshot& snapshot) {
    if (snapshot.count == 0 || !snapshot.total) {
        return "?";
    }
    const double left = static_cast<double>(*snapshot.total) -
                        static_cast<double>(std::min(snapshot.count, *snapshot.total));
    return clock_text(snapshot.elapsed.count() / static_cast<double>(snapshot.count) * left);
}

std::size_t terminal_columns(std::FILE* out) {
    winsize size{};
    if (::ioctl(::fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
        return size.ws_col;
    }
    return 80;
}

/// Columns a UTF-8 string takes, counting one for each code point (wide characters are rare
/// in a label, and the figures are ASCII).
std::size_t display_columns(const std::string& text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

/// `text` cut to at most `columns` code points, never inside one.
std::string cut_to_columns(const std::string& text, std::size_t columns) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool starts_code_point = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
        if (starts_code_point && seen++ == columns) {
            return text.substr(0, i);
        }
    }
    return text;
}

bool on_a_terminal(std::FILE* out) {
    const char* term = std::getenv("TERM");
    const bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
    return ::isatty(::fileno(out)) == 1 && !dumb;
}

} // namespace

namespace detail {

std::string format_progress(const std::string& label, const ProgressSnapshot& snapshot,
                            std::size_t bar_width) {
    std::string line = label.empty() ? std::string() : label + ": ";
    const std::string count = std::to_string(snapshot.count);
    const std::string elapsed = clock_text(snapshot.elapsed.count());
    if (!snapshot.total) {
        return line + count + " it [" + elapsed + ", " + rate_text(snapshot) + "]";
    }
    const std::size_t total = *snapshot.total;
    const double fraction =
        total == 0
            ? 1.0
            : std::min(1.0, static_cast<double>(snapshot.count) / static_cast<double>(total));
    const int percent = static_cast<int>(fraction * 100);
    const std::string of_total = count + "/" + std::to_string(total);
    if (bar_width == 0) {
        return line + of_total + " (" + std::to_string(percent) + "%) " + rate_text(snapshot) +
               " elapsed " + elapsed + " eta " + eta_text(snapshot);
    }
    char percent_text[8];
    std::snprintf(percent_text, sizeof percent_text, "%3d%%", percent);
    const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(bar_width));
    return line + percent_text + "|" + std::string(filled, '#') +
           std::string(bar_width - filled, ' ') + "| " + of_total + " [" + elapsed + "<" +
           eta_text(snapshot) + ", " + rate_text(snapshot) + "]";
}

std::string terminal_progress_line(const std::string& label, const ProgressSnapshot& snapshot,
                                   std::size_t columns) {
    const std::size_t room = std::max<std::size_t>(columns, 2) - 1;
    if (snapshot.total) {
        // The figures around a bar of one cell, less that cell.
        const std::size_t figures = display_columns(format_progress(label, snapshot, 1)) - 1;
        if (room >= figures + 10) {
            return format_progress(label, snapshot, std::min<std::size_t>(room - figures, 40));
        }
    }
    return cut_to_columns(format_progress(label, snapshot, 0), room);
}

} // namespace detail

ProgressBar::Drawing ProgressBar::drawing_for(const ProgressOptions& options) {
    using Style = ProgressOptions::Style;
    switch (options.style) {
    case Style::terminal:
        return Drawing::terminal;
    case Style::lines:
        return Drawing::lines;
    case Style::only_on_terminal:
        return on_a_terminal(options.out) ? Drawing::terminal : Drawing::nothing;
    case Style::off:
        return Drawing::nothing;
    case Style::automatic:
        break;
    }
    return on_a_terminal(options.out) ? Drawing::terminal : Drawing::lines;
}

ProgressBar::ProgressBar(ProgressOptions options)
    : options_(std::move(options)), drawing_(drawing_for(options_)),
      interval_(options_.interval               ? Clock::duration(*options_.interval)
                : drawing_ == Drawing::terminal ? Clock::duration(std::chrono::milliseconds(100))
                                                : Clock::duration(std::chrono::seconds(1))),
      start_(Clock::now()), last_draw_(start_) {
    if (drawing_ == Drawing::terminal) {
        {
            std::lock_guard lock(mutex_);
            draw_locked(false); // show the empty bar at once
        }
        redrawer_ = std::thread([this] { redraw_while_waiting(); });
    }
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::size_t n) {
    std::lock_guard lock(mutex_);
    count_ += n;
    if (!finished_ && Clock::now() - last_draw_ >= interval_) {
        draw_locked(false);
    }
}

void ProgressBar::println(std::string_view text) {
    std::lock_guard lock(mutex_);
    const bool bar_shown = drawing_ == Drawing::terminal && !finished_;
    // Clear the bar's line, print the text in its place, and draw the bar again under it.
    std::fprintf(options_.out, "%s%.*s\n", bar_shown ? "\r\x1b[K" : "",
                 static_cast<int>(text.size()), text.data());
    if (bar_shown) {
        draw_locked(false);
    } else {
        std::fflush(options_.out);
    }
}

void ProgressBar::finish() {
    std::thread redrawer;
    {
        std::lock_guard lock(mutex_);
        if (finished_) {
            return;
        }
        finished_ = true;
        // The terminal line always needs its end; a plain line is not repeated.
        if (drawing_ == Drawing::terminal ||
            (drawing_ == Drawing::lines && drawn_count_ != count_)) {
            draw_locked(true);
        }
        redrawer = std::move(redrawer_);
    }
    finished_changed_.notify_all();
    if (redrawer.joinable()) {
        redrawer.join();
    }
}

std::size_t ProgressBar::count() const {
    std::lock_guard lock(mutex_);
    return count_;
}

void ProgressBar::redraw_while_waiting() {
    // The line shows the elapsed time and an ETA that grow while a long task runs; without
    // this a bar waiting for its next item would look frozen.
    const Clock::duration period =
        interval_ > Clock::duration::zero() ? interval_ : std::chrono::milliseconds(100);
    std::unique_lock lock(mutex_);
    while (!finished_) {
        if (Clock::now() - last_draw_ >= period) {
            draw_locked(false);
        }
        finished_changed_.wait_until(lock, last_draw_ + period);
    }
}

void ProgressBar::draw_locked(bool final) {
    const auto now = Clock::now();
    last_draw_ = now;
    drawn_count_ = count_;
    const detail::ProgressSnapshot snapshot{count_, options_.total, now - start_};
    if (drawing_ == Drawing::nothing) {
        return;
    }
    if (drawing_ == Drawing::terminal) {
        const std::string line = detail::terminal_progress_line(options_.label, snapshot,
                                                                terminal_columns(options_.out));
        std::fprintf(options_.out, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
    } else {
        const std::string line = detail::format_progress(options_.label, snapshot, 0);
        std::fprintf(options_.out, "%s\n", line.c_str());
    }
    std::fflush(options_.out);
}

} // namespace mproc
