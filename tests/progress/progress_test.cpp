// SPDX-License-Identifier: MIT
// mproc::progress and mproc::ProgressBar: what they print, when, and that wrapping a stream
// changes nothing of what the consumer gets.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <ranges>
#include <regex>
#include <stdexcept>
#include <string>
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
    // Nine items were passed by ++; the tenth was being looked at when the loop was left.
    EXPECT_TRUE(lines.back().starts_with("work: 9 it [")) << lines.back();
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
