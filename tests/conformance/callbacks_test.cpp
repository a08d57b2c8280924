// SPDX-License-Identifier: MIT
// Callbacks: run once per call, in the caller's process, one at a time, finished before
// wait()/get() return; a throwing callback ends the result with its exception.

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

template <class Pool>
class CallbacksTest : public PoolTest {};
TYPED_TEST_SUITE(CallbacksTest, PoolTypes);

TYPED_TEST(CallbacksTest, EachCallbackRunsOncePerCall) {
    TypeParam pool(3);
    std::vector<int> successes;
    int errors = 0;
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = -5; i < 15; ++i) {
        results.push_back(pool.apply_async(
            mproc::callbacks([&](int v) { successes.push_back(v); }, // serial: no lock needed
                             [&](std::exception_ptr) { ++errors; }),
            fail_if_negative, i));
    }
    for (auto& result : results) {
        ASSERT_TRUE(result.wait(long_wait));
    }
    std::sort(successes.begin(), successes.end());
    EXPECT_EQ(successes, range_vector(0, 15));
    EXPECT_EQ(errors, 5);
}

TYPED_TEST(CallbacksTest, CallbacksHaveFinishedBeforeWaitAndGetReturn) {
    TypeParam pool(2);
    for (int round = 0; round < 3; ++round) {
        std::atomic<bool> success_done{false};
        std::atomic<bool> error_done{false};
        auto ok = pool.apply_async(mproc::on_success([&](int) {
                                       sleep_ms(30);
                                       success_done = true;
                                   }),
                                   square, 2);
        auto bad = pool.apply_async(mproc::on_error([&](std::exception_ptr) {
                                        sleep_ms(30);
                                        error_done = true;
                                    }),
                                    fail_if_negative, -2);
        auto map = pool.map_async(square, range_vector(0, 10), mproc::auto_chunksize,
                                  mproc::on_success([&](const auto&) { sleep_ms(30); }));
        if (round == 0) {
            ASSERT_TRUE(ok.wait(long_wait));
            EXPECT_TRUE(success_done);
            ASSERT_TRUE(bad.wait(long_wait));
            EXPECT_TRUE(error_done);
        } else if (round == 1) {
            EXPECT_EQ(ok.get(long_wait), 4);
            EXPECT_TRUE(success_done);
            EXPECT_TRUE(throws<std::runtime_error>([&] { bad.get(long_wait); }));
            EXPECT_TRUE(error_done);
        } else {
            ASSERT_TRUE(ok.wait(long_wait));
            ASSERT_TRUE(bad.wait(long_wait));
            ok.wait();
            EXPECT_TRUE(success_done);
            EXPECT_TRUE(ok.ready());
            EXPECT_TRUE(bad.ready());
            EXPECT_TRUE(error_done);
        }
        ASSERT_TRUE(map.wait(long_wait));
    }
}

TYPED_TEST(CallbacksTest, ReadyIsFalseWhileTheCallbackRuns) {
    TypeParam pool(1);
    std::atomic<bool> callback_started{false};
    std::atomic<bool> callback_done{false};
    auto result = pool.apply_async(mproc::on_success([&](int) {
                                       callback_started = true;
                                       sleep_ms(100);
                                       callback_done = true;
                                   }),
                                   square, 3);
    const auto deadline = Clock::now() + long_wait;
    while (!callback_started && Clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(callback_started);
    // Read in this order: a result that is ready must have a finished callback.
    const bool ready_now = result.ready();
    const bool done_now = callback_done;
    EXPECT_TRUE(!ready_now || done_now) << "ready() while the callback was still running";
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(callback_done);
}

TYPED_TEST(CallbacksTest, CallbacksNeverRunConcurrently) {
    TypeParam pool(4);
    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
    std::atomic<int> calls{0};
    auto enter = [&] {
        const int now = ++inside;
        int seen = most_inside.load();
        while (now > seen && !most_inside.compare_exchange_weak(seen, now)) {
        }
        sleep_ms(10);
        --inside;
        ++calls;
    };
    std::vector<mproc::AsyncResult<int>> applies;
    std::vector<mproc::AsyncResult<std::vector<int>>> maps;
    for (int i = 0; i < 8; ++i) {
        applies.push_back(pool.apply_async(
            mproc::callbacks([&](int) { enter(); }, [&](std::exception_ptr) { enter(); }),
            fail_if_negative, i % 2 == 0 ? i : -i));
        maps.push_back(
            pool.map_async(square, range_vector(0, 4), 1,
                           mproc::on_success([&](const std::vector<int>&) { enter(); })));
    }
    for (auto& result : applies)
        ASSERT_TRUE(result.wait(long_wait));
    for (auto& result : maps)
        ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(calls, 16);
    EXPECT_EQ(most_inside, 1) << "two callbacks ran at the same time";
}

TYPED_TEST(CallbacksTest, ASuccessCallbackThatThrowsEndsTheResultWithItsException) {
    TypeParam pool(2);
    auto result = pool.apply_async(
        mproc::on_success([](int) { throw std::logic_error("callback failed"); }), square, 3);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_FALSE(result.successful());
    EXPECT_TRUE(throws_with<std::logic_error>([&] { result.get(); }, "callback failed"));

    auto map = pool.map_async(square, range_vector(0, 10), 2, mproc::on_success([](const auto&) {
                                  throw std::length_error("map callback failed");
                              }));
    ASSERT_TRUE(map.wait(long_wait));
    EXPECT_TRUE(throws_with<std::length_error>([&] { map.get(); }, "map callback failed"));

    EXPECT_TRUE(throws_with<std::logic_error>(
        [&] {
            pool.apply(mproc::on_success([](int) { throw std::logic_error("blocking"); }), square,
                       1);
        },
        "blocking"));

    // No hang, and the pool goes on working (callbacks included).
    int calls = 0;
    EXPECT_EQ(pool.apply(mproc::on_success([&](int) { ++calls; }), square, 5), 25);
    EXPECT_EQ(calls, 1);
}

TYPED_TEST(CallbacksTest, AnErrorCallbackThatThrowsEndsTheResultWithItsException) {
    TypeParam pool(2);
    int error_calls = 0;
    auto result = pool.apply_async(mproc::on_error([&](std::exception_ptr) {
                                       ++error_calls;
                                       throw std::logic_error("error callback failed");
                                   }),
                                   fail_if_negative, -1);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(error_calls, 1);
    EXPECT_FALSE(result.successful());
    EXPECT_TRUE(throws_with<std::logic_error>([&] { result.get(); }, "error callback failed"));
    EXPECT_EQ(pool.apply(square, 4), 16);
}

TYPED_TEST(CallbacksTest, MapAsyncErrorCallbackRunsOnceAndSuccessCallbackNever) {
    TypeParam pool(3);
    int successes = 0;
    int errors = 0;
    std::string message;
    std::vector<int> input = range_vector(0, 30);
    input[4] = -4;
    input[17] = -17;
    auto result = pool.map_async(fail_if_negative, input, 2,
                                 mproc::callbacks([&](const auto&) { ++successes; },
                                                  [&](std::exception_ptr e) {
                                                      ++errors;
                                                      try {
                                                          std::rethrow_exception(e);
                                                      } catch (const std::exception& x) {
                                                          message = x.what();
                                                      }
                                                  }));
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(successes, 0);
    EXPECT_EQ(errors, 1);
    EXPECT_TRUE(message == "bad item -4" || message == "bad item -17") << message;
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(); }, message));
}

TYPED_TEST(CallbacksTest, CallbacksMayCaptureLargeStateByValue) {
    TypeParam pool(2);
    int seen = 0;
    std::vector<int> big(10000, 1);
    big[5] = 41;
    auto result =
        pool.apply_async(mproc::on_success([&seen, big](int v) { seen = v + big[5]; }), square, 1);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(seen, 42);
}

TYPED_TEST(CallbacksTest, CallbacksRunEvenWhenTheHandleIsDroppedAtOnce) {
    TypeParam pool(2);
    int successes = 0;
    int errors = 0;
    for (int i = 0; i < 10; ++i) {
        pool.apply_async(mproc::on_success([&](int) { ++successes; }), sleep_ms, 5);
        pool.apply_async(mproc::on_error([&](std::exception_ptr) { ++errors; }), fail_if_negative,
                         -1);
        pool.map_async(square, range_vector(0, 4), mproc::auto_chunksize,
                       mproc::on_success([&](const auto&) { ++successes; }));
    }
    pool.close();
    pool.join(); // every queued call has run, and so has each callback
    EXPECT_EQ(successes, 20);
    EXPECT_EQ(errors, 10);
}

TYPED_TEST(CallbacksTest, AnErrorCallbackMayTerminateThePool) {
    // Python's "stop at the first error": error_callback=lambda e: pool.terminate(). The queued
    // calls, whose callbacks must run too, end with PoolTerminated; nothing hangs.
    TypeParam pool(1);
    int terminated_errors = 0;
    int other_errors = 0;
    int successes = 0;
    auto count = [&] {
        return mproc::callbacks([&](int) { ++successes; },
                                [&](std::exception_ptr e) {
                                    if (holds<mproc::PoolTerminated>(e)) {
                                        ++terminated_errors;
                                    } else {
                                        ++other_errors;
                                    }
                                });
    };
    auto blocker = pool.apply_async(sleep_ms, 50); // keeps the rest queued
    auto failing = pool.apply_async(mproc::on_error([&](std::exception_ptr) { pool.terminate(); }),
                                    fail_if_negative, -1);
    std::vector<mproc::AsyncResult<int>> queued;
    for (int i = 0; i < 5; ++i) {
        queued.push_back(pool.apply_async(count(), square, i));
    }
    ASSERT_TRUE(failing.wait(long_wait));
    for (auto& result : queued) {
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_TRUE(throws<mproc::PoolTerminated>([&] { result.get(); }));
    }
    EXPECT_EQ(terminated_errors, 5);
    EXPECT_EQ(other_errors, 0);
    EXPECT_EQ(successes, 0);
    EXPECT_TRUE(throws<mproc::PoolNotRunning>([&] { pool.apply(square, 1); }));
    pool.join();
}

} // namespace
