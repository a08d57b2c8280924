// SPDX-License-Identifier: MIT
// Errors: task exceptions reach the caller with their type and message; map waits for every
// chunk and reports the first failure; invalid arguments throw std::invalid_argument.

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

static_assert(std::is_base_of_v<std::exception, mproc::Error>);
static_assert(std::is_base_of_v<mproc::Error, mproc::PoolNotRunning>);
static_assert(std::is_base_of_v<mproc::Error, mproc::PoolStillRunning>);
static_assert(std::is_base_of_v<mproc::Error, mproc::PoolTerminated>);
static_assert(std::is_base_of_v<mproc::Error, mproc::TimeoutError>);
static_assert(std::is_base_of_v<mproc::Error, mproc::ResultNotReady>);

enum Kind {
    kind_runtime_error,
    kind_out_of_range,
    kind_invalid_argument,
    kind_logic_error,
    kind_custom
};

/// Throws an exception of the kind asked, whose message names the kind.
int throw_kind(int kind) {
    switch (kind) {
    case kind_runtime_error:
        throw std::runtime_error("task threw runtime_error");
    case kind_out_of_range:
        throw std::out_of_range("task threw out_of_range");
    case kind_invalid_argument:
        throw std::invalid_argument("task threw invalid_argument");
    case kind_logic_error:
        throw std::logic_error("task threw logic_error");
    case kind_custom:
        throw CustomError("task threw CustomError");
    default:
        return kind;
    }
}
void throw_from_void(int kind) { throw_kind(kind); }
int throw_pair(int kind, int) { return throw_kind(kind); }

/// Whether `f()` throws the exception `throw_kind(kind)` throws, with its type and message. A
/// type of the program's own reaches the caller as itself (threads) or, from a pool whose workers
/// are other processes, as an mproc::Error that carries its message (DESIGN.md: RemoteError).
/// `f` is called once (it may consume a stream item).
template <class F>
::testing::AssertionResult throws_kind(F&& f, int kind) {
    std::exception_ptr error;
    try {
        f();
    } catch (...) {
        error = std::current_exception();
    }
    if (!error) {
        return ::testing::AssertionFailure() << "threw nothing";
    }
    auto rethrow = [&] { std::rethrow_exception(error); };
    switch (kind) {
    case kind_runtime_error:
        // Exactly runtime_error, not a subclass standing in for it (such as an mproc::Error).
        if (holds<mproc::Error>(error)) {
            return ::testing::AssertionFailure() << "got an mproc::Error: " << message_of(error);
        }
        return throws_with<std::runtime_error>(rethrow, "task threw runtime_error");
    case kind_out_of_range:
        return throws_with<std::out_of_range>(rethrow, "task threw out_of_range");
    case kind_invalid_argument:
        return throws_with<std::invalid_argument>(rethrow, "task threw invalid_argument");
    case kind_logic_error:
        if (holds<std::invalid_argument>(error) || holds<std::out_of_range>(error)) {
            return ::testing::AssertionFailure() << "logic_error came back as a subclass";
        }
        return throws_with<std::logic_error>(rethrow, "task threw logic_error");
    case kind_custom:
        if (holds<CustomError>(error)) {
            return throws_with<CustomError>(rethrow, "task threw CustomError");
        }
        return throws_with<mproc::Error>(rethrow, "task threw CustomError");
    default:
        return ::testing::AssertionFailure() << "bad kind";
    }
}

template <class Pool>
class ErrorsTest : public PoolTest {};
TYPED_TEST_SUITE(ErrorsTest, PoolTypes);

TYPED_TEST(ErrorsTest, ApplyAndGetRethrowTheTasksException) {
    TypeParam pool(2);
    for (int kind : {kind_runtime_error, kind_out_of_range, kind_invalid_argument, kind_logic_error,
                     kind_custom}) {
        SCOPED_TRACE("kind " + std::to_string(kind));
        EXPECT_TRUE(throws_kind([&] { pool.apply(throw_kind, kind); }, kind));
        EXPECT_TRUE(throws_kind([&] { pool.apply(throw_from_void, kind); }, kind));
        auto result = pool.apply_async(throw_kind, kind);
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_FALSE(result.successful());
        EXPECT_TRUE(throws_kind([&] { result.get(); }, kind));
        EXPECT_TRUE(throws_kind([&] { result.get(long_wait); }, kind));
    }
}

TYPED_TEST(ErrorsTest, MapRethrowsTheTasksException) {
    TypeParam pool(2);
    for (int kind : {kind_runtime_error, kind_out_of_range, kind_invalid_argument, kind_logic_error,
                     kind_custom}) {
        SCOPED_TRACE("kind " + std::to_string(kind));
        const std::vector<int> input{10, 11, kind, 12};
        EXPECT_TRUE(throws_kind([&] { pool.map(throw_kind, input); }, kind));
        EXPECT_TRUE(throws_kind([&] { pool.map(throw_kind, input, 3); }, kind));
        EXPECT_TRUE(throws_kind(
            [&] {
                pool.starmap(throw_pair, std::vector<std::pair<int, int>>{{kind, 0}});
            },
            kind));
        auto result = pool.map_async(throw_kind, input, 1);
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_FALSE(result.successful());
        EXPECT_TRUE(throws_kind([&] { result.get(); }, kind));
    }
}

TYPED_TEST(ErrorsTest, ImapItemRethrowsTheTasksException) {
    TypeParam pool(2);
    const std::vector<int> kinds{kind_runtime_error, kind_out_of_range, kind_invalid_argument,
                                 kind_logic_error, kind_custom};
    for (std::ptrdiff_t chunksize : {1, 5}) {
        auto stream = pool.imap(throw_kind, kinds, chunksize);
        for (int kind : kinds) {
            EXPECT_TRUE(throws_kind([&] { stream.next(long_wait); }, kind)) << kind;
        }
        EXPECT_EQ(stream.next(long_wait), std::nullopt);
    }
}

TYPED_TEST(ErrorsTest, MapWaitsForEveryChunkEvenWhenOneFails) {
    // The failing item is first and fast; the others are slow. Python does not fail fast: map
    // returns (throws) only after the slow chunks ran, so it takes at least their time.
    TypeParam pool(2);
    const std::vector<int> input{-1, 150, 150, 150};
    const auto start = Clock::now();
    EXPECT_TRUE(throws_with<std::runtime_error>(
        [&] { pool.map(sleep_then_fail_if_negative, input, 1); }, "bad item -1"));
    EXPECT_GE(Clock::now() - start, 150ms) << "map threw before the other chunks had run";

    const auto async_start = Clock::now();
    auto result = pool.map_async(sleep_then_fail_if_negative, input, 1);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_GE(Clock::now() - async_start, 150ms) << "map_async ended before every chunk ran";
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(); }, "bad item -1"));
}

TYPED_TEST(ErrorsTest, MapThrowsTheFirstFailureThatArrived) {
    // Two failures: the one later in the input fails first (Python keeps the first that arrives).
    TypeParam pool(2);
    const std::vector<int> input{-150, -1, 0, 1};
    EXPECT_TRUE(throws_with<std::runtime_error>(
        [&] { pool.map(sleep_then_fail_if_negative, input, 1); }, "bad item -1"));

    TypeParam fresh(2); // both workers idle, whatever the map above left running
    int successes = 0;
    int errors = 0;
    std::string message;
    Clock::duration callback_after{};
    const auto start = Clock::now();
    auto result = fresh.map_async(sleep_then_fail_if_negative, input, 1,
                                  mproc::callbacks([&](const auto&) { ++successes; },
                                                   [&](std::exception_ptr e) {
                                                       ++errors;
                                                       message = message_of(e);
                                                       callback_after = Clock::now() - start;
                                                   }));
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(successes, 0);
    EXPECT_EQ(errors, 1);
    EXPECT_EQ(message, "bad item -1");
    EXPECT_GE(callback_after, 150ms) << "the error callback ran before every chunk had run";
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { result.get(); }, "bad item -1"));
}

TYPED_TEST(ErrorsTest, APoolSurvivesFailingTasks) {
    TypeParam pool(2);
    for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(throws<std::runtime_error>([&] { pool.apply(fail_if_negative, -1); }));
    }
    EXPECT_EQ(pool.map(fail_if_negative, range_vector(0, 50)), range_vector(0, 50));
}

TYPED_TEST(ErrorsTest, ChunksizeMustBePositiveForEveryCall) {
    TypeParam pool(2);
    const std::vector<int> input{1, 2, 3};
    const std::vector<int> empty;
    const std::vector<std::pair<int, int>> pairs{{1, 2}};
    int callback_calls = 0;
    auto count = [&] {
        return mproc::callbacks([&](const auto&) { ++callback_calls; },
                                [&](std::exception_ptr) { ++callback_calls; });
    };
    auto invalid = [](auto&& call) {
        return throws_with<std::invalid_argument>(call, "chunksize");
    };
    for (std::ptrdiff_t bad : {0, -1, -50}) {
        SCOPED_TRACE("chunksize " + std::to_string(bad));
        EXPECT_TRUE(invalid([&] { pool.map(square, input, bad); }));
        EXPECT_TRUE(invalid([&] { pool.map(square, empty, bad); }));
        EXPECT_TRUE(invalid([&] { pool.map(square, Generator(0, 3), bad); }));
        EXPECT_TRUE(invalid([&] { pool.map_async(square, input, bad); }));
        EXPECT_TRUE(invalid([&] { pool.map_async(square, input, bad, count()); }));
        EXPECT_TRUE(invalid([&] { pool.starmap(add, pairs, bad); }));
        EXPECT_TRUE(invalid([&] { pool.starmap_async(add, pairs, bad); }));
        EXPECT_TRUE(invalid([&] { pool.starmap_async(add, pairs, bad, count()); }));
        EXPECT_TRUE(invalid([&] { pool.imap(square, input, bad); }));
        EXPECT_TRUE(invalid([&] { pool.imap(square, std::views::iota(0), bad); }));
        EXPECT_TRUE(invalid([&] { pool.imap_unordered(square, input, bad); }));
        EXPECT_TRUE(invalid([&] { pool.imap_unordered(square, empty, bad); }));
    }
    EXPECT_TRUE(throws_with<std::invalid_argument>([&] { pool.map(square, input, -5); }, "-5"));
    EXPECT_EQ(callback_calls, 0);
    // Nothing was half-submitted: the pool works and closes cleanly.
    EXPECT_EQ(pool.map(square, input, 1), (std::vector<int>{1, 4, 9}));
    pool.close();
    pool.join();
}

} // namespace
