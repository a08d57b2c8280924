// SPDX-License-Identifier: MIT
// AsyncResult: get, get(timeout), wait, wait(timeout), ready, successful.

#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

static_assert(std::is_base_of_v<mproc::Error, mproc::TimeoutError>);
static_assert(std::is_base_of_v<mproc::Error, mproc::ResultNotReady>);
static_assert(!std::is_copy_constructible_v<mproc::AsyncResult<int>>);
static_assert(std::is_nothrow_move_constructible_v<mproc::AsyncResult<int>>);

template <class Pool>
class AsyncResultTest : public PoolTest {};
TYPED_TEST_SUITE(AsyncResultTest, PoolTypes);

TYPED_TEST(AsyncResultTest, GetReturnsTheValueAnyNumberOfTimes) {
    TypeParam pool(2);
    auto result = pool.apply_async(square, 12);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), 144);
    EXPECT_EQ(result.get(), 144);
    EXPECT_EQ(result.get(0ms), 144);
    EXPECT_EQ(std::move(result).get(), 144);
}

TYPED_TEST(AsyncResultTest, GetWithTimeoutThrowsWhenNotReadyAndALaterGetReturnsTheValue) {
    TypeParam pool(1);
    auto result = pool.apply_async(sleep_ms, 200);
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { result.get(10ms); }));
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { result.get(0ms); }));
    EXPECT_TRUE(throws<mproc::Error>([&] { result.get(std::chrono::microseconds(1)); }));
    EXPECT_EQ(result.get(long_wait), 200); // the call went on
    EXPECT_EQ(result.get(), 200);

    auto moved_out = pool.apply_async(sleep_ms, 100);
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { std::move(moved_out).get(5ms); }));
    EXPECT_EQ(std::move(moved_out).get(long_wait), 100);
}

TYPED_TEST(AsyncResultTest, GetWithTimeoutWaitsUpToTheTimeout) {
    TypeParam pool(1);
    auto result = pool.apply_async(sleep_ms, 300);
    const auto start = Clock::now();
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { result.get(50ms); }));
    EXPECT_GE(Clock::now() - start, 50ms);
    ASSERT_TRUE(result.wait(long_wait));
}

TYPED_TEST(AsyncResultTest, HugeTimeoutsMeanWaitForEver) {
    TypeParam pool(1);
    auto result = pool.apply_async(sleep_ms, 20);
    EXPECT_EQ(result.get(std::chrono::hours::max()), 20);
    auto other = pool.apply_async(sleep_ms, 20);
    EXPECT_TRUE(other.wait(std::chrono::nanoseconds::max()));
    EXPECT_TRUE(other.wait(std::chrono::duration<double>(1e300)));
}

TYPED_TEST(AsyncResultTest, WaitWithTimeoutReturnsFalseThenTrue) {
    TypeParam pool(1);
    auto result = pool.apply_async(sleep_ms, 200);
    EXPECT_FALSE(result.wait(10ms));
    EXPECT_FALSE(result.wait(0ms));
    EXPECT_FALSE(result.ready());
    EXPECT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.ready());
    EXPECT_TRUE(result.wait(0ms));
    result.wait(); // ready: returns at once
    EXPECT_EQ(result.get(), 200);
}

TYPED_TEST(AsyncResultTest, ReadyIsFalseUntilTheCallEnds) {
    TypeParam pool(1);
    auto slow = pool.apply_async(sleep_ms, 150);
    auto queued = pool.apply_async(square, 3); // behind the slow one on the only worker
    EXPECT_FALSE(slow.ready());
    EXPECT_FALSE(queued.ready());
    ASSERT_TRUE(queued.wait(long_wait));
    EXPECT_TRUE(slow.ready()); // one worker, FIFO: the slow one ended first
    EXPECT_TRUE(queued.ready());
    auto failing = pool.apply_async(fail_if_negative, -1);
    ASSERT_TRUE(failing.wait(long_wait));
    EXPECT_TRUE(failing.ready()); // an error is an end too
}

TYPED_TEST(AsyncResultTest, SuccessfulThrowsBeforeReadyThenTellsValueFromError) {
    TypeParam pool(2);
    auto ok = pool.apply_async(sleep_ms, 150);
    EXPECT_TRUE(throws<mproc::ResultNotReady>([&] { (void)ok.successful(); }));
    ASSERT_TRUE(ok.wait(long_wait));
    EXPECT_TRUE(ok.successful());

    auto bad = pool.apply_async(sleep_then_fail_if_negative, -150);
    EXPECT_TRUE(throws<mproc::ResultNotReady>([&] { (void)bad.successful(); }));
    ASSERT_TRUE(bad.wait(long_wait));
    EXPECT_FALSE(bad.successful());

    auto map_bad = pool.map_async(fail_if_negative, std::vector<int>{1, -1});
    ASSERT_TRUE(map_bad.wait(long_wait));
    EXPECT_FALSE(map_bad.successful());
    auto map_ok = pool.map_async(fail_if_negative, std::vector<int>{1, 2});
    ASSERT_TRUE(map_ok.wait(long_wait));
    EXPECT_TRUE(map_ok.successful());
}

TYPED_TEST(AsyncResultTest, AFailedResultThrowsFromEveryGet) {
    TypeParam pool(2);
    auto result = pool.apply_async(fail_if_negative, -4);
    ASSERT_TRUE(result.wait(long_wait));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(); }, "bad item -4"));
        EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(long_wait); }, "bad item -4"));
    }
}

TYPED_TEST(AsyncResultTest, ValidityOfDefaultAndMovedFromHandles) {
    TypeParam pool(2);
    mproc::AsyncResult<int> empty;
    EXPECT_FALSE(empty.valid());
    auto result = pool.apply_async(square, 5);
    EXPECT_TRUE(result.valid());
    mproc::AsyncResult<int> moved = std::move(result);
    EXPECT_TRUE(moved.valid());
    EXPECT_FALSE(result.valid()); // NOLINT(bugprone-use-after-move): the documented state
    empty = std::move(moved);
    EXPECT_TRUE(empty.valid());
    EXPECT_EQ(empty.get(long_wait), 25);
}

TYPED_TEST(AsyncResultTest, ResultsOutliveTheirPool) {
    mproc::AsyncResult<int> result;
    mproc::AsyncResult<std::vector<int>> vector;
    {
        TypeParam pool(2);
        result = pool.apply_async(square, 6);
        vector = pool.map_async(square, range_vector(0, 4));
        ASSERT_TRUE(result.wait(long_wait));
        ASSERT_TRUE(vector.wait(long_wait));
    }
    EXPECT_TRUE(result.ready());
    EXPECT_EQ(result.get(), 36);
    EXPECT_EQ(vector.get(), (std::vector<int>{0, 1, 4, 9}));
}

} // namespace
