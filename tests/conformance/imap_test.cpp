// SPDX-License-Identifier: MIT
// imap and imap_unordered: lazily read input, results streamed in input or completion order.

#include <algorithm>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

thread_local int items_run_here = 0; // per worker: how many count_and_sleep items it ran

/// Counts the item in its worker, sleeps `ms`, returns `ms`.
int count_and_sleep(int ms) {
    ++items_run_here;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
int items_run_by_this_worker(int) { return items_run_here; }
std::string to_text(int x) { return std::to_string(x); }

static_assert(std::ranges::input_range<mproc::ResultStream<int>>);

template <class Pool>
class IMapTest : public PoolTest {};
TYPED_TEST_SUITE(IMapTest, PoolTypes);

TYPED_TEST(IMapTest, ImapYieldsResultsInInputOrder) {
    TypeParam pool(3);
    const std::vector<int> input = range_vector(-20, 80);
    for (std::ptrdiff_t chunksize : {1, 3, 100, 1000}) {
        std::vector<int> out;
        for (int r : pool.imap(square, input, chunksize)) {
            out.push_back(r);
        }
        EXPECT_EQ(out, expected_map(square, input)) << "chunksize " << chunksize;
    }
}

TYPED_TEST(IMapTest, ImapKeepsInputOrderWhenLaterItemsFinishFirst) {
    TypeParam pool(4);
    const std::vector<int> input{60, 0, 40, 0, 20, 0};
    auto stream = pool.imap(sleep_ms, input);
    EXPECT_EQ(drain(stream), input);
}

TYPED_TEST(IMapTest, ImapUnorderedYieldsEveryResultExactlyOnce) {
    TypeParam pool(3);
    const std::vector<int> input = range_vector(0, 200);
    for (std::ptrdiff_t chunksize : {1, 4, 1000}) {
        auto stream = pool.imap_unordered(negate, input, chunksize);
        std::vector<int> out = drain(stream);
        std::sort(out.begin(), out.end());
        std::vector<int> expected = expected_map(negate, input);
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(out, expected) << "chunksize " << chunksize;
    }
}

TYPED_TEST(IMapTest, ImapUnorderedYieldsInCompletionOrder) {
    TypeParam pool(2);
    const std::vector<int> input{150, 0, 0, 0, 0, 0, 0, 0};
    auto stream = pool.imap_unordered(sleep_ms, input);
    const std::vector<int> out = drain(stream);
    ASSERT_EQ(out.size(), input.size());
    EXPECT_EQ(out.back(), 150) << "the slow first item must come last";
    EXPECT_EQ(out.front(), 0);

    // imap, in contrast, waits for it.
    auto ordered = pool.imap(sleep_ms, input);
    EXPECT_EQ(drain(ordered), input);
}

TYPED_TEST(IMapTest, RangeForAndIterators) {
    TypeParam pool(2);
    int sum = 0;
    for (int r : pool.imap_unordered(square, range_vector(0, 10))) {
        sum += r;
    }
    EXPECT_EQ(sum, 285);

    std::vector<std::string> texts;
    auto stream = pool.imap(to_text, std::vector<int>{7, 8, 9});
    for (auto it = stream.begin(); it != stream.end(); ++it) {
        texts.push_back(*it);
        EXPECT_EQ(it->size(), 1u);
    }
    EXPECT_EQ(texts, (std::vector<std::string>{"7", "8", "9"}));
}

TYPED_TEST(IMapTest, NextReturnsAnEmptyOptionalAtTheEnd) {
    TypeParam pool(2);
    auto stream = pool.imap(square, std::vector<int>{2, 3});
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(4));
    EXPECT_EQ(stream.next(), std::optional<int>(9));
    EXPECT_EQ(stream.next(), std::nullopt);
    EXPECT_EQ(stream.next(long_wait), std::nullopt); // and stays at the end
}

TYPED_TEST(IMapTest, EmptyInputEndsAtOnceWithoutCallingF) {
    TypeParam pool(2);
    // never_called throws: a call would show up as an error instead of the end.
    auto stream = pool.imap(never_called, std::vector<int>{});
    EXPECT_EQ(stream.next(long_wait), std::nullopt);
    auto unordered = pool.imap_unordered(never_called, Generator(0, 0), 3);
    EXPECT_EQ(unordered.next(long_wait), std::nullopt);
    int iterations = 0;
    for (int r : pool.imap(never_called, std::vector<int>{})) {
        iterations += 1 + r;
    }
    EXPECT_EQ(iterations, 0);
}

TYPED_TEST(IMapTest, NextWithTimeoutThrowsOnASlowTaskAndTheStreamStaysUsable) {
    TypeParam pool(2);
    auto stream = pool.imap(sleep_ms, std::vector<int>{200, 0});
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { stream.next(10ms); }));
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(200));
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(0));
    EXPECT_EQ(stream.next(long_wait), std::nullopt);

    auto unordered = pool.imap_unordered(sleep_ms, std::vector<int>{200});
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { unordered.next(10ms); }));
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { unordered.next(0ms); }));
    EXPECT_EQ(unordered.next(long_wait), std::optional<int>(200));
    EXPECT_EQ(unordered.next(long_wait), std::nullopt);
}

TYPED_TEST(IMapTest, InfiniteInputTakingTheFirstResults) {
    TypeParam pool(2);
    std::vector<int> out;
    for (int r : pool.imap(square, std::views::iota(0))) {
        out.push_back(r);
        if (out.size() == 100) {
            break;
        }
    }
    EXPECT_EQ(out, expected_map(square, range_vector(0, 100)));

    // Unordered: 50 distinct results, all from the start of the input (it is read lazily, at
    // most as far ahead as the largest default window).
    const int window = static_cast<int>(grown_window_limit(pool.workers(), 2));
    std::set<int> seen;
    for (int r : pool.imap_unordered(negate, std::views::iota(0), 2)) {
        seen.insert(r);
        if (seen.size() == 50) {
            break;
        }
    }
    EXPECT_EQ(seen.size(), 50u);
    EXPECT_GT(*seen.begin(), -(50 + window * 2)) << "read far ahead of the consumer";
}

TYPED_TEST(IMapTest, InputIsReadLazilyWithABoundedWindow) {
    TypeParam pool(2);
    const int window_items = static_cast<int>(grown_window_limit(pool.workers(), 3)) * 3;
    Generator input(0, 1'000'000);
    auto stream = pool.imap(square, input, 3);
    EXPECT_LE(input.position(), window_items + 1) << "imap read too far ahead";
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(i * i));
    }
    EXPECT_LE(input.position(), 10 + window_items + 3) << "imap read too far ahead";
    EXPECT_GE(input.position(), 10);
}

/// Takes one result of a stream whose items are slow, then leaves: the chunks not yet started
/// must not run, and the pool must take the next call. One worker, so its per-worker count of
/// items run covers the whole stream.
template <class Pool>
void leave_early(bool unordered) {
    Pool pool(1);
    std::vector<int> input(40, 100);
    input[0] = 0;
    {
        auto stream = unordered ? pool.imap_unordered(count_and_sleep, input)
                                : pool.imap(count_and_sleep, input);
        for (int r : stream) {
            EXPECT_EQ(r, 0);
            break;
        }
    }
    auto next_call = pool.apply_async(items_run_by_this_worker, 0);
    ASSERT_TRUE(next_call.wait(long_wait));
    // Item 0, and at most item 1, which was running when the stream was left; every other
    // submitted chunk (the window is larger) was dropped.
    static_assert(mproc::stream_chunks_per_worker > 2);
    EXPECT_GE(next_call.get(), 1);
    EXPECT_LE(next_call.get(), 2);
    // And the pool is fully usable.
    EXPECT_EQ(pool.map(square, range_vector(0, 5)), (std::vector<int>{0, 1, 4, 9, 16}));
    auto stream = pool.imap(square, range_vector(0, 5));
    EXPECT_EQ(drain(stream), (std::vector<int>{0, 1, 4, 9, 16}));
}

TYPED_TEST(IMapTest, LeavingImapEarlyLeavesThePoolUsableAtOnce) { leave_early<TypeParam>(false); }

TYPED_TEST(IMapTest, LeavingImapUnorderedEarlyLeavesThePoolUsableAtOnce) {
    leave_early<TypeParam>(true);
}

TYPED_TEST(IMapTest, DroppingAnUnreadStreamLeavesThePoolUsable) {
    TypeParam pool(2);
    for (int i = 0; i < 20; ++i) {
        auto stream = pool.imap(sleep_ms, std::vector<int>(10, 1));
    }
    EXPECT_EQ(pool.apply(square, 4), 16);
}

/// Python's test_imap_handle_iterable_exception: when reading the input throws at item k, the
/// consumer gets the results before k, then that exception, then the end.
TYPED_TEST(IMapTest, InputThatThrowsAtItemK) {
    TypeParam pool(2);
    for (std::ptrdiff_t chunksize : {1, 2, 3, 10}) {
        SCOPED_TRACE("chunksize " + std::to_string(chunksize));
        auto stream = pool.imap(square, Generator(0, 10, /*throw_at=*/5), chunksize);
        for (int i = 0; i < 5; ++i) {
            EXPECT_EQ(stream.next(long_wait), std::optional<int>(i * i));
        }
        EXPECT_TRUE(
            throws_with<std::out_of_range>([&] { stream.next(long_wait); }, "input failed at 5"));
        EXPECT_EQ(stream.next(long_wait), std::nullopt);
        EXPECT_EQ(stream.next(long_wait), std::nullopt);
    }
    // Unordered: the results before k in any order, then the exception, then the end.
    for (std::ptrdiff_t chunksize : {1, 2}) {
        SCOPED_TRACE("unordered, chunksize " + std::to_string(chunksize));
        auto stream = pool.imap_unordered(square, Generator(0, 10, 5), chunksize);
        std::vector<int> before;
        for (int i = 0; i < 5; ++i) {
            std::optional<int> value = stream.next(long_wait);
            ASSERT_TRUE(value.has_value());
            before.push_back(*value);
        }
        std::sort(before.begin(), before.end());
        EXPECT_EQ(before, (std::vector<int>{0, 1, 4, 9, 16}));
        EXPECT_TRUE(
            throws_with<std::out_of_range>([&] { stream.next(long_wait); }, "input failed at 5"));
        EXPECT_EQ(stream.next(long_wait), std::nullopt);
    }
    // Failing on the very first item.
    auto first = pool.imap(square, Generator(0, 10, 0));
    EXPECT_TRUE(throws<std::out_of_range>([&] { first.next(long_wait); }));
    EXPECT_EQ(first.next(long_wait), std::nullopt);
}

TYPED_TEST(IMapTest, InputThatThrowsSeenThroughRangeFor) {
    TypeParam pool(2);
    std::vector<int> seen;
    EXPECT_TRUE(throws_with<std::out_of_range>(
        [&] {
            for (int r : pool.imap(square, Generator(0, 10, 3))) {
                seen.push_back(r);
            }
        },
        "input failed at 3"));
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 4}));
}

/// A task that throws at item k: that item throws when fetched, and iteration goes on to k+1.
TYPED_TEST(IMapTest, TaskThatThrowsAtItemK) {
    TypeParam pool(2);
    const std::vector<int> input{0, 1, -2, 3, 4};
    for (std::ptrdiff_t chunksize : {1, 2, 5}) {
        SCOPED_TRACE("chunksize " + std::to_string(chunksize));
        auto stream = pool.imap(fail_if_negative, input, chunksize);
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(0));
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(1));
        EXPECT_TRUE(
            throws_with<std::runtime_error>([&] { stream.next(long_wait); }, "bad item -2"));
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(3));
        EXPECT_EQ(stream.next(long_wait), std::optional<int>(4));
        EXPECT_EQ(stream.next(long_wait), std::nullopt);
    }

    // Through iterators: dereferencing the failed item throws; ++ moves past it.
    auto stream = pool.imap(fail_if_negative, input, 2);
    auto it = stream.begin();
    ASSERT_TRUE(it != stream.end());
    EXPECT_EQ(*it, 0);
    ++it;
    EXPECT_EQ(*it, 1);
    ++it;
    ASSERT_TRUE(it != stream.end());
    EXPECT_TRUE(throws_with<std::runtime_error>([&] { (void)*it; }, "bad item -2"));
    ++it;
    ASSERT_TRUE(it != stream.end());
    EXPECT_EQ(*it, 3);
    ++it;
    EXPECT_EQ(*it, 4);
    ++it;
    EXPECT_TRUE(it == stream.end());

    // Unordered: every other result, and the one error, each once.
    auto unordered = pool.imap_unordered(fail_if_negative, std::vector<int>{-1, 5, -6, 7}, 1);
    std::vector<int> values;
    int errors = 0;
    for (int i = 0; i < 4; ++i) {
        try {
            std::optional<int> value = unordered.next(long_wait);
            ASSERT_TRUE(value.has_value());
            values.push_back(*value);
        } catch (const std::runtime_error& e) {
            EXPECT_EQ(std::string(e.what()).rfind("bad item -", 0), 0u) << e.what();
            ++errors;
        }
    }
    std::sort(values.begin(), values.end());
    EXPECT_EQ(values, (std::vector<int>{5, 7}));
    EXPECT_EQ(errors, 2);
    EXPECT_EQ(unordered.next(long_wait), std::nullopt);
}

TYPED_TEST(IMapTest, RvalueAndLvalueInputs) {
    TypeParam pool(2);
    std::vector<int> lvalue = range_vector(0, 7);
    auto from_lvalue = pool.imap(square, lvalue, 2);
    EXPECT_EQ(drain(from_lvalue), expected_map(square, lvalue));
    auto from_rvalue = pool.imap(square, range_vector(0, 7), 2);
    EXPECT_EQ(drain(from_rvalue), expected_map(square, lvalue));
    auto from_view = pool.imap(negate, std::views::iota(3, 6));
    EXPECT_EQ(drain(from_view), (std::vector<int>{-3, -4, -5}));
}

TYPED_TEST(IMapTest, StreamsCanBeMovedAndInterleaved) {
    TypeParam pool(2);
    auto a = pool.imap(square, range_vector(0, 30));
    auto b = pool.imap_unordered(negate, range_vector(0, 30));
    std::vector<int> from_a;
    std::vector<int> from_b;
    for (int i = 0; i < 30; ++i) {
        from_a.push_back(*a.next(long_wait));
        from_b.push_back(*b.next(long_wait));
    }
    mproc::ResultStream<int> moved = std::move(a);
    EXPECT_EQ(moved.next(long_wait), std::nullopt);
    EXPECT_EQ(from_a, expected_map(square, range_vector(0, 30)));
    std::sort(from_b.begin(), from_b.end());
    EXPECT_EQ(from_b, range_vector(-29, 1));
}

} // namespace
