// SPDX-License-Identifier: MIT
// MPROC_TIMELINE turns the timeline on for pools that do not ask for it, and each pool writes
// its file as it joins; the writers refuse paths they cannot write; a timeline's memory stays
// within its ring's bound however many chunks run.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <mproc/mproc.hpp>

namespace {

int square(int x) { return x * x; }

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path fresh_directory(const std::string& name) {
    const auto directory = std::filesystem::path(::testing::TempDir()) /
                           ("mproc_timeline_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(directory);
    std::filesystem::create_directories(directory);
    return directory;
}

TEST(MprocTimelineVariable, EveryPoolWritesItsTimelineAsItJoins) {
    const auto directory = fresh_directory("variable");
    const auto path = directory / "run.json";
    ASSERT_EQ(::setenv("MPROC_TIMELINE", path.c_str(), 1), 0);
    {
        mproc::ThreadPool threads(2); // no timeline option: the variable turns it on
        EXPECT_EQ(threads.map(square, std::vector<int>{1, 2, 3}, 1).size(), 3U);
        EXPECT_EQ(threads.timeline().events.empty(), false);
    }
    {
        mproc::Pool processes(2);
        EXPECT_EQ(processes.apply(square, 4), 16);
        processes.close();
        processes.join();
        EXPECT_TRUE(std::filesystem::exists(directory / "run-2.json")) << "written at join()";
    }
    ::unsetenv("MPROC_TIMELINE");
    {
        mproc::ThreadPool unrecorded(1);
        EXPECT_THROW((void)unrecorded.timeline(), mproc::Error);
    }
    const std::string first = read_file(path);
    EXPECT_NE(first.find("\"traceEvents\""), std::string::npos);
    EXPECT_NE(first.find("mproc::ThreadPool"), std::string::npos);
    const std::string second = read_file(directory / "run-2.json");
    EXPECT_NE(second.find("mproc::Pool"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(directory / "run-3.json"));
    std::filesystem::remove_all(directory);
}

TEST(TimelineWriters, APathThatCannotBeWrittenThrows) {
    mproc::Timeline timeline;
    timeline.pool = "mproc::ThreadPool";
    timeline.lanes = {"thread worker 0"};
    const auto nowhere = fresh_directory("nowhere") / "missing" / "run";
    EXPECT_THROW(mproc::write_timeline(timeline, nowhere.string() + ".svg"), std::system_error);
    EXPECT_THROW(mproc::write_timeline(timeline, nowhere.string() + ".json"), std::system_error);
}

TEST(TimelineWriters, AnEmptyTimelineIsStillAPictureAndATrace) {
    const auto directory = fresh_directory("empty");
    mproc::ThreadPool pool(mproc::PoolOptions{.workers = 1, .timeline = true});
    pool.close();
    pool.join();
    const mproc::Timeline timeline = pool.timeline();
    mproc::write_timeline(timeline, directory / "empty.svg");
    mproc::write_timeline(timeline, directory / "empty.json");
    EXPECT_NE(read_file(directory / "empty.svg").find("<svg"), std::string::npos);
    EXPECT_NE(read_file(directory / "empty.json").find("\"traceEvents\""), std::string::npos);
    std::filesystem::remove_all(directory);
}

TEST(TimelineRing, AnAbsurdBoundIsABoundNotAnAllocation) {
    // The ring grows as events come: a bound of SIZE_MAX (or one per lane of 2^61) allocates
    // nothing up front.
    for (const std::size_t bound :
         {std::numeric_limits<std::size_t>::max(), std::size_t{1} << 62}) {
        mproc::ThreadPool pool(
            mproc::PoolOptions{.workers = 2, .timeline = true, .timeline_events = bound});
        EXPECT_EQ(pool.map(square, std::vector<int>(100, 2), 1).size(), 100U);
        pool.close();
        pool.join();
        const mproc::Timeline timeline = pool.timeline();
        EXPECT_EQ(timeline.dropped, 0U);
        EXPECT_GE(timeline.events.size(), 100U);
    }
}

TEST(TimelineRing, AMillionChunksKeepOnlyTheRingsEvents) {
    constexpr std::size_t ring = 1000;
    mproc::ThreadPool pool(
        mproc::PoolOptions{.workers = 2, .timeline = true, .timeline_events = ring});
    const std::vector<int> items(1'000'000, 3);
    EXPECT_EQ(pool.map(square, items, 1).size(), items.size());
    pool.close();
    pool.join();
    const mproc::Timeline timeline = pool.timeline();
    EXPECT_LE(timeline.events.size(), ring);
    EXPECT_GE(timeline.events.size() + timeline.dropped, items.size());
    std::uint64_t chunks = 0;
    for (const mproc::WorkerStats& worker : pool.stats().workers) {
        chunks += worker.chunks;
    }
    EXPECT_EQ(chunks, items.size()) << "statistics count every chunk, kept or not";
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
