// SPDX-License-Identifier: MIT
// Construction: number of workers, initializer, max_tasks_per_child, and their validation.

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

thread_local int initializer_runs = 0; // per worker: a thread or a process alike

void count_initializer_run() { ++initializer_runs; }
void failing_initializer() { throw std::runtime_error("initializer failed"); }

/// How often the initializer ran in the worker running this task (after sleeping `ms`).
int initializer_runs_here(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return initializer_runs;
}

/// The worker and its initializer count, as one result.
std::pair<std::uint64_t, int> worker_and_initializer_runs(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return {mproc::this_worker::id(), initializer_runs};
}

std::map<std::uint64_t, int> count_per_worker(const std::vector<std::uint64_t>& ids) {
    std::map<std::uint64_t, int> counts;
    for (std::uint64_t id : ids)
        ++counts[id];
    return counts;
}

template <class Pool>
class OptionsTest : public PoolTest {};
TYPED_TEST_SUITE(OptionsTest, PoolTypes);

TYPED_TEST(OptionsTest, DefaultNumberOfWorkersIsThePoolsDefault) {
    EXPECT_GE(default_workers<TypeParam>(), 1u);
    TypeParam pool;
    EXPECT_EQ(pool.workers(), default_workers<TypeParam>());
    EXPECT_EQ(pool.apply(square, 3), 9);
    TypeParam from_options(mproc::PoolOptions{});
    EXPECT_EQ(from_options.workers(), default_workers<TypeParam>());
}

TYPED_TEST(OptionsTest, WorkersReportsTheNumberAsked) {
    for (std::ptrdiff_t n : {1, 2, 3, 7}) {
        TypeParam pool(n);
        EXPECT_EQ(pool.workers(), static_cast<std::size_t>(n));
        TypeParam from_options(mproc::PoolOptions{.workers = n});
        EXPECT_EQ(from_options.workers(), static_cast<std::size_t>(n));
    }
}

TYPED_TEST(OptionsTest, TasksRunOnAtMostThatManyWorkers) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    TypeParam pool(3);
    const std::vector<std::uint64_t> ids = pool.map(worker_id_after, std::vector<int>(24, 10), 1);
    const std::set<std::uint64_t> distinct(ids.begin(), ids.end());
    EXPECT_LE(distinct.size(), 3u);
    EXPECT_GE(distinct.size(), 2u) << "24 slow items on 3 workers all ran on one worker";
    EXPECT_EQ(distinct.count(0), 0u) << "a task ran outside any worker";
    // The same workers serve the next call (no max_tasks_per_child: nobody is retired).
    const std::vector<std::uint64_t> later = pool.map(worker_id_after, std::vector<int>(24, 10), 1);
    std::set<std::uint64_t> all(ids.begin(), ids.end());
    all.insert(later.begin(), later.end());
    EXPECT_LE(all.size(), 3u);
}

TYPED_TEST(OptionsTest, WorkerIdIsZeroOutsideAWorker) { EXPECT_EQ(mproc::this_worker::id(), 0u); }

TYPED_TEST(OptionsTest, InitializerRunsOncePerWorkerBeforeItTakesWork) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    TypeParam pool(mproc::PoolOptions{.workers = 3, .initializer = count_initializer_run});
    const std::vector<int> runs = pool.map(initializer_runs_here, std::vector<int>(30, 2), 1);
    EXPECT_EQ(runs, std::vector<int>(30, 1));
    EXPECT_EQ(pool.apply(initializer_runs_here, 0), 1);
    auto stream = pool.imap_unordered(initializer_runs_here, std::vector<int>(10, 1));
    EXPECT_EQ(drain(stream), std::vector<int>(10, 1));
    EXPECT_EQ(initializer_runs, 0) << "the initializer ran in the caller";
}

TYPED_TEST(OptionsTest, InitializerRunsInEveryReplacementWorker) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    TypeParam pool(mproc::PoolOptions{
        .workers = 2, .initializer = count_initializer_run, .max_tasks_per_child = 2});
    const auto results = pool.map(worker_and_initializer_runs, std::vector<int>(20, 1), 1);
    std::set<std::uint64_t> ids;
    for (const auto& [id, runs] : results) {
        ids.insert(id);
        EXPECT_EQ(runs, 1) << "worker " << id;
    }
    EXPECT_GT(ids.size(), 2u) << "no worker was replaced";
}

TYPED_TEST(OptionsTest, AnInitializerThatThrowsFailsEveryTaskInsteadOfHanging) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    TypeParam pool(mproc::PoolOptions{.workers = 2, .initializer = failing_initializer});
    EXPECT_TRUE(
        throws_with<std::runtime_error>([&] { pool.apply(square, 2); }, "initializer failed"));
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { pool.map(square, range_vector(0, 10)); },
                                                "initializer failed"));
    auto result = pool.apply_async(square, 1);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_FALSE(result.successful());
    auto stream = pool.imap(square, range_vector(0, 3));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(
            throws_with<std::runtime_error>([&] { stream.next(long_wait); }, "initializer failed"));
    }
    EXPECT_EQ(stream.next(long_wait), std::nullopt);
    pool.close();
    pool.join();
}

TYPED_TEST(OptionsTest, MaxTasksPerChildRetiresWorkers) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    constexpr int max_tasks = 3;
    TypeParam pool(mproc::PoolOptions{.workers = 2, .max_tasks_per_child = max_tasks});
    EXPECT_EQ(pool.workers(), 2u);
    // chunksize 1: a task is one item.
    const std::vector<std::uint64_t> ids = pool.map(worker_id_after, std::vector<int>(30, 1), 1);
    const auto counts = count_per_worker(ids);
    for (const auto& [id, count] : counts) {
        EXPECT_LE(count, max_tasks) << "worker " << id << " ran " << count << " tasks";
        EXPECT_NE(id, 0u);
    }
    EXPECT_GE(counts.size(), 30u / max_tasks) << "workers were not replaced";

    // A task is a chunk: with chunksize 4, a worker runs at most 3 chunks, so 12 items, and
    // every chunk's items run on one worker.
    const std::vector<std::uint64_t> chunked =
        pool.map(worker_id_after, std::vector<int>(48, 1), 4);
    for (const auto& [id, count] : count_per_worker(chunked)) {
        EXPECT_LE(count, max_tasks * 4) << "worker " << id;
        EXPECT_EQ(count % 4, 0) << "a chunk was split across workers";
    }
    EXPECT_GT(count_per_worker(chunked).size(), 2u);

    // apply: one task each.
    std::vector<mproc::AsyncResult<std::uint64_t>> applies;
    for (int i = 0; i < 20; ++i) {
        applies.push_back(pool.apply_async(worker_id, 0));
    }
    std::vector<std::uint64_t> apply_ids;
    for (auto& result : applies) {
        ASSERT_TRUE(result.wait(long_wait));
        apply_ids.push_back(result.get());
    }
    for (const auto& [id, count] : count_per_worker(apply_ids)) {
        EXPECT_LE(count, max_tasks) << "worker " << id;
    }
    EXPECT_GT(count_per_worker(apply_ids).size(), 2u);
}

TYPED_TEST(OptionsTest, MaxTasksPerChildWithImapAndOneWorker) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    TypeParam pool(mproc::PoolOptions{.workers = 1, .max_tasks_per_child = 1});
    auto stream = pool.imap(worker_id, range_vector(0, 12));
    const std::vector<std::uint64_t> ids = drain(stream);
    ASSERT_EQ(ids.size(), 12u);
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), 12u)
        << "a worker ran two tasks despite max_tasks_per_child = 1";
    pool.close();
    pool.join();
}

TYPED_TEST(OptionsTest, InvalidNumberOfWorkers) {
    for (std::ptrdiff_t bad : {0, -1, -100}) {
        EXPECT_TRUE(throws_with<std::invalid_argument>([&] { TypeParam pool(bad); }, "workers"))
            << bad;
        EXPECT_TRUE(throws_with<std::invalid_argument>(
            [&] { TypeParam pool(mproc::PoolOptions{.workers = bad}); }, "workers"))
            << bad;
    }
    EXPECT_TRUE(throws_with<std::invalid_argument>([&] { TypeParam pool(-3); }, "-3"));
}

TYPED_TEST(OptionsTest, InvalidMaxTasksPerChild) {
    for (std::ptrdiff_t bad : {0, -1, -7}) {
        EXPECT_TRUE(throws_with<std::invalid_argument>(
            [&] { TypeParam pool(mproc::PoolOptions{.workers = 2, .max_tasks_per_child = bad}); },
            "max_tasks_per_child"))
            << bad;
    }
}

} // namespace
