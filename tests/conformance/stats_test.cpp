// SPDX-License-Identifier: MIT
// pool.stats() and pool.timeline() on every pool class: every chunk is counted on the worker
// that ran it, busy time is the time chunks took, losses and retirements are counted with
// their replacements, and the timeline holds one event per chunk (bounded by its ring).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include <unistd.h>

#include "conformance.hpp"

namespace {

using namespace conformance;

template <class Pool>
class StatsTest : public PoolTest {};
TYPED_TEST_SUITE(StatsTest, PoolTypes);

/// Ends its worker process at once (as a crash would), for x < 0.
int exit_if_negative(int x) {
    if (x < 0) {
        ::_exit(3);
    }
    return x;
}

struct Totals {
    std::uint64_t tasks = 0, chunks = 0, bytes_in = 0, bytes_out = 0, lost = 0, retired = 0,
                  replaced = 0;
    std::chrono::nanoseconds busy{0};
};

Totals totals(const mproc::PoolStats& stats) {
    Totals sum;
    for (const mproc::WorkerStats& worker : stats.workers) {
        sum.tasks += worker.tasks;
        sum.chunks += worker.chunks;
        sum.bytes_in += worker.bytes_in;
        sum.bytes_out += worker.bytes_out;
        sum.lost += worker.lost;
        sum.retired += worker.retired;
        sum.replaced += worker.replaced;
        sum.busy += worker.busy;
    }
    return sum;
}

std::vector<mproc::TimelineEvent> chunk_events(const mproc::Timeline& timeline) {
    std::vector<mproc::TimelineEvent> chunks;
    std::copy_if(timeline.events.begin(), timeline.events.end(), std::back_inserter(chunks),
                 [](const auto& event) { return event.kind == mproc::TimelineEvent::Kind::chunk; });
    return chunks;
}

TYPED_TEST(StatsTest, EveryChunkIsCountedOnTheWorkerThatRanIt) {
    TypeParam pool(2);
    EXPECT_EQ(pool.map(square, range_vector(0, 100), 10).size(), 100U);
    pool.close();
    pool.join();
    const mproc::PoolStats stats = pool.stats();
    ASSERT_GE(stats.workers.size(), 2U);
    const Totals sum = totals(stats);
    EXPECT_EQ(sum.tasks, 100U);
    EXPECT_EQ(sum.chunks, 10U);
    EXPECT_EQ(stats.chunks_submitted, 10U);
    EXPECT_EQ(stats.queue_depth, 0U);
    EXPECT_EQ(stats.max_queue_depth, 10U) << "the map's ten chunks were queued together";
    EXPECT_GT(sum.busy.count(), 0);
    if constexpr (tasks_run_in_worker_processes<TypeParam>) {
        // Every request carries at least its ten items, every answer their ten results.
        EXPECT_GE(sum.bytes_in, 10U * 10U * sizeof(int));
        EXPECT_GE(sum.bytes_out, 10U * 10U * sizeof(int));
    } else {
        EXPECT_EQ(sum.bytes_in + sum.bytes_out, 0U) << "nothing crossed a process boundary";
    }
    for (const mproc::WorkerStats& worker : stats.workers) {
        EXPECT_FALSE(worker.where.empty());
        EXPECT_GE(worker.busy_share(), 0.0);
        EXPECT_LE(worker.busy_share(), 1.0);
        EXPECT_EQ(worker.lost + worker.timed_out + worker.failed, 0U);
    }
}

TYPED_TEST(StatsTest, BusyTimeIsTheTimeTasksTook) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(sleep_ms, 60), 60);
    pool.close();
    pool.join(); // a thread records a chunk's time just after it delivered the result
    const mproc::PoolStats stats = pool.stats();
    const Totals sum = totals(stats);
    EXPECT_GE(sum.busy, 55ms);
    EXPECT_LT(sum.busy, long_wait);
    const auto busiest =
        std::max_element(stats.workers.begin(), stats.workers.end(),
                         [](const auto& a, const auto& b) { return a.busy < b.busy; });
    EXPECT_GT(busiest->busy_share(), 0.0);
}

TYPED_TEST(StatsTest, StatsAreReadWhileWorkRuns) {
    TypeParam pool(2);
    auto slow = pool.map_async(sleep_ms, std::vector<int>(8, 20), 1);
    for (int i = 0; i < 20; ++i) {
        const mproc::PoolStats stats = pool.stats();
        EXPECT_LE(stats.queue_depth, 8U);
        EXPECT_LE(totals(stats).chunks, 8U);
    }
    ASSERT_TRUE(slow.wait(long_wait));
    EXPECT_EQ(totals(pool.stats()).chunks, 8U);
}

TYPED_TEST(StatsTest, RetirementsAreCountedWithTheirWorkerSlot) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "max_tasks_per_child is refused where the caller runs chunks";
    } else {
        TypeParam pool(mproc::PoolOptions{.workers = 1, .max_tasks_per_child = 2});
        for (int i = 0; i < 5; ++i) {
            EXPECT_EQ(pool.apply(square, i), i * i);
        }
        pool.close();
        pool.join();
        const mproc::PoolStats stats = pool.stats();
        ASSERT_EQ(stats.workers.size(), 1U);
        EXPECT_EQ(stats.workers[0].retired, 2U) << "retired after tasks 2 and 4";
        EXPECT_EQ(stats.workers[0].chunks, 5U);
        EXPECT_EQ(stats.workers[0].replaced, 0U);
    }
}

TYPED_TEST(StatsTest, ALostWorkerIsCountedAndItsReplacementTakesItsSlot) {
    if constexpr (!tasks_run_in_worker_processes<TypeParam>) {
        GTEST_SKIP() << "a thread is never lost";
    } else {
        TypeParam pool(mproc::PoolOptions{.workers = 1, .timeline = true});
        EXPECT_THROW(pool.apply(exit_if_negative, -1), mproc::WorkerLost);
        EXPECT_EQ(pool.apply(exit_if_negative, 7), 7) << "the replacement runs the next task";
        const mproc::PoolStats stats = pool.stats();
        ASSERT_EQ(stats.workers.size(), 1U);
        EXPECT_EQ(stats.workers[0].lost, 1U);
        EXPECT_EQ(stats.workers[0].replaced, 1U);
        EXPECT_EQ(stats.workers[0].chunks, 2U);
        EXPECT_EQ(stats.workers[0].tasks, 1U) << "the lost chunk's item did not finish";

        const mproc::Timeline timeline = pool.timeline();
        const auto chunks = chunk_events(timeline);
        ASSERT_EQ(chunks.size(), 2U);
        EXPECT_EQ(chunks[0].end, mproc::ChunkEnd::lost);
        EXPECT_EQ(chunks[1].end, mproc::ChunkEnd::finished);
        EXPECT_NE(chunks[0].pid, chunks[1].pid) << "a new worker process ran the second";
        EXPECT_TRUE(std::any_of(timeline.events.begin(), timeline.events.end(), [](auto& e) {
            return e.kind == mproc::TimelineEvent::Kind::worker_lost;
        }));
    }
}

void failing_initializer() { throw std::runtime_error("initializer failed"); }

TYPED_TEST(StatsTest, ChunksOfAWorkerWhoseInitializerFailedCountAsFailed) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "an initializer is refused where the caller runs chunks";
    } else {
        TypeParam pool(
            mproc::PoolOptions{.workers = 1, .initializer = failing_initializer, .timeline = true});
        EXPECT_ANY_THROW(pool.apply(square, 2));
        const mproc::PoolStats stats = pool.stats(); // counted by the time the result is ready
        ASSERT_EQ(stats.workers.size(), 1U);
        EXPECT_EQ(stats.workers[0].failed, 1U);
        EXPECT_EQ(stats.workers[0].chunks, 1U);
        EXPECT_EQ(stats.workers[0].tasks, 0U);
        pool.close();
        pool.join(); // and timed, on a thread, just after
        const auto chunks = chunk_events(pool.timeline());
        ASSERT_EQ(chunks.size(), 1U);
        EXPECT_EQ(chunks[0].end, mproc::ChunkEnd::failed);
    }
}

TYPED_TEST(StatsTest, TheTimelineHoldsEveryChunkOnItsLane) {
    TypeParam pool(mproc::PoolOptions{.workers = 2, .timeline = true});
    EXPECT_EQ(pool.map(square, range_vector(0, 40), 4).size(), 40U);
    auto squares = pool.map_async(square, range_vector(0, 8), 8);
    ASSERT_TRUE(squares.wait(long_wait));
    pool.close();
    pool.join();
    const mproc::Timeline timeline = pool.timeline();
    EXPECT_FALSE(timeline.pool.empty());
    EXPECT_EQ(timeline.dropped, 0U);
    const auto chunks = chunk_events(timeline);
    ASSERT_EQ(chunks.size(), 11U);
    std::set<std::uint64_t> firsts;
    std::set<std::uint64_t> calls;
    for (const mproc::TimelineEvent& chunk : chunks) {
        EXPECT_EQ(chunk.end, mproc::ChunkEnd::finished);
        EXPECT_LT(chunk.lane, timeline.lanes.size());
        EXPECT_LE(chunk.submitted_ns, chunk.start_ns);
        EXPECT_LE(chunk.start_ns, chunk.end_ns);
        EXPECT_GT(chunk.pid, 0);
        calls.insert(chunk.call);
        if (chunk.count == 4) {
            firsts.insert(chunk.first);
        }
    }
    EXPECT_EQ(calls.size(), 2U) << "the map's chunks and the map_async's are two calls";
    EXPECT_EQ(firsts, (std::set<std::uint64_t>{0, 4, 8, 12, 16, 20, 24, 28, 32, 36}));
    EXPECT_TRUE(std::is_sorted(timeline.events.begin(), timeline.events.end(),
                               [](auto& a, auto& b) { return a.end_ns < b.end_ns; }));
    EXPECT_TRUE(std::any_of(timeline.events.begin(), timeline.events.end(), [](auto& e) {
        return e.kind == mproc::TimelineEvent::Kind::worker_started;
    }));
}

TYPED_TEST(StatsTest, AFullTimelineDropsItsOldestEvents) {
    TypeParam pool(mproc::PoolOptions{.workers = 2, .timeline = true, .timeline_events = 6});
    EXPECT_EQ(pool.map(square, range_vector(0, 60), 1).size(), 60U);
    pool.close();
    pool.join();
    const mproc::Timeline timeline = pool.timeline();
    EXPECT_LE(timeline.events.size(), 6U + 1U); // a share per lane, each of at least one event
    EXPECT_GE(timeline.events.size() + timeline.dropped, 60U);
    EXPECT_GT(timeline.dropped, 0U);
    // What is kept is the newest: each lane keeps its last chunk, and the chunk of the last
    // item, taken last, was the last of its lane.
    const auto chunks = chunk_events(timeline);
    EXPECT_TRUE(std::any_of(chunks.begin(), chunks.end(), [](auto& e) { return e.first == 59; }));
}

TYPED_TEST(StatsTest, NoTimelineUnlessAskedFor) {
    TypeParam pool(1);
    EXPECT_EQ(pool.apply(square, 3), 9);
    EXPECT_THROW((void)pool.timeline(), mproc::Error);
    EXPECT_THROW((void)TypeParam(mproc::PoolOptions{.workers = 1, .timeline_events = 0}),
                 std::invalid_argument);
}

} // namespace
