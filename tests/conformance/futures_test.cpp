// SPDX-License-Identifier: MIT
// concurrent.futures on every pool class: mproc::as_completed, mproc::wait,
// AsyncResult::add_done_callback, and co_await on a result.

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "mproc/wait.hpp"

namespace {

using namespace conformance;

template <class Pool>
class FuturesTest : public PoolTest {};
TYPED_TEST_SUITE(FuturesTest, PoolTypes);

std::string text_of(int x) { return std::to_string(x); }

TYPED_TEST(FuturesTest, AsCompletedGivesEachResultOnceAsItFinishes) {
    TypeParam pool(3);
    std::vector<mproc::AsyncResult<int>> results;
    for (int ms : {600, 10, 300}) {
        results.push_back(pool.apply_async(sleep_ms, ms));
    }
    std::vector<int> order;
    for (auto& result : mproc::as_completed(results)) {
        EXPECT_TRUE(result.ready());
        order.push_back(result.get());
    }
    EXPECT_EQ(order, (std::vector<int>{10, 300, 600}));
}

TYPED_TEST(FuturesTest, AsCompletedGivesThoseFinishedAlreadyFirstInInputOrder) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(sleep_ms, 400));
    results.push_back(pool.apply_async(square, 2));
    results.push_back(pool.apply_async(square, 3));
    ASSERT_TRUE(results[1].wait(long_wait));
    ASSERT_TRUE(results[2].wait(long_wait));
    std::vector<int> order;
    for (auto& result : mproc::as_completed(results, long_wait)) {
        order.push_back(result.get());
    }
    EXPECT_EQ(order, (std::vector<int>{4, 9, 400}));
}

TYPED_TEST(FuturesTest, AsCompletedGivesFailedResultsAndTheirErrors) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    for (int x : {-20, 5, -1}) {
        results.push_back(pool.apply_async(sleep_then_fail_if_negative, x));
    }
    int failed = 0;
    int values = 0;
    for (auto& result : mproc::as_completed(results)) {
        if (result.successful()) {
            EXPECT_EQ(result.get(), 5);
            ++values;
        } else {
            EXPECT_TRUE(throws<std::runtime_error>([&] { result.get(); }));
            ++failed;
        }
    }
    EXPECT_EQ(failed, 2);
    EXPECT_EQ(values, 1);
}

TYPED_TEST(FuturesTest, AsCompletedThrowsTimeoutErrorWhenNothingFinishesInTime) {
    TypeParam pool(1);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(square, 6));
    results.push_back(pool.apply_async(sleep_ms, 500));
    // The first one finished before the 50 ms start: a first answer slower than that (a
    // loaded machine, MPI over TCP) must not count as the timeout under test.
    results[0].wait();
    auto finishing = mproc::as_completed(results, 50ms);
    auto it = finishing.begin();
    ASSERT_NE(it, std::default_sentinel);
    EXPECT_EQ(it->get(), 36);
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { ++it; }));
    EXPECT_EQ(results[1].get(long_wait), 500); // the call went on
}

TYPED_TEST(FuturesTest, AsCompletedLeftEarlyForgetsTheRest) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(square, 7));
    for (int i = 0; i < 4; ++i) {
        results.push_back(pool.apply_async(sleep_ms, 100));
    }
    for (auto& result : mproc::as_completed(results)) {
        EXPECT_EQ(result.get(), 49);
        break;
    }
    // The rest finish after the view is gone, with nobody to tell.
    for (auto& result : results) {
        ASSERT_TRUE(result.wait(long_wait));
    }
    EXPECT_EQ(results.back().get(), 100);
}

TYPED_TEST(FuturesTest, AsCompletedOverResultsOfDifferentTypes) {
    TypeParam pool(2);
    auto number = pool.apply_async(sleep_ms, 200);
    auto text = pool.apply_async(text_of, 42);
    auto squares = pool.map_async(square, std::vector<int>{1, 2, 3});
    std::vector<mproc::AnyResult> all{number, text, squares};
    int finished = 0;
    for (mproc::AnyResult& result : mproc::as_completed(all)) {
        EXPECT_TRUE(result.ready());
        ++finished;
    }
    EXPECT_EQ(finished, 3);
    EXPECT_EQ(text.get(), "42");
    EXPECT_EQ(squares.get(), (std::vector<int>{1, 4, 9}));
    EXPECT_EQ(number.get(), 200);
}

TYPED_TEST(FuturesTest, AsCompletedOfNothingEndsAtOnce) {
    std::vector<mproc::AsyncResult<int>> none;
    int seen = 0;
    for (auto& result : mproc::as_completed(none, 0ms)) {
        (void)result;
        ++seen;
    }
    EXPECT_EQ(seen, 0);
}

TYPED_TEST(FuturesTest, WaitAllCompleted) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    for (int ms : {50, 10, 100}) {
        results.push_back(pool.apply_async(sleep_ms, ms));
    }
    const mproc::WaitOutcome outcome = mproc::wait(results);
    EXPECT_EQ(outcome.done, (std::vector<std::size_t>{0, 1, 2}));
    EXPECT_TRUE(outcome.not_done.empty());
    for (auto& result : results) {
        EXPECT_TRUE(result.ready());
    }
}

TYPED_TEST(FuturesTest, WaitFirstCompletedReturnsWithTheFirst) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(sleep_ms, 1000));
    results.push_back(pool.apply_async(sleep_ms, 10));
    const auto outcome = mproc::wait(results, mproc::FirstCompleted, long_wait);
    EXPECT_EQ(outcome.done, (std::vector<std::size_t>{1}));
    EXPECT_EQ(outcome.not_done, (std::vector<std::size_t>{0}));
    EXPECT_FALSE(results[0].ready());
}

TYPED_TEST(FuturesTest, WaitFirstExceptionReturnsAtTheFirstErrorOrWhenAllEnded) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(sleep_ms, 1000));
    results.push_back(pool.apply_async(sleep_then_fail_if_negative, -10));
    const auto outcome = mproc::wait(results, mproc::FirstException);
    EXPECT_EQ(outcome.done, (std::vector<std::size_t>{1}));
    EXPECT_EQ(outcome.not_done, (std::vector<std::size_t>{0}));
    EXPECT_FALSE(results[1].successful());

    // Without an error it waits for all of them.
    std::vector<mproc::AsyncResult<int>> fine;
    fine.push_back(pool.apply_async(sleep_ms, 30));
    fine.push_back(pool.apply_async(square, 3));
    const auto all = mproc::wait(fine, mproc::FirstException);
    EXPECT_EQ(all.done, (std::vector<std::size_t>{0, 1}));
    ASSERT_TRUE(results[0].wait(long_wait));
}

TYPED_TEST(FuturesTest, WaitWithATimeoutSaysWhatIsNotDone) {
    TypeParam pool(1);
    std::vector<mproc::AsyncResult<int>> results;
    results.push_back(pool.apply_async(square, 4));
    results.push_back(pool.apply_async(sleep_ms, 500));
    ASSERT_TRUE(results[0].wait(long_wait));
    const auto outcome = mproc::wait(results, mproc::AllCompleted, 30ms);
    EXPECT_EQ(outcome.done, (std::vector<std::size_t>{0}));
    EXPECT_EQ(outcome.not_done, (std::vector<std::size_t>{1}));
    EXPECT_EQ(mproc::wait(results, mproc::AllCompleted, 0ms).not_done.size(), 1u);
    EXPECT_EQ(results[1].get(long_wait), 500);
    // Repeated waits leave no observer behind: a thousand of them on a pending result.
    auto pending = pool.apply_async(sleep_ms, 100);
    std::vector<mproc::AnyResult> one{pending};
    for (int i = 0; i < 1000; ++i) {
        mproc::wait(one, mproc::FirstCompleted, 0ms);
    }
    EXPECT_EQ(mproc::wait(one).done.size(), 1u);
}

TYPED_TEST(FuturesTest, WaitOnNothingReturnsAtOnce) {
    std::vector<mproc::AnyResult> none;
    for (auto when : {mproc::FirstCompleted, mproc::FirstException, mproc::AllCompleted}) {
        const auto outcome = mproc::wait(none, when);
        EXPECT_TRUE(outcome.done.empty());
        EXPECT_TRUE(outcome.not_done.empty());
    }
}

TYPED_TEST(FuturesTest, DoneCallbacksRunOnceInOrderBeforeWaitReturns) {
    TypeParam pool(2);
    std::vector<std::string> seen;
    std::mutex seen_mutex;
    auto result = pool.apply_async(sleep_ms, 100);
    result.add_done_callback([&](const mproc::AsyncResult<int>& done) {
        EXPECT_TRUE(done.ready());
        EXPECT_TRUE(done.successful());
        std::lock_guard lock(seen_mutex);
        seen.push_back("first " + std::to_string(done.get()));
    });
    result.add_done_callback([&](const mproc::AsyncResult<int>& done) {
        std::lock_guard lock(seen_mutex);
        seen.push_back("second " + std::to_string(done.get(0ms)));
    });
    ASSERT_TRUE(result.wait(long_wait));
    {
        std::lock_guard lock(seen_mutex);
        EXPECT_EQ(seen, (std::vector<std::string>{"first 100", "second 100"}));
    }
    EXPECT_EQ(result.get(), 100); // the callbacks' handles discarded nothing
}

TYPED_TEST(FuturesTest, ADoneCallbackAddedAfterTheEndRunsAtOnceOnThisThread) {
    TypeParam pool(2);
    auto result = pool.apply_async(fail_if_negative, -3);
    ASSERT_TRUE(result.wait(long_wait));
    std::thread::id ran_on;
    bool failed = false;
    result.add_done_callback([&](const mproc::AsyncResult<int>& done) {
        ran_on = std::this_thread::get_id();
        failed = !done.successful();
        EXPECT_TRUE(throws<std::runtime_error>([&] { done.get(); }));
    });
    EXPECT_EQ(ran_on, std::this_thread::get_id());
    EXPECT_TRUE(failed);
}

TYPED_TEST(FuturesTest, ADoneCallbackThatThrowsChangesNothing) {
    TypeParam pool(2);
    auto result = pool.apply_async(sleep_ms, 50);
    std::atomic<int> calls{0};
    result.add_done_callback([&](const mproc::AsyncResult<int>&) {
        ++calls;
        throw std::runtime_error("thrown by a done callback (expected in this test)");
    });
    result.add_done_callback([&](const mproc::AsyncResult<int>&) { ++calls; });
    EXPECT_EQ(result.get(long_wait), 50);
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(pool.apply(square, 5), 25);
}

TYPED_TEST(FuturesTest, DoneCallbacksOnManyResultsFromManyThreads) {
    TypeParam pool(2);
    std::atomic<int> calls{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            std::vector<mproc::AsyncResult<int>> results;
            for (int i = 0; i < 50; ++i) {
                results.push_back(pool.apply_async(square, i));
                results.back().add_done_callback(
                    [&](const mproc::AsyncResult<int>& done) { calls += done.get() >= 0; });
            }
            mproc::wait(results);
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(calls.load(), 200);
}

/// The least coroutine type that runs at once and reports its end through a promise.
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

template <class Pool>
Detached sum_of_squares(Pool& pool, int slow_ms, std::promise<int>& sum) {
    try {
        const int slow = co_await pool.apply_async(sleep_ms, slow_ms); // an rvalue: moved out
        auto second = pool.apply_async(square, 4);                     // submitted after resuming
        const int& four_squared = co_await second;                     // an lvalue: by reference
        sum.set_value(slow + four_squared);
    } catch (...) {
        sum.set_exception(std::current_exception());
    }
}

TYPED_TEST(FuturesTest, CoAwaitSuspendsUntilTheResultIsReady) {
    TypeParam pool(2);
    std::promise<int> sum;
    std::future<int> reported = sum.get_future();
    sum_of_squares(pool, 300, sum);
    // The coroutine is suspended, not waiting on this thread: the call above returned first.
    EXPECT_EQ(reported.wait_for(0ms), std::future_status::timeout);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready);
    EXPECT_EQ(reported.get(), 316);
}

TYPED_TEST(FuturesTest, CoAwaitOnAReadyResultGoesOnAtOnce) {
    TypeParam pool(2);
    std::promise<int> sum;
    std::future<int> reported = sum.get_future();
    sum_of_squares(pool, 0, sum);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready);
    EXPECT_EQ(reported.get(), 16);
}

template <class Pool>
Detached await_failure(Pool& pool, std::promise<std::string>& message) {
    try {
        co_await pool.apply_async(sleep_then_fail_if_negative, -30);
        message.set_value("no error");
    } catch (const std::runtime_error& error) {
        message.set_value(error.what());
    }
}

TYPED_TEST(FuturesTest, CoAwaitThrowsTheTasksError) {
    TypeParam pool(2);
    std::promise<std::string> message;
    std::future<std::string> reported = message.get_future();
    await_failure(pool, message);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready);
    EXPECT_EQ(reported.get(), "bad item -30");
}

template <class Pool>
Detached await_then_block(Pool& pool, std::promise<int>& reported) {
    try {
        const int awaited = co_await pool.apply_async(sleep_ms, 50);
        // Blocking calls on the same pool, from wherever the coroutine was resumed.
        const int squared = pool.apply(square, awaited);
        const std::vector<int> more = pool.map(square, std::vector<int>{1, 2, 3});
        reported.set_value(squared + more[0] + more[1] + more[2]);
    } catch (...) {
        reported.set_exception(std::current_exception());
    }
}

TYPED_TEST(FuturesTest, ACoroutineMayMakeBlockingCallsOnThePoolItAwaited) {
    TypeParam pool(2);
    std::promise<int> sum;
    std::future<int> reported = sum.get_future();
    await_then_block(pool, sum);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready)
        << "a coroutine resumed where results are delivered waits for itself";
    EXPECT_EQ(reported.get(), 2500 + 1 + 4 + 9);
}

template <class Pool>
Detached await_into(Pool& pool, int ms, std::promise<int>& reported) {
    try {
        reported.set_value(co_await pool.apply_async(sleep_ms, ms));
    } catch (...) {
        reported.set_exception(std::current_exception());
    }
}

TYPED_TEST(FuturesTest, ACoroutineAwaitingARunningTaskGoesOnBeforeItsPoolIsGone) {
    if constexpr (!cancel_stops_running_tasks<TypeParam>) {
        GTEST_SKIP() << "a task running on a thread holds up the pool's end until it returns";
    } else {
        std::promise<int> value;
        std::future<int> reported = value.get_future();
        {
            TypeParam pool(1);
            await_into(pool, 10'000, value);
            std::this_thread::sleep_for(100ms); // the task is running
        } // terminate() and join(): the coroutine has gone on by the time they return
        ASSERT_EQ(reported.wait_for(0ms), std::future_status::ready);
        EXPECT_THROW(reported.get(), mproc::PoolTerminated);
    }
}

TYPED_TEST(FuturesTest, ACallbackThatWaitsForAResultWaitsOnWorkersAndIsRefusedWhereResultsArrive) {
    TypeParam pool(2);
    auto slow = pool.apply_async(sleep_ms, 1000);
    int seen = 0;
    auto result = pool.apply_async(mproc::on_success([&](int) { seen = slow.get(); }), square, 3);
    ASSERT_TRUE(result.wait(long_wait)) << "a callback that waits for a result hung";
    if constexpr (a_thread_delivers_results<TypeParam>) {
        // That thread alone could deliver the result the callback waits for.
        try {
            result.get();
            ADD_FAILURE() << "the wait in the callback was not refused";
        } catch (const mproc::Error& error) {
            EXPECT_NE(std::string(error.what()).find("would never end"), std::string::npos)
                << error.what();
        }
        EXPECT_EQ(seen, 0);
    } else {
        // A worker thread runs the callback: it waits (and helps) as any task does.
        EXPECT_EQ(result.get(), 9);
        EXPECT_EQ(seen, 1000);
    }
    EXPECT_EQ(slow.get(long_wait), 1000);
}

/// Consumes a stream with co_await: its values in the order they came, and the messages of the
/// items that failed, as "!message".
template <class Pool>
Detached consume_stream(Pool& pool, bool in_order, std::vector<int> items,
                        std::promise<std::vector<std::string>>& reported) {
    try {
        auto stream = in_order ? pool.imap(sleep_then_fail_if_negative, items, 2)
                               : pool.imap_unordered(sleep_then_fail_if_negative, items, 2);
        std::vector<std::string> seen;
        for (;;) {
            try {
                std::optional<int> value = co_await stream.next_async();
                if (!value) {
                    break;
                }
                seen.push_back(std::to_string(*value));
            } catch (const std::runtime_error& error) {
                seen.push_back(std::string("!") + error.what());
            }
        }
        reported.set_value(std::move(seen));
    } catch (...) {
        reported.set_exception(std::current_exception());
    }
}

TYPED_TEST(FuturesTest, CoAwaitOnAStreamGivesEachResultInOrderThenTheEnd) {
    TypeParam pool(2);
    std::vector<int> items;
    std::vector<std::string> expected;
    for (int i = 0; i < 30; ++i) {
        const int item = i == 7 ? -6 : (i * 7) % 11; // milliseconds; one item fails
        items.push_back(item);
        expected.push_back(item < 0 ? "!bad item -6" : std::to_string(item));
    }
    std::promise<std::vector<std::string>> seen;
    std::future<std::vector<std::string>> reported = seen.get_future();
    consume_stream(pool, /*in_order=*/true, items, seen);
    // Suspended, not waiting on this thread: the call above returned first.
    EXPECT_EQ(reported.wait_for(0ms), std::future_status::timeout);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready);
    EXPECT_EQ(reported.get(), expected);
}

TYPED_TEST(FuturesTest, CoAwaitOnAnUnorderedStreamGivesEveryResult) {
    TypeParam pool(2);
    std::vector<int> items;
    std::vector<std::string> expected;
    for (int i = 0; i < 30; ++i) {
        items.push_back((i * 5) % 13);
        expected.push_back(std::to_string(items.back()));
    }
    std::promise<std::vector<std::string>> seen;
    std::future<std::vector<std::string>> reported = seen.get_future();
    consume_stream(pool, /*in_order=*/false, items, seen);
    ASSERT_EQ(reported.wait_for(long_wait), std::future_status::ready);
    std::vector<std::string> got = reported.get();
    std::sort(got.begin(), got.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(got, expected);
}

TYPED_TEST(FuturesTest, CoAwaitOnAnEmptyStreamEndsAtOnce) {
    TypeParam pool(2);
    std::promise<std::vector<std::string>> seen;
    std::future<std::vector<std::string>> reported = seen.get_future();
    consume_stream(pool, /*in_order=*/true, {}, seen);
    ASSERT_EQ(reported.wait_for(0ms), std::future_status::ready);
    EXPECT_TRUE(reported.get().empty());
}

TYPED_TEST(FuturesTest, ResultsDroppedAsSoonAsAWaitReturnsRaceWithNoObserver) {
    // The observers of a wait may still run, on the thread that ends a call, after the wait has
    // returned and the caller has dropped the results (and their outcomes) already.
    TypeParam pool(2);
    for (int round = 0; round < 100; ++round) {
        std::vector<mproc::AsyncResult<int>> results;
        results.push_back(pool.apply_async(fail_if_negative, -1));
        results.push_back(pool.apply_async(fail_if_negative, -2));
        const auto outcome = mproc::wait(results, mproc::FirstException, long_wait);
        ASSERT_FALSE(outcome.done.empty());
    } // the results go here, while the second may be ending on another thread
}

} // namespace
