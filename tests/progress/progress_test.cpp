// SPDX-License-Identifier: MIT
// mproc::progress and mproc::ProgressBar: what they print, when, and that wrapping a stream
// changes nothing of what the consumer gets.

#include <gtest/gtest.h>

#include <pty.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <ranges>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mproc/process_pool.hpp"
#include "mproc/progress.hpp"
#include "mproc/thread_pool.hpp"

namespace {

using mproc::ProgressOptions;
using mproc::detail::format_progress;
using mproc::detail::ProgressSnapshot;
using std::chrono::duration;

int square(int x) { return x * x; }
int fail_at_three(int x) {
    if (x == 3) {
        throw std::runtime_error("three");
    }
    return x;
}

/// A temporary file to draw into; `text()` reads back everything drawn so far.
class Capture {
  public:
    Capture() : file_(std::tmpfile()) {}
    ~Capture() { std::fclose(file_); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    std::FILE* file() const { return file_; }
    std::string text() const {
        std::fflush(file_);
        std::string all;
        std::rewind(file_);
        char buffer[4096];
        while (std::size_t n = std::fread(buffer, 1, sizeof buffer, file_)) {
            all.append(buffer, n);
        }
        return all;
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::string all = text();
        for (std::size_t start = 0; start < all.size();) {
            const std::size_t end = all.find('\n', start);
            EXPECT_NE(end, std::string::npos) << "the output does not end with a newline";
            out.push_back(all.substr(start, end - start));
            start = end + 1;
        }
        return out;
    }

  private:
    std::FILE* file_;
};

/// A pseudo-terminal `columns` wide: the bar draws into its terminal side, a thread reads what
/// a terminal would receive from the other side.
class PseudoTerminal {
  public:
    explicit PseudoTerminal(unsigned short columns) {
        winsize size{};
        size.ws_row = 24;
        size.ws_col = columns;
        int terminal = -1;
        if (::openpty(&controller_, &terminal, nullptr, nullptr, &size) != 0) {
            throw std::runtime_error("openpty failed");
        }
        out_ = ::fdopen(terminal, "w");
        reader_ = std::thread([this] {
            char buffer[4096];
            // Ends with EIO once the terminal side is closed and everything was read.
            for (ssize_t n; (n = ::read(controller_, buffer, sizeof buffer)) > 0;) {
                std::lock_guard lock(mutex_);
                received_.append(buffer, static_cast<std::size_t>(n));
            }
        });
    }
    ~PseudoTerminal() {
        close_terminal();
        ::close(controller_);
    }
    PseudoTerminal(const PseudoTerminal&) = delete;
    PseudoTerminal& operator=(const PseudoTerminal&) = delete;

    std::FILE* out() const { return out_; }
    /// What was received so far.
    std::string received() const {
        std::lock_guard lock(mutex_);
        return received_;
    }
    /// Closes the terminal side and returns everything it received.
    std::string close_terminal() {
        if (out_ != nullptr) {
            std::fclose(out_);
            out_ = nullptr;
            reader_.join();
        }
        return received();
    }

  private:
    int controller_ = -1;
    std::FILE* out_ = nullptr;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::string received_;
};

/// Replays terminal output the way a terminal `width` columns wide shows it: carriage return,
/// newline, clear to end of line (the only control sequence the bar sends), and wrapping when a
/// character lands past the last column.
struct Screen {
    explicit Screen(std::size_t width, const std::string& bytes) : width(width) {
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            const char c = bytes[i];
            if (c == '\r') {
                column = 0;
            } else if (c == '\n') {
                rows.emplace_back();
                column = 0;
            } else if (c == '\x1b') {
                EXPECT_EQ(bytes.compare(i, 3, "\x1b[K"), 0) << "unexpected control sequence";
                rows.back().resize(std::min(rows.back().size(), column));
                i += 2;
            } else {
                if (column == width) {
                    wrapped = true;
                    rows.emplace_back();
                    column = 0;
                }
                std::string& row = rows.back();
                if (row.size() <= column) {
                    row.resize(column + 1, ' ');
                }
                row[column++] = c;
            }
        }
    }
    std::size_t width;
    std::vector<std::string> rows{std::string()};
    std::size_t column = 0;
    bool wrapped = false;
};

/// Sets an environment variable for one test.
class ScopedEnvironment {
  public:
    ScopedEnvironment(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
        }
        ::setenv(name, value, 1);
    }
    ~ScopedEnvironment() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

ProgressOptions every_update_as_lines(const Capture& capture, std::optional<std::size_t> total) {
    return {.total = total,
            .label = "work",
            .out = capture.file(),
            .style = ProgressOptions::Style::lines,
            .interval = std::chrono::milliseconds(0)};
}

TEST(ProgressFormat, PlainLineWithATotal) {
    const ProgressSnapshot snapshot{45, 100, duration<double>(3.0)};
    // 15 items a second; 55 left take 3.67 s.
    EXPECT_EQ(format_progress("tasks", snapshot, 0),
              "tasks: 45/100 (45%) 15.0 it/s elapsed 00:03 eta 00:04");
}

TEST(ProgressFormat, TerminalLineWithABar) {
    const ProgressSnapshot snapshot{45, 100, duration<double>(3.0)};
    EXPECT_EQ(format_progress("tasks", snapshot, 20),
              "tasks:  45%|#########           | 45/100 [00:03<00:04, 15.0 it/s]");
    EXPECT_EQ(format_progress("", ProgressSnapshot{100, 100, duration<double>(2.0)}, 10),
              "100%|##########| 100/100 [00:02<00:00, 50.0 it/s]");
}

TEST(ProgressFormat, WithoutATotalOnlyCountAndRate) {
    const ProgressSnapshot snapshot{45, std::nullopt, duration<double>(3.0)};
    EXPECT_EQ(format_progress("tasks", snapshot, 0), "tasks: 45 it [00:03, 15.0 it/s]");
    EXPECT_EQ(format_progress("tasks", snapshot, 20), "tasks: 45 it [00:03, 15.0 it/s]");
}

TEST(ProgressFormat, RatesTimesAndEdges) {
    // Nothing done yet: no rate, no ETA.
    EXPECT_EQ(format_progress("", ProgressSnapshot{0, 10, duration<double>(1.0)}, 0),
              "0/10 (0%) ? it/s elapsed 00:01 eta ?");
    // Slow items read better as seconds per item.
    EXPECT_EQ(format_progress("", ProgressSnapshot{2, 4, duration<double>(5.0)}, 0),
              "2/4 (50%) 2.50 s/it elapsed 00:05 eta 00:05");
    // Fast ones with a prefix; hours in the clock.
    EXPECT_EQ(
        format_progress("", ProgressSnapshot{2'500'000, std::nullopt, duration<double>(2.0)}, 0),
        "2500000 it [00:02, 1.25M it/s]");
    EXPECT_EQ(format_progress("", ProgressSnapshot{3000, std::nullopt, duration<double>(2.0)}, 0),
              "3000 it [00:02, 1.50k it/s]");
    EXPECT_EQ(format_progress("", ProgressSnapshot{1, 2, duration<double>(3725.0)}, 0),
              "1/2 (50%) 3725.00 s/it elapsed 1:02:05 eta 1:02:05");
    // An empty total is complete; a count past the total stays at 100%.
    EXPECT_EQ(format_progress("", ProgressSnapshot{0, 0, duration<double>(0.0)}, 0),
              "0/0 (100%) ? it/s elapsed 00:00 eta ?");
    EXPECT_EQ(format_progress("", ProgressSnapshot{12, 10, duration<double>(1.0)}, 4),
              "100%|####| 12/10 [00:01<00:00, 12.0 it/s]");
}

TEST(ProgressBar, LinesStyleReportsEveryUpdateWithIntervalZeroAndNeverRepeatsTheLast) {
    Capture capture;
    {
        mproc::ProgressBar bar(every_update_as_lines(capture, 3));
        for (int i = 0; i < 3; ++i) {
            bar.update();
        }
        EXPECT_EQ(bar.count(), 3u);
    } // finish: the last count was already shown
    const std::vector<std::string> lines = capture.lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_TRUE(lines[0].starts_with("work: 1/3 (33%) ")) << lines[0];
    EXPECT_TRUE(lines[1].starts_with("work: 2/3 (66%) ")) << lines[1];
    EXPECT_TRUE(lines[2].starts_with("work: 3/3 (100%) ")) << lines[2];
    EXPECT_TRUE(std::regex_search(lines[2], std::regex(R"( eta 00:00$)"))) << lines[2];
}

TEST(ProgressBar, LinesStyleIsRateLimitedButAlwaysShowsTheFinalCount) {
    Capture capture;
    {
        mproc::ProgressBar bar({.total = 1000,
                                .out = capture.file(),
                                .style = ProgressOptions::Style::lines,
                                .interval = std::chrono::hours(1)});
        for (int i = 0; i < 1000; ++i) {
            bar.update();
        }
        EXPECT_EQ(capture.text(), "") << "reported within the interval";
        bar.finish();
        bar.finish(); // idempotent
    }
    const std::vector<std::string> lines = capture.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].starts_with("1000/1000 (100%) ")) << lines[0];
}

TEST(ProgressBar, AutomaticStyleOnAFileIsLines) {
    Capture capture;
    {
        mproc::ProgressBar bar({.out = capture.file(), .interval = std::chrono::milliseconds(0)});
        bar.update(5);
    }
    EXPECT_EQ(capture.text().find('\r'), std::string::npos);
    const std::vector<std::string> lines = capture.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(lines[0].starts_with("5 it [00:00, ")) << lines[0];
}

TEST(ProgressBar, TerminalStyleRedrawsOneLineInPlaceAndEndsIt) {
    Capture capture;
    {
        mproc::ProgressBar bar({.total = 4,
                                .label = "t",
                                .out = capture.file(),
                                .style = ProgressOptions::Style::terminal,
                                .interval = std::chrono::milliseconds(0)});
        bar.update(2);
        bar.update(2);
    }
    const std::string text = capture.text();
    // An empty bar at once, two redraws, the final draw: each starts at column 0 and clears what
    // a longer earlier line left; one newline, at the very end.
    std::vector<std::string> draws;
    for (std::size_t at = text.find('\r'); at != std::string::npos;) {
        const std::size_t next = text.find('\r', at + 1);
        draws.push_back(text.substr(at + 1, next == std::string::npos ? next : next - at - 1));
        at = next;
    }
    ASSERT_EQ(draws.size(), 4u) << text;
    EXPECT_TRUE(draws[0].starts_with("t:   0%|")) << draws[0];
    EXPECT_TRUE(std::regex_search(draws[1], std::regex(R"(^t:  50%\|#+ +\| 2/4 \[)"))) << draws[1];
    EXPECT_TRUE(std::regex_search(draws[3], std::regex(R"(^t: 100%\|#+\| 4/4 \[.*\]\x1b\[K\n$)")))
        << draws[3];
    for (const std::string& draw : draws) {
        EXPECT_NE(draw.find("\x1b[K"), std::string::npos) << draw;
    }
    EXPECT_EQ(text.find('\n'), text.size() - 1);
}

TEST(ProgressFormat, TerminalLineFitsTheWidthLeavingTheLastColumnFree) {
    const ProgressSnapshot snapshot{450, 1000, duration<double>(3.0)};
    const std::string wide = mproc::detail::terminal_progress_line("tasks", snapshot, 200);
    EXPECT_EQ(wide, format_progress("tasks", snapshot, 40)) << "the bar is at most 40 cells";
    for (std::size_t columns : {0u, 1u, 2u, 10u, 30u, 50u, 51u, 52u, 60u, 80u}) {
        const std::string line = mproc::detail::terminal_progress_line("tasks", snapshot, columns);
        EXPECT_LE(line.size(), std::max<std::size_t>(columns, 2) - 1) << columns;
        EXPECT_TRUE(line.starts_with(columns > 2 ? "ta" : "t")) << line;
    }
    // A bar only where at least ten cells fit; else the plain form, cut.
    EXPECT_NE(mproc::detail::terminal_progress_line("tasks", snapshot, 80).find("|#"),
              std::string::npos);
    EXPECT_EQ(mproc::detail::terminal_progress_line("tasks", snapshot, 30),
              format_progress("tasks", snapshot, 0).substr(0, 29));
    // A cut never splits a character of the label.
    EXPECT_EQ(mproc::detail::terminal_progress_line("\u00e4\u00e4\u00e4\u00e4", snapshot, 3),
              "\u00e4\u00e4");
}

TEST(ProgressTerminal, NeverWrapsAndPrintsLinesAboveTheBar) {
    for (unsigned short width : {20, 40, 60, 100}) {
        SCOPED_TRACE(width);
        PseudoTerminal terminal(width);
        {
            mproc::ProgressBar bar({.total = 1000,
                                    .label = "downloading files",
                                    .out = terminal.out(),
                                    .interval = std::chrono::milliseconds(0)});
            for (int i = 0; i < 1000; ++i) {
                bar.update();
                if (i == 499) {
                    bar.println("halfway there");
                }
            }
        }
        const Screen screen(width, terminal.close_terminal());
        EXPECT_FALSE(screen.wrapped);
        // The printed line above, the finished bar under it, the cursor on a fresh line.
        ASSERT_EQ(screen.rows.size(), 3u);
        EXPECT_EQ(screen.rows[0], "halfway there");
        EXPECT_TRUE(screen.rows[1].starts_with("downloading")) << screen.rows[1];
        EXPECT_LT(screen.rows[1].size(), width);
        if (width == 100) {
            EXPECT_NE(screen.rows[1].find("100%|####"), std::string::npos) << screen.rows[1];
            EXPECT_NE(screen.rows[1].find("1000/1000"), std::string::npos) << screen.rows[1];
        }
        EXPECT_EQ(screen.rows[2], "");
    }
}

int square_after_a_long_first(int x) {
    if (x == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
    return x * x;
}

TEST(ProgressTerminal, RedrawsWhileWaitingForALongTask) {
    PseudoTerminal terminal(80);
    mproc::ThreadPool pool(1);
    std::vector<int> out;
    for (int r : mproc::progress(pool.imap(square_after_a_long_first, std::views::iota(0, 2)),
                                 {.total = 2, .out = terminal.out()})) {
        out.push_back(r);
    }
    EXPECT_EQ(out, (std::vector<int>{0, 1}));
    const std::string received = terminal.close_terminal();
    // Every draw starts with a carriage return. While the first task ran (1.5 s) the bar was
    // redrawn every 100 ms; five is a generous floor for a loaded machine.
    std::vector<std::string> waiting;
    for (std::size_t at = received.find('\r'); at != std::string::npos;) {
        const std::size_t next = received.find('\r', at + 1);
        const std::string draw = received.substr(at + 1, next - at - 1);
        if (draw.find(" 0/2 [") != std::string::npos) {
            waiting.push_back(draw);
        }
        at = next;
    }
    ASSERT_GE(waiting.size(), 5u) << received;
    EXPECT_NE(waiting.front().find("[00:00<?, ? it/s]"), std::string::npos) << waiting.front();
    // The last draw before the result came, 1.0 to 1.5 s in (rounded: 00:01 or 00:02).
    EXPECT_EQ(waiting.back().find("[00:00<"), std::string::npos)
        << "the elapsed time did not move on while waiting: " << waiting.back();
    EXPECT_NE(waiting.back().find("<?, ? it/s]"), std::string::npos) << waiting.back();
    const Screen screen(80, received);
    EXPECT_TRUE(screen.rows[0].starts_with("100%|")) << screen.rows[0];
}

TEST(ProgressTerminal, StylesThatDrawNothing) {
    PseudoTerminal terminal(80);
    Capture capture;
    {
        mproc::ProgressBar off({.total = 3,
                                .out = terminal.out(),
                                .style = ProgressOptions::Style::off,
                                .interval = std::chrono::milliseconds(0)});
        mproc::ProgressBar not_on_a_file({.total = 3,
                                          .out = capture.file(),
                                          .style = ProgressOptions::Style::only_on_terminal,
                                          .interval = std::chrono::milliseconds(0)});
        for (int i = 0; i < 3; ++i) {
            off.update();
            not_on_a_file.update();
        }
        off.println("a line still prints");
        EXPECT_EQ(off.count(), 3u);
        EXPECT_EQ(not_on_a_file.count(), 3u);
    }
    EXPECT_EQ(capture.text(), "");
    {
        mproc::ProgressBar on_the_terminal({.total = 3,
                                            .label = "t",
                                            .out = terminal.out(),
                                            .style = ProgressOptions::Style::only_on_terminal});
        on_the_terminal.update(3);
    }
    const Screen screen(80, terminal.close_terminal());
    ASSERT_EQ(screen.rows.size(), 3u);
    EXPECT_EQ(screen.rows[0], "a line still prints");
    EXPECT_TRUE(screen.rows[1].starts_with("t: 100%|###")) << screen.rows[1];
}

TEST(ProgressTerminal, ADumbTerminalGetsPlainLines) {
    const ScopedEnvironment dumb("TERM", "dumb");
    PseudoTerminal terminal(80);
    {
        mproc::ProgressBar bar({.total = 2, .out = terminal.out()});
        bar.update(2);
        bar.println("done");
    }
    const std::string received = terminal.close_terminal();
    EXPECT_EQ(received.find('\x1b'), std::string::npos) << received;
    // The terminal turns each newline into carriage return + newline.
    EXPECT_TRUE(received.starts_with("done\r\n2/2 (100%) ")) << received;
}

TEST(ProgressBar, PrintlnInLinesStyleIsAPlainLine) {
    Capture capture;
    {
        mproc::ProgressBar bar(every_update_as_lines(capture, 2));
        bar.update();
        bar.println("between");
        bar.update();
    }
    const std::vector<std::string> lines = capture.lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[1], "between");
    EXPECT_TRUE(lines[2].starts_with("work: 2/2")) << lines[2];
}

template <class Pool>
void stream_with_progress() {
    Pool pool(2);
    Capture capture;
    std::vector<int> out;
    {
        auto stream = mproc::progress(pool.imap(square, std::views::iota(0, 50), 3),
                                      every_update_as_lines(capture, 50));
        for (int r : stream) {
            out.push_back(r);
        }
        EXPECT_EQ(stream.bar().count(), 50u);
    }
    std::vector<int> expected;
    for (int i = 0; i < 50; ++i) {
        expected.push_back(i * i);
    }
    EXPECT_EQ(out, expected);
    const std::vector<std::string> lines = capture.lines();
    ASSERT_EQ(lines.size(), 50u);
    EXPECT_TRUE(lines.front().starts_with("work: 1/50 (2%) ")) << lines.front();
    EXPECT_TRUE(lines.back().starts_with("work: 50/50 (100%) ")) << lines.back();
}

TEST(ProgressStream, ThreadPoolImapCountsEveryResult) { stream_with_progress<mproc::ThreadPool>(); }
TEST(ProgressStream, ProcessPoolImapCountsEveryResult) { stream_with_progress<mproc::Pool>(); }

TEST(ProgressStream, LeavingEarlyShowsHowFarItGot) {
    mproc::ThreadPool pool(2);
    Capture capture;
    {
        int taken = 0;
        for (int r : mproc::progress(pool.imap_unordered(square, std::views::iota(0)),
                                     every_update_as_lines(capture, std::nullopt))) {
            (void)r;
            if (++taken == 10) {
                break;
            }
        }
    }
    const std::vector<std::string> lines = capture.lines();
    ASSERT_FALSE(lines.empty());
    // The loop saw ten items, the tenth when it left.
    EXPECT_TRUE(lines.back().starts_with("work: 10 it [")) << lines.back();
    EXPECT_EQ(pool.apply(square, 3), 9);
}

TEST(ProgressStream, AFailedItemCountsAndItsErrorStillReachesTheConsumer) {
    mproc::ThreadPool pool(2);
    Capture capture;
    auto stream = mproc::progress(pool.imap(fail_at_three, std::views::iota(0, 6)),
                                  every_update_as_lines(capture, 6));
    std::vector<int> out;
    bool failed = false;
    for (int i = 0; i < 6; ++i) {
        try {
            out.push_back(*stream.next(std::chrono::seconds(10)));
        } catch (const std::runtime_error& error) {
            EXPECT_STREQ(error.what(), "three");
            failed = true;
        }
    }
    EXPECT_TRUE(failed);
    EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 4, 5}));
    EXPECT_EQ(stream.bar().count(), 6u);
    EXPECT_EQ(stream.next(), std::nullopt);
    EXPECT_TRUE(capture.lines().back().starts_with("work: 6/6 (100%) "));
}

} // namespace
