// SPDX-License-Identifier: MIT
// The progress bar: formatting (pure) and drawing (rate-limited, thread-safe).

#include "mproc/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

bool is_terminal(const ProgressOptions& options) {
    switch (options.style) {
    case ProgressOptions::Style::terminal:
        return true;
    case ProgressOptions::Style::lines:
        return false;
    case ProgressOptions::Style::automatic:
        break;
    }
    return ::isatty(::fileno(options.out)) == 1;
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

} // namespace detail

ProgressBar::ProgressBar(ProgressOptions options)
    : options_(std::move(options)), terminal_(is_terminal(options_)),
      interval_(options_.interval ? Clock::duration(*options_.interval)
                : terminal_       ? Clock::duration(std::chrono::milliseconds(100))
                                  : Clock::duration(std::chrono::seconds(1))),
      start_(Clock::now()), last_draw_(start_) {
    std::lock_guard lock(mutex_);
    if (terminal_) {
        draw_locked(false); // show the empty bar at once
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

void ProgressBar::finish() {
    std::lock_guard lock(mutex_);
    if (finished_) {
        return;
    }
    finished_ = true;
    // The terminal line always needs its end; a plain line is not repeated.
    if (terminal_ || drawn_count_ != count_) {
        draw_locked(true);
    }
}

std::size_t ProgressBar::count() const {
    std::lock_guard lock(mutex_);
    return count_;
}

void ProgressBar::draw_locked(bool final) {
    const auto now = Clock::now();
    last_draw_ = now;
    drawn_count_ = count_;
    const detail::ProgressSnapshot snapshot{count_, options_.total, now - start_};
    if (terminal_) {
        // Leave room for the figures around the bar; no bar at all on a very narrow terminal.
        const std::size_t columns = terminal_columns(options_.out);
        const std::size_t figures = detail::format_progress(options_.label, snapshot, 1).size();
        const std::size_t bar =
            columns > figures + 10 ? std::min<std::size_t>(columns - figures - 1, 40) : 1;
        const std::string line = detail::format_progress(options_.label, snapshot, bar);
        std::fprintf(options_.out, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
    } else {
        const std::string line = detail::format_progress(options_.label, snapshot, 0);
        std::fprintf(options_.out, "%s\n", line.c_str());
    }
    std::fflush(options_.out);
}

} // namespace mproc
