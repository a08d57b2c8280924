// SPDX-License-Identifier: MIT
// Lifecycle: close, terminate, join and the destructor, and what each does to pending work.

#include <algorithm>
#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

template <class Pool>
class LifecycleTest : public PoolTest {};
TYPED_TEST_SUITE(LifecycleTest, PoolTypes);

/// Every kind of call throws mproc::PoolNotRunning, and no callback runs.
template <class Pool>
void expect_every_call_refused(Pool& pool) {
    int callback_calls = 0;
    auto count = [&] {
        return mproc::callbacks([&](const auto&) { ++callback_calls; },
                                [&](std::exception_ptr) { ++callback_calls; });
    };
    const std::vector<int> input{1, 2, 3};
    const std::vector<int> empty;
    const std::vector<std::pair<int, int>> pairs{{1, 2}};
    auto refused = [](auto&& call) { return throws<mproc::PoolNotRunning>(call); };

    EXPECT_TRUE(refused([&] { pool.apply(square, 1); }));
    EXPECT_TRUE(refused([&] { pool.apply(count(), square, 1); }));
    EXPECT_TRUE(refused([&] { pool.apply_async(square, 1); }));
    EXPECT_TRUE(refused([&] { pool.apply_async(count(), square, 1); }));
    EXPECT_TRUE(
        refused([&] { pool.apply_async(mproc::on_error([](std::exception_ptr) {}), square, 1); }));
    EXPECT_TRUE(refused([&] { pool.map(square, input); }));
    EXPECT_TRUE(refused([&] { pool.map(square, input, 2); }));
    EXPECT_TRUE(refused([&] { pool.map(square, empty); }));
    EXPECT_TRUE(refused([&] { pool.map(square, Generator(0, 3)); }));
    EXPECT_TRUE(refused([&] { pool.map_async(square, input); }));
    EXPECT_TRUE(refused([&] { pool.map_async(square, input, 2); }));
    EXPECT_TRUE(refused([&] { pool.map_async(square, input, mproc::auto_chunksize, count()); }));
    EXPECT_TRUE(refused([&] { pool.map_async(square, input, 2, count()); }));
    EXPECT_TRUE(refused([&] { pool.map_async(square, empty, mproc::auto_chunksize, count()); }));
    EXPECT_TRUE(refused([&] { pool.starmap(add, pairs); }));
    EXPECT_TRUE(refused([&] { pool.starmap(add, pairs, 1); }));
    EXPECT_TRUE(refused([&] { pool.starmap_async(add, pairs); }));
    EXPECT_TRUE(refused([&] { pool.starmap_async(add, pairs, 1); }));
    EXPECT_TRUE(refused([&] { pool.starmap_async(add, pairs, mproc::auto_chunksize, count()); }));
    EXPECT_TRUE(refused([&] { pool.starmap_async(add, pairs, 1, count()); }));
    EXPECT_TRUE(refused([&] { pool.imap(square, input); }));
    EXPECT_TRUE(refused([&] { pool.imap(square, input, 2); }));
    EXPECT_TRUE(refused([&] { pool.imap(square, empty); }));
    EXPECT_TRUE(refused([&] { pool.imap(square, std::views::iota(0)); }));
    EXPECT_TRUE(refused([&] { pool.imap_unordered(square, input); }));
    EXPECT_TRUE(refused([&] { pool.imap_unordered(square, input, 2); }));
    EXPECT_TRUE(refused([&] { pool.imap_unordered(square, empty); }));
    EXPECT_EQ(callback_calls, 0);
}

TYPED_TEST(LifecycleTest, CloseThenJoinLetsQueuedWorkFinish) {
    TypeParam pool(2);
    std::vector<mproc::AsyncResult<int>> applies;
    for (int i = 0; i < 10; ++i) {
        applies.push_back(pool.apply_async(sleep_ms, 10 + i));
    }
    int successes = 0;
    auto map = pool.map_async(sleep_ms, std::vector<int>(8, 5), 1,
                              mproc::on_success([&](const auto&) { ++successes; }));
    pool.close();
    pool.join();
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(applies[i].wait(long_wait)) << i;
        EXPECT_EQ(applies[i].get(), 10 + i);
    }
    ASSERT_TRUE(map.wait(long_wait));
    EXPECT_EQ(map.get(), std::vector<int>(8, 5));
    EXPECT_EQ(successes, 1);
}

TYPED_TEST(LifecycleTest, JoinBeforeCloseOrTerminateThrowsPoolStillRunning) {
    TypeParam pool(2);
    EXPECT_TRUE(throws<mproc::PoolStillRunning>([&] { pool.join(); }));
    EXPECT_TRUE(throws<mproc::Error>([&] { pool.join(); }));
    EXPECT_EQ(pool.apply(square, 3), 9); // still running
    pool.close();
    pool.join();
}

TYPED_TEST(LifecycleTest, EveryCallIsRefusedAfterClose) {
    TypeParam pool(2);
    pool.close();
    expect_every_call_refused(pool);
    pool.join();
    expect_every_call_refused(pool);
}

TYPED_TEST(LifecycleTest, EveryCallIsRefusedAfterTerminate) {
    TypeParam pool(2);
    pool.terminate();
    expect_every_call_refused(pool);
    pool.join();
    expect_every_call_refused(pool);
}

TYPED_TEST(LifecycleTest, CloseTerminateAndJoinMayBeRepeated) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(square, 2), 4);
    pool.close();
    pool.close();
    pool.join();
    pool.join();
    pool.terminate();
    pool.terminate();
    pool.join();
    expect_every_call_refused(pool);
}

TYPED_TEST(LifecycleTest, TerminateEndsQueuedWorkWithPoolTerminated) {
    TypeParam pool(1);
    auto running = pool.apply_async(sleep_ms, 200); // occupies the only worker
    std::vector<mproc::AsyncResult<int>> queued;
    for (int i = 0; i < 5; ++i) {
        queued.push_back(pool.apply_async(square, i));
    }
    int error_calls = 0;
    int success_calls = 0;
    bool error_was_termination = false;
    auto queued_with_callbacks =
        pool.apply_async(mproc::callbacks([&](int) { ++success_calls; },
                                          [&](std::exception_ptr e) {
                                              ++error_calls;
                                              error_was_termination =
                                                  holds<mproc::PoolTerminated>(e);
                                          }),
                         square, 9);
    auto queued_map = pool.map_async(square, range_vector(0, 10), 1);
    pool.terminate();

    // Every result ends, within a bound: the running one with its value (a thread cannot be
    // interrupted) or PoolTerminated (a process can); queued ones with PoolTerminated. A task
    // that started before terminate() (the test thread can be descheduled) may end with its
    // value, but then so did every task ahead of it in the queue.
    ASSERT_TRUE(running.wait(long_wait));
    if (running.successful()) {
        EXPECT_EQ(running.get(), 200);
    } else {
        EXPECT_TRUE(throws<mproc::PoolTerminated>([&] { running.get(); }));
    }
    bool terminated_seen = false;
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(queued[i].wait(long_wait)) << i;
        if (queued[i].successful()) {
            EXPECT_FALSE(terminated_seen) << "task " << i << " ran after one ahead was dropped";
            EXPECT_EQ(queued[i].get(), i * i);
        } else {
            terminated_seen = true;
            EXPECT_TRUE(throws_with<mproc::PoolTerminated>([&] { queued[i].get(); }, "terminat"));
        }
    }
    ASSERT_TRUE(queued_with_callbacks.wait(long_wait));
    EXPECT_EQ(error_calls + success_calls, 1);
    ASSERT_TRUE(queued_map.wait(long_wait));
    EXPECT_FALSE(queued_map.successful()) << "10 chunks queued behind a 200 ms task all ran";
    EXPECT_TRUE(throws<mproc::PoolTerminated>([&] { queued_map.get(); }));
    if (error_calls == 1) {
        EXPECT_TRUE(error_was_termination);
    }
    pool.join();
}

TYPED_TEST(LifecycleTest, TerminateUnblocksAMapInAnotherThread) {
    TypeParam pool(1);
    std::atomic<bool> calling{false};
    auto blocked = std::async(std::launch::async, [&pool, &calling] {
        try {
            calling = true;
            pool.map(sleep_ms, std::vector<int>(20, 30), 1);
            return std::string("returned");
        } catch (const mproc::PoolTerminated&) {
            return std::string("PoolTerminated");
        } catch (const std::exception& e) {
            return std::string("other: ") + e.what();
        }
    });
    const auto deadline = Clock::now() + long_wait;
    while (!calling && Clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(50ms); // the map is submitted and its first item is running
    pool.terminate();
    ASSERT_EQ(blocked.wait_for(long_wait), std::future_status::ready);
    EXPECT_EQ(blocked.get(), "PoolTerminated");
    pool.join();
}

TYPED_TEST(LifecycleTest, TerminateEndsAnOpenImapStream) {
    TypeParam pool(1);
    auto stream = pool.imap(sleep_ms, std::vector<int>(20, 30));
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(30));
    pool.terminate();
    int values = 0;
    int terminated = 0;
    bool ended = false;
    for (int i = 0; i < 100 && !ended; ++i) {
        try {
            std::optional<int> value = stream.next(long_wait);
            if (value) {
                EXPECT_EQ(*value, 30);
                ++values;
            } else {
                ended = true;
            }
        } catch (const mproc::PoolTerminated&) {
            ++terminated;
        }
    }
    EXPECT_TRUE(ended);
    EXPECT_GE(terminated, 1);
    EXPECT_LT(values, 19) << "terminate() let every queued item run";
    pool.join();
}

TYPED_TEST(LifecycleTest, TerminateReachesAConsumerBlockedInAnotherThread) {
    TypeParam pool(1);
    auto stream = pool.imap(sleep_ms, std::vector<int>(40, 30));
    std::atomic<bool> consuming{false};
    auto consumer = std::async(std::launch::async, [&stream, &consuming] {
        consuming = true;
        int terminated = 0;
        for (int i = 0; i < 100; ++i) {
            try {
                if (!stream.next(long_wait)) {
                    return terminated;
                }
            } catch (const mproc::PoolTerminated&) {
                ++terminated;
            }
        }
        return -1; // never ended
    });
    const auto deadline = Clock::now() + long_wait;
    while (!consuming && Clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(40ms);
    pool.terminate();
    ASSERT_EQ(consumer.wait_for(long_wait), std::future_status::ready);
    EXPECT_GE(consumer.get(), 1) << "the stream ended without PoolTerminated (or never ended)";
    pool.join();
}

TYPED_TEST(LifecycleTest, DestructorWithWorkInFlightEndsEveryResult) {
    std::vector<mproc::AsyncResult<int>> results;
    mproc::AsyncResult<std::vector<int>> map;
    std::optional<mproc::ResultStream<int>> stream;
    {
        TypeParam pool(2);
        for (int i = 0; i < 8; ++i) {
            results.push_back(pool.apply_async(sleep_ms, 50));
        }
        map = pool.map_async(sleep_ms, std::vector<int>(10, 20), 1);
        stream.emplace(pool.imap(sleep_ms, std::vector<int>(50, 10)));
    } // terminate() + join(); the watchdog bounds it
    for (auto& result : results) {
        ASSERT_TRUE(result.wait(long_wait));
        if (result.successful()) {
            EXPECT_EQ(result.get(), 50);
        } else {
            EXPECT_TRUE(throws<mproc::PoolTerminated>([&] { result.get(); }));
        }
    }
    ASSERT_TRUE(map.wait(long_wait));
    if (!map.successful()) {
        EXPECT_TRUE(throws<mproc::PoolTerminated>([&] { map.get(); }));
    }
    // The stream outlives its pool: what ran, then PoolTerminated, then the end.
    bool ended = false;
    int terminated = 0;
    for (int i = 0; i < 200 && !ended; ++i) {
        try {
            std::optional<int> value = stream->next(long_wait);
            ended = !value.has_value();
            if (value) {
                EXPECT_EQ(*value, 10);
            }
        } catch (const mproc::PoolTerminated&) {
            ++terminated;
        }
    }
    EXPECT_TRUE(ended);
    EXPECT_GE(terminated, 1) << "50 items of 10 ms cannot all have run before the destructor";
}

TYPED_TEST(LifecycleTest, CloseLetsAnOpenImapStreamDeliverEveryResult) {
    TypeParam pool(2);
    const std::vector<int> input = range_vector(0, 100); // far more than the window
    auto ordered = pool.imap(square, input);
    auto unordered = pool.imap_unordered(negate, input, 3);
    Generator generator(0, 60);
    auto lazy = pool.imap(square, generator, 2);
    EXPECT_EQ(ordered.next(long_wait), std::optional<int>(0));
    pool.close();
    EXPECT_TRUE(throws<mproc::PoolNotRunning>([&] { pool.apply(square, 1); }));

    std::vector<int> rest = drain(ordered);
    rest.insert(rest.begin(), 0);
    EXPECT_EQ(rest, expected_map(square, input));
    std::vector<int> negated = drain(unordered);
    std::sort(negated.begin(), negated.end());
    EXPECT_EQ(negated, range_vector(-99, 1));
    EXPECT_EQ(drain(lazy), expected_map(square, range_vector(0, 60)));
    pool.join();
}

TYPED_TEST(LifecycleTest, CloseThenJoinWaitsForAnOpenStreamOnlyUpToWhatItSubmitted) {
    // join() while an imap stream is still reading its input: the stream yields what was
    // submitted, then PoolNotRunning, then the end; nothing hangs (an endless input included).
    TypeParam pool(2);
    auto stream = pool.imap(square, std::views::iota(0));
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(i * i));
    }
    pool.close();
    pool.join();
    int next = 3;
    const int window = static_cast<int>(grown_window_limit(pool.workers(), 1));
    bool refused = false;
    for (int i = 0; i < 2 * window + 10 && !refused; ++i) {
        try {
            std::optional<int> value = stream.next(long_wait);
            ASSERT_TRUE(value.has_value()) << "the stream ended without PoolNotRunning";
            EXPECT_EQ(*value, next * next);
            ++next;
        } catch (const mproc::PoolNotRunning&) {
            refused = true;
        }
    }
    EXPECT_TRUE(refused);
    EXPECT_LE(next, 3 + window) << "more results than could have been submitted";
    EXPECT_EQ(stream.next(long_wait), std::nullopt);

    // Also when nothing was consumed, and for imap_unordered.
    TypeParam other(2);
    auto untouched = other.imap_unordered(square, std::views::iota(0), 2);
    other.close();
    other.join();
    bool other_refused = false;
    for (int i = 0; i < 4 * window + 10 && !other_refused; ++i) {
        try {
            ASSERT_TRUE(untouched.next(long_wait).has_value());
        } catch (const mproc::PoolNotRunning&) {
            other_refused = true;
        }
    }
    EXPECT_TRUE(other_refused);
    EXPECT_EQ(untouched.next(long_wait), std::nullopt);
}

TYPED_TEST(LifecycleTest, ManyShortLivedPools) {
    for (int i = 0; i < 30; ++i) {
        TypeParam pool(2);
        EXPECT_EQ(pool.apply(square, i), i * i);
        auto result = pool.map_async(square, range_vector(0, 5));
        if (i % 3 == 0) {
            pool.close();
            pool.join();
            ASSERT_TRUE(result.wait(long_wait));
            EXPECT_EQ(result.get(), (std::vector<int>{0, 1, 4, 9, 16}));
        } else if (i % 3 == 1) {
            pool.terminate();
            pool.join();
            ASSERT_TRUE(result.wait(long_wait));
        }
    }
}

} // namespace
