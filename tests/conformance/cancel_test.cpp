// SPDX-License-Identifier: MIT
// AsyncResult::cancel on every pool class: a task not started never runs; a running one is
// killed with its worker process where tasks run in processes, and runs on where they run on
// threads; a map_async call is cancelled as a whole; everything that observes a result sees
// mproc::Cancelled.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "mproc/wait.hpp"

namespace {

using namespace conformance;

template <class Pool>
class CancelTest : public PoolTest {};
TYPED_TEST_SUITE(CancelTest, PoolTypes);

/// A marker file of this test, removed first; every task that runs creates its own, so the test
/// sees which tasks started, whatever process or rank ran them (all on this machine).
std::string fresh_marker(const std::string& name) {
    static std::atomic<int> counter{0};
    const std::string path = ::testing::TempDir() + "mproc_cancel_" + std::to_string(::getpid()) +
                             "_" + std::to_string(counter++) + "_" + name;
    std::filesystem::remove(path);
    return path;
}

/// Creates `marker`, then sleeps `ms` milliseconds; returns `ms`.
int mark_then_sleep(std::string marker, int ms) {
    std::ofstream(marker) << "started\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

/// Waits until `marker` exists (its task has started); false after long_wait.
bool started(const std::string& marker) {
    const auto give_up = Clock::now() + long_wait;
    while (!std::filesystem::exists(marker)) {
        if (Clock::now() > give_up) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

template <class Result>
void expect_cancelled(Result& result) {
    EXPECT_TRUE(result.cancelled());
    ASSERT_TRUE(result.wait(long_wait)) << "a cancelled call must end soon";
    EXPECT_FALSE(result.successful());
    EXPECT_THROW(result.get(), mproc::Cancelled);
}

TYPED_TEST(CancelTest, AQueuedTaskIsDroppedAndNeverRuns) {
    TypeParam pool(1);
    const std::string first = fresh_marker("first");
    const std::string second = fresh_marker("second");
    auto running = pool.apply_async(mark_then_sleep, first, 300);
    ASSERT_TRUE(started(first));
    auto queued = pool.apply_async(mark_then_sleep, second, 0);
    EXPECT_FALSE(queued.cancelled());
    EXPECT_TRUE(queued.cancel());
    expect_cancelled(queued);
    EXPECT_EQ(running.get(long_wait), 300); // the other call is not touched
    pool.close();
    pool.join();
    EXPECT_FALSE(std::filesystem::exists(second)) << "a cancelled task ran";
}

TYPED_TEST(CancelTest, ARunningTaskIsKilledWhereTasksRunInProcessesAndRunsOnOnThreads) {
    TypeParam pool(1);
    const std::string marker = fresh_marker("running");
    constexpr bool stops = cancel_stops_running_tasks<TypeParam>;
    // Long enough that only a kill ends it within the test's bound where a kill is promised.
    const int task_ms = stops ? 60'000 : 300;
    auto running = pool.apply_async(mark_then_sleep, marker, task_ms);
    ASSERT_TRUE(started(marker));
    if constexpr (stops) {
        EXPECT_TRUE(running.cancel());
        expect_cancelled(running);
        // Its worker was replaced: the pool of one worker runs the next task.
        EXPECT_EQ(pool.apply_async(square, 7).get(long_wait), 49);
    } else {
        EXPECT_FALSE(running.cancel());
        EXPECT_FALSE(running.cancelled());
        EXPECT_EQ(running.get(long_wait), task_ms); // it ran to its end
    }
}

TYPED_TEST(CancelTest, KillingOneRunningTaskLeavesTheOthersRunning) {
    if constexpr (!cancel_stops_running_tasks<TypeParam>) {
        GTEST_SKIP() << "a running task is not stopped here";
    } else {
        TypeParam pool(2);
        const std::string doomed_marker = fresh_marker("doomed");
        const std::string other_marker = fresh_marker("other");
        auto doomed = pool.apply_async(mark_then_sleep, doomed_marker, 60'000);
        auto other = pool.apply_async(mark_then_sleep, other_marker, 800);
        ASSERT_TRUE(started(doomed_marker));
        ASSERT_TRUE(started(other_marker));
        EXPECT_TRUE(doomed.cancel());
        expect_cancelled(doomed);
        EXPECT_EQ(other.get(long_wait), 800);
    }
}

TYPED_TEST(CancelTest, AnEndedCallCannotBeCancelled) {
    TypeParam pool(2);
    auto result = pool.apply_async(square, 3);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_FALSE(result.cancel());
    EXPECT_FALSE(result.cancelled());
    EXPECT_EQ(result.get(), 9);
    auto failed = pool.apply_async(fail_if_negative, -1);
    ASSERT_TRUE(failed.wait(long_wait));
    EXPECT_FALSE(failed.cancel());
    EXPECT_THROW(failed.get(), std::runtime_error);
}

TYPED_TEST(CancelTest, CancellingTwiceIsTrueTwice) {
    TypeParam pool(1);
    const std::string marker = fresh_marker("busy");
    auto busy = pool.apply_async(mark_then_sleep, marker, 300);
    ASSERT_TRUE(started(marker));
    auto queued = pool.apply_async(square, 2);
    EXPECT_TRUE(queued.cancel());
    EXPECT_TRUE(queued.cancel());
    expect_cancelled(queued);
    EXPECT_EQ(busy.get(long_wait), 300);
}

TYPED_TEST(CancelTest, CallbacksDoneCallbacksAndWaitersSeeCancelled) {
    TypeParam pool(1);
    const std::string marker = fresh_marker("busy");
    auto busy = pool.apply_async(mark_then_sleep, marker, 300);
    ASSERT_TRUE(started(marker));
    std::atomic<int> error_callbacks{0};
    std::atomic<int> done_callbacks{0};
    auto queued = pool.apply_async(mproc::on_error([&](std::exception_ptr error) {
                                       try {
                                           std::rethrow_exception(error);
                                       } catch (const mproc::Cancelled&) {
                                           ++error_callbacks;
                                       } catch (...) {
                                       }
                                   }),
                                   square, 5);
    queued.add_done_callback([&](const mproc::AsyncResult<int>& result) {
        if (result.cancelled() && !result.successful()) {
            ++done_callbacks;
        }
    });
    std::vector<mproc::AsyncResult<int>> both;
    both.push_back(std::move(busy));
    both.push_back(std::move(queued));
    EXPECT_TRUE(both[1].cancel());
    const auto first = mproc::wait(both, mproc::FirstCompleted, long_wait);
    ASSERT_EQ(first.done.size(), 1U);
    EXPECT_EQ(first.done[0], 1U) << "the cancelled call ended first";
    EXPECT_EQ(error_callbacks.load(), 1);
    EXPECT_EQ(done_callbacks.load(), 1);
    EXPECT_THROW(both[1].get(), mproc::Cancelled);
    EXPECT_EQ(both[0].get(long_wait), 300);
}

TYPED_TEST(CancelTest, AQueuedMapAsyncIsCancelledAsAWhole) {
    TypeParam pool(1);
    const std::string marker = fresh_marker("busy");
    auto busy = pool.apply_async(mark_then_sleep, marker, 300);
    ASSERT_TRUE(started(marker));
    std::vector<int> xs(100);
    for (int i = 0; i < 100; ++i) {
        xs[static_cast<std::size_t>(i)] = i;
    }
    auto mapped = pool.map_async(never_called, xs, 10);
    EXPECT_TRUE(mapped.cancel());
    expect_cancelled(mapped);
    EXPECT_EQ(busy.get(long_wait), 300);
    // The pool runs on.
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TYPED_TEST(CancelTest, ARunningMapAsyncIsStoppedWhereTasksRunInProcesses) {
    TypeParam pool(2);
    const std::string marker = fresh_marker("map");
    constexpr bool stops = cancel_stops_running_tasks<TypeParam>;
    // Each item creates the same marker: the map has started once it exists.
    const int item_ms = stops ? 60'000 : 100;
    auto mapped = pool.starmap_async(
        mark_then_sleep, std::vector<std::tuple<std::string, int>>(8, {marker, item_ms}), 1);
    ASSERT_TRUE(started(marker));
    if constexpr (stops) {
        EXPECT_TRUE(mapped.cancel());
        expect_cancelled(mapped);
        EXPECT_EQ(pool.apply_async(square, 4).get(long_wait), 16);
    } else {
        EXPECT_FALSE(mapped.cancel());
        EXPECT_EQ(mapped.get(long_wait), std::vector<int>(8, item_ms));
    }
}

TYPED_TEST(CancelTest, AResultThatOutlivesItsPoolCancelsNothing) {
    mproc::AsyncResult<int> result;
    {
        TypeParam pool(1);
        result = pool.apply_async(square, 6);
        ASSERT_TRUE(result.wait(long_wait));
    }
    EXPECT_FALSE(result.cancel());
    EXPECT_EQ(result.get(), 36);
}

TYPED_TEST(CancelTest, CancelsRacingWithResultsFromManyThreadsAgreeWithTheOutcome) {
    TypeParam pool(2);
    constexpr int calls = 200;
    // The workers are busy for a moment first, so that the cancels meet queued calls as well as
    // running and finished ones.
    auto busy = pool.map_async(sleep_ms, std::vector<int>{200, 200}, 1);
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < calls; ++i) {
        results.push_back(pool.apply_async(square, i));
    }
    std::vector<char> said_true(calls, 0);
    std::vector<std::thread> cancellers;
    for (int t = 0; t < 4; ++t) {
        cancellers.emplace_back([&, t] {
            for (int i = calls - 1 - t; i >= 0; i -= 4) {
                said_true[static_cast<std::size_t>(i)] =
                    results[static_cast<std::size_t>(i)].cancel();
            }
        });
    }
    for (auto& canceller : cancellers) {
        canceller.join();
    }
    int cancelled = 0;
    for (int i = 0; i < calls; ++i) {
        auto& result = results[static_cast<std::size_t>(i)];
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_EQ(result.cancelled(), said_true[static_cast<std::size_t>(i)] != 0) << i;
        if (result.cancelled()) {
            ++cancelled;
            EXPECT_THROW(result.get(), mproc::Cancelled) << i;
        } else {
            EXPECT_EQ(result.get(), i * i) << i;
        }
    }
    EXPECT_GT(cancelled, 0);
    EXPECT_EQ(busy.get(long_wait), (std::vector<int>{200, 200}));
    EXPECT_EQ(pool.apply(square, 9), 81);
}

TYPED_TEST(CancelTest, ACallbackMayCancelAnotherCallOfItsPool) {
    // Callbacks run where results are delivered (a process pool's I/O thread, the MPI hub, a
    // worker thread): a cancel from there must not wait for that thread.
    TypeParam pool(1);
    const std::string marker = fresh_marker("busy");
    auto busy = pool.apply_async(mark_then_sleep, marker, 200);
    ASSERT_TRUE(started(marker));
    std::mutex handing_over; // `later` is assigned after the trigger is submitted
    mproc::AsyncResult<int> later;
    std::atomic<int> said{-1};
    auto trigger = pool.apply_async(mproc::on_success([&](int) {
                                        const std::lock_guard lock(handing_over);
                                        said = later.cancel() ? 1 : 0;
                                    }),
                                    square, 2);
    {
        const std::lock_guard lock(handing_over);
        later = pool.apply_async(sleep_ms, 500); // queued behind the trigger
    }
    ASSERT_TRUE(trigger.wait(long_wait));
    EXPECT_EQ(trigger.get(), 4);
    EXPECT_EQ(said.load(), 1);
    expect_cancelled(later);
    EXPECT_EQ(busy.get(long_wait), 200);
    EXPECT_EQ(pool.apply(square, 5), 25);
}

TYPED_TEST(CancelTest, CancelsRacingWithTerminateEndEveryCallOnce) {
    for (int round = 0; round < 5; ++round) {
        TypeParam pool(2);
        std::vector<mproc::AsyncResult<int>> results;
        for (int i = 0; i < 50; ++i) {
            results.push_back(pool.apply_async(sleep_ms, i % 3));
        }
        std::vector<char> said_true(results.size(), 0);
        std::thread canceller([&] {
            for (std::size_t i = 0; i < results.size(); ++i) {
                said_true[i] = results[i].cancel();
            }
        });
        pool.terminate();
        canceller.join();
        pool.join();
        for (std::size_t i = 0; i < results.size(); ++i) {
            ASSERT_TRUE(results[i].wait(long_wait)) << i;
            EXPECT_EQ(results[i].cancelled(), said_true[i] != 0) << i;
            if (said_true[i] != 0) {
                EXPECT_THROW(results[i].get(), mproc::Cancelled) << i;
            } else if (!results[i].successful()) {
                EXPECT_THROW(results[i].get(), mproc::PoolTerminated) << i;
            }
        }
    }
}

} // namespace
