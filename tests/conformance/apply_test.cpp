// SPDX-License-Identifier: MIT
// apply and apply_async: one call of f(args...) on a worker.

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

std::string concat(std::string a, const std::string& b, int times) {
    std::string out = std::move(a);
    for (int i = 0; i < times; ++i)
        out += b;
    return out;
}
std::vector<int> iota_vector(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i)
        v.push_back(i);
    return v;
}
int no_arguments() { return 42; }
void do_nothing(int) {}
void void_sleep(int ms) { sleep_ms(ms); }

/// A move-only argument type (serialisable, so that a process pool can move it across).
class MoveOnly {
  public:
    MoveOnly() = default;
    explicit MoveOnly(int value) : value_(value) {}
    MoveOnly(MoveOnly&&) noexcept = default;
    MoveOnly& operator=(MoveOnly&&) noexcept = default;
    MoveOnly(const MoveOnly&) = delete;
    MoveOnly& operator=(const MoveOnly&) = delete;
    int value() const { return value_; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value_);
    }

  private:
    int value_ = 0;
};

int unwrap(MoveOnly m) { return m.value() * 2; }
MoveOnly wrap(int x) { return MoveOnly(x + 1); }
int sum_unwrapped(MoveOnly a, MoveOnly b) { return a.value() + b.value(); }

template <class Pool>
class ApplyTest : public PoolTest {};
TYPED_TEST_SUITE(ApplyTest, PoolTypes);

TYPED_TEST(ApplyTest, ReturnsTheResult) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(add, 3, 4), 7);
    EXPECT_EQ(pool.apply(square, -5), 25);
}

TYPED_TEST(ApplyTest, PassesEveryArgumentAndReturnsAnyValueType) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(no_arguments), 42);
    EXPECT_EQ(pool.apply(concat, std::string("ab"), std::string("cd"), 3), "abcdcdcd");
    EXPECT_EQ(pool.apply(iota_vector, 5), (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(pool.apply([](int a, double b) { return a * b; }, 3, 0.5), 1.5);
}

TYPED_TEST(ApplyTest, BlocksUntilTheTaskHasRun) {
    TypeParam pool(1);
    const auto start = Clock::now();
    EXPECT_EQ(pool.apply(sleep_ms, 50), 50);
    EXPECT_GE(Clock::now() - start, 50ms);
}

TYPED_TEST(ApplyTest, VoidFunctionGivesMonostate) {
    TypeParam pool(2);
    auto value = pool.apply(do_nothing, 1);
    static_assert(std::is_same_v<decltype(value), std::monostate>);
    auto result = pool.apply_async(void_sleep, 10);
    static_assert(std::is_same_v<decltype(result), mproc::AsyncResult<std::monostate>>);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.successful());
    EXPECT_EQ(result.get(), std::monostate{});
}

TYPED_TEST(ApplyTest, MoveOnlyArgumentsAndResults) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(unwrap, MoveOnly(21)), 42);
    EXPECT_EQ(pool.apply(sum_unwrapped, MoveOnly(1), MoveOnly(2)), 3);
    MoveOnly arg(5);
    EXPECT_EQ(pool.apply(unwrap, std::move(arg)), 10);
    EXPECT_EQ(pool.apply(wrap, 6).value(), 7);

    auto result = pool.apply_async(unwrap, MoveOnly(4));
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), 8);
}

TYPED_TEST(ApplyTest, ApplyAsyncReturnsAtOnceWithAnAsyncResult) {
    TypeParam pool(1);
    mproc::AsyncResult<int> result = pool.apply_async(sleep_ms, 100);
    EXPECT_TRUE(result.valid());
    EXPECT_FALSE(result.ready()); // the task sleeps 100 ms; apply_async did not wait for it
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.ready());
    EXPECT_EQ(result.get(), 100);
}

TYPED_TEST(ApplyTest, ManyConcurrentApplyAsyncCallsEachGetTheirOwnResult) {
    TypeParam pool(3);
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < 50; ++i) {
        results.push_back(pool.apply_async(add, i, 1000));
    }
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(results[i].wait(long_wait)) << i;
        EXPECT_EQ(results[i].get(), i + 1000);
    }
}

TYPED_TEST(ApplyTest, SuccessCallbackRunsOnceWithTheValue) {
    TypeParam pool(2);
    int calls = 0;
    int seen = 0;
    auto result = pool.apply_async(mproc::on_success([&](int v) {
                                       ++calls;
                                       seen = v;
                                   }),
                                   add, 20, 22);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, 42);
    EXPECT_EQ(result.get(), 42);
}

TYPED_TEST(ApplyTest, ErrorCallbackRunsOnceWithTheError) {
    TypeParam pool(2);
    int calls = 0;
    std::string message;
    auto result = pool.apply_async(mproc::on_error([&](std::exception_ptr error) {
                                       ++calls;
                                       try {
                                           std::rethrow_exception(error);
                                       } catch (const std::runtime_error& e) {
                                           message = e.what();
                                       }
                                   }),
                                   fail_if_negative, -3);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(message, "bad item -3");
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(); }, "bad item -3"));
}

TYPED_TEST(ApplyTest, CallbackPairCallsOnlyTheMatchingHalf) {
    TypeParam pool(2);
    int successes = 0;
    int errors = 0;
    auto both = [&] {
        return mproc::callbacks([&](int) { ++successes; }, [&](std::exception_ptr) { ++errors; });
    };
    auto ok = pool.apply_async(both(), fail_if_negative, 1);
    ASSERT_TRUE(ok.wait(long_wait));
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(errors, 0);
    auto bad = pool.apply_async(both(), fail_if_negative, -1);
    ASSERT_TRUE(bad.wait(long_wait));
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(errors, 1);
}

TYPED_TEST(ApplyTest, BlockingApplyTakesCallbacksTooAndTheyHaveRunWhenItReturns) {
    TypeParam pool(2);
    int successes = 0;
    int errors = 0;
    int seen = 0;
    EXPECT_EQ(pool.apply(mproc::callbacks(
                             [&](int v) {
                                 sleep_ms(20); // a slow callback: apply must still wait for it
                                 seen = v;
                                 ++successes;
                             },
                             [&](std::exception_ptr) { ++errors; }),
                         add, 1, 2),
              3);
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(seen, 3);
    EXPECT_EQ(errors, 0);

    EXPECT_TRUE(throws_with<std::runtime_error>(
        [&] {
            pool.apply(mproc::on_error([&](std::exception_ptr) { ++errors; }), fail_if_negative,
                       -7);
        },
        "bad item -7"));
    EXPECT_EQ(errors, 1);
    EXPECT_EQ(pool.apply(mproc::on_success([&](int) { ++successes; }), square, 3), 9);
    EXPECT_EQ(successes, 2);
}

TYPED_TEST(ApplyTest, VoidFunctionSuccessCallbackGetsMonostate) {
    TypeParam pool(2);
    int calls = 0;
    auto result =
        pool.apply_async(mproc::on_success([&](const std::monostate&) { ++calls; }), do_nothing, 0);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(calls, 1);
}

TYPED_TEST(ApplyTest, ExceptionReachesTheCaller) {
    TypeParam pool(2);
    EXPECT_TRUE(
        throws_with<std::runtime_error>([&] { pool.apply(fail_if_negative, -1); }, "bad item -1"));
    // The pool is still fine after a failed task.
    EXPECT_EQ(pool.apply(fail_if_negative, 5), 5);
}

} // namespace
