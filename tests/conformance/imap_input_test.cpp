// SPDX-License-Identifier: MIT
// imap's input side: any input range, read only as workers need it, never further ahead of the
// consumer than `buffersize` chunks (backpressure).

#include <algorithm>
#include <cstddef>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"
#include "mproc/detail/stream_window.hpp"

namespace {

using namespace conformance;

int length(const std::string& word) { return static_cast<int>(word.size()); }

template <class Pool>
class IMapInputTest : public PoolTest {};
TYPED_TEST_SUITE(IMapInputTest, PoolTypes);

/// The read-ahead bound, checked at every step of a whole run: at most `buffersize * chunksize`
/// items have been read and not yet handed to the consumer. The window is filled when the call
/// starts, so right after it the input has been read exactly that far.
TYPED_TEST(IMapInputTest, BuffersizeBoundsTheItemsReadAheadOfTheConsumer) {
    TypeParam pool(2);
    for (bool unordered : {false, true}) {
        for (std::ptrdiff_t chunksize : {1, 3}) {
            for (std::ptrdiff_t buffersize : {1, 2, 5}) {
                SCOPED_TRACE(testing::Message() << "unordered " << unordered << ", chunksize "
                                                << chunksize << ", buffersize " << buffersize);
                const int bound = static_cast<int>(chunksize * buffersize);
                Generator input(0, 100);
                auto stream = unordered ? pool.imap_unordered(square, input, chunksize, buffersize)
                                        : pool.imap(square, input, chunksize, buffersize);
                EXPECT_EQ(input.items_read(), bound);
                // After the consumer receives its k-th result (k from 0), the input may have
                // been read up to item k + bound - 1.
                int most_ahead = 0;
                std::vector<int> out;
                while (std::optional<int> value = stream.next(long_wait)) {
                    const int k = static_cast<int>(out.size());
                    most_ahead = std::max(most_ahead, input.items_read() - k);
                    out.push_back(*value);
                }
                EXPECT_EQ(most_ahead, bound);
                if (unordered) {
                    std::sort(out.begin(), out.end());
                }
                EXPECT_EQ(out, expected_map(square, range_vector(0, 100)));
            }
        }
    }
}

TYPED_TEST(IMapInputTest, TheDefaultBuffersizeIsAFewChunksPerWorker) {
    TypeParam pool(3);
    EXPECT_EQ(pool.default_buffersize(), mproc::stream_chunks_per_worker * 3);
    Generator input(0, 1'000'000);
    auto stream = pool.imap(square, input, 2);
    EXPECT_EQ(input.items_read(), static_cast<int>(pool.default_buffersize() * 2));
}

/// Without a buffersize the window may grow while results come back fast (trivial items do),
/// but never past its documented limit: the read-ahead stays bounded at every step.
TYPED_TEST(IMapInputTest, TheDefaultWindowGrowsNoFurtherThanItsLimit) {
    TypeParam pool(2);
    for (bool unordered : {false, true}) {
        for (std::size_t chunksize : {1u, 5u}) {
            SCOPED_TRACE(testing::Message()
                         << "unordered " << unordered << ", chunksize " << chunksize);
            const int bound = static_cast<int>(grown_window_limit(2, chunksize) * chunksize);
            Generator input(0, 4000);
            const auto size = static_cast<std::ptrdiff_t>(chunksize);
            auto stream = unordered ? pool.imap_unordered(square, input, size)
                                    : pool.imap(square, input, size);
            int most_ahead = 0;
            int received = 0;
            while (std::optional<int> value = stream.next(long_wait)) {
                most_ahead = std::max(most_ahead, input.items_read() - received);
                ++received;
            }
            EXPECT_EQ(received, 4000);
            EXPECT_LE(most_ahead, bound);
            EXPECT_GE(most_ahead, static_cast<int>(pool.default_buffersize() * chunksize));
        }
    }
}

/// Refills wait for half the window to be free, but never while a worker has nothing queued:
/// with a buffersize of workers + 1, once the first result's slot is free (when the consumer
/// asks for the next one) at most the workers' two chunks are in flight, so that one slot is
/// refilled at once rather than when a second one frees.
TYPED_TEST(IMapInputTest, ARefillDoesNotWaitForHalfTheWindowWhileAWorkerWouldIdle) {
    TypeParam pool(2);
    Generator input(100, 1000); // each item sleeps that many ms
    auto stream = pool.imap(sleep_ms, input, 1, 3);
    EXPECT_EQ(input.items_read(), 3);
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(100));
    EXPECT_EQ(input.items_read(), 3) << "the consumer still holds the first result's slot";
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(101));
    EXPECT_EQ(input.items_read(), 4) << "the first result's slot was not refilled at once";
}

/// The growth rule itself (stream_window.hpp), without timing: a window doubles after results
/// that came back faster than one per stream_fast_result_interval, up to its limit; a fixed
/// window (a user's buffersize) never grows.
TEST(StreamWindowTest, GrowsOnlyAfterFastResultsAndOnlyUpToItsLimit) {
    using mproc::detail::stream_fast_result_interval;
    using mproc::detail::StreamWindow;
    const StreamWindow window = StreamWindow::growing(2, 1, 16);
    EXPECT_EQ(window.initial, mproc::stream_chunks_per_worker * 2);
    EXPECT_EQ(window.limit, mproc::stream_max_chunks_per_worker * 2);
    const auto fast = stream_fast_result_interval / 2;
    const auto slow = stream_fast_result_interval * 2;
    EXPECT_EQ(window.next(8, 4 * fast, 4), 16u);
    EXPECT_EQ(window.next(8, 4 * slow, 4), 8u);
    EXPECT_EQ(window.next(8, fast, 0), 8u) << "nothing came back: nothing measured";
    EXPECT_EQ(window.next(100, 4 * fast, 4), window.limit);
    EXPECT_EQ(window.next(window.limit, 4 * fast, 4), window.limit);

    const StreamWindow fixed = StreamWindow::fixed(5, 2);
    EXPECT_EQ(fixed.next(5, 4 * fast, 4), 5u);

    // The limit in items, whatever the chunksize; and in bytes for large item slots.
    EXPECT_EQ(StreamWindow::growing(64, 1, 16).limit, mproc::stream_max_grown_items);
    EXPECT_EQ(StreamWindow::growing(2, 100, 16).limit, mproc::stream_max_grown_items / 100);
    EXPECT_EQ(StreamWindow::growing(2, 1, std::size_t{1} << 20).limit, window.initial)
        << "a window never starts above its limit, nor shrinks to below its start";
}

/// The consumer stops taking results: every chunk in the window finishes, yet the input is not
/// read further until the consumer takes the next result.
TYPED_TEST(IMapInputTest, ASlowConsumerStopsTheInputFromBeingRead) {
    TypeParam pool(2);
    Generator input(0, 1'000'000);
    auto stream = pool.imap_unordered(square, input, 1, 4);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(stream.next(long_wait).has_value());
    }
    const int read = input.items_read();
    EXPECT_LE(read, 3 + 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the window's tasks all end
    EXPECT_EQ(input.items_read(), read);
    ASSERT_TRUE(stream.next(long_wait).has_value());
    EXPECT_LE(input.items_read(), 4 + 4);
}

TYPED_TEST(IMapInputTest, ABuffersizeBelowOneIsRefused) {
    TypeParam pool(2);
    for (std::ptrdiff_t buffersize : {0, -1}) {
        EXPECT_TRUE(throws_with<std::invalid_argument>(
            [&] { pool.imap(square, range_vector(0, 3), 1, buffersize); }, "buffersize"));
        EXPECT_TRUE(throws_with<std::invalid_argument>(
            [&] { pool.imap_unordered(square, range_vector(0, 3), 1, buffersize); }, "buffersize"));
    }
    EXPECT_EQ(pool.apply(square, 3), 9); // the pool is untouched
}

/// Words read from a stream as they are needed: `std::views::istream` is a single-pass input
/// range whose iterator cannot be copied.
TYPED_TEST(IMapInputTest, AnIstreamAsInput) {
    TypeParam pool(2);
    std::istringstream text("one three fifteen a bb");
    auto stream = pool.imap(length, std::views::istream<std::string>(text), 2);
    EXPECT_EQ(drain(stream), (std::vector<int>{3, 5, 7, 1, 2}));

    std::istringstream numbers("4 5 6");
    auto squares = pool.imap(square, std::views::istream<int>(numbers), 1, 1);
    EXPECT_EQ(drain(squares), (std::vector<int>{16, 25, 36}));
}

/// A pipeline of views over an endless source, composed lazily; the first results suffice.
TYPED_TEST(IMapInputTest, AComposedViewOverAnEndlessSource) {
    TypeParam pool(2);
    auto odd = [](int x) { return x % 2 == 1; };
    auto input = std::views::iota(0) | std::views::filter(odd) | std::views::take(1000);
    std::vector<int> out;
    for (int r : pool.imap(negate, input, 4)) {
        out.push_back(r);
        if (out.size() == 5) {
            break;
        }
    }
    EXPECT_EQ(out, (std::vector<int>{-1, -3, -5, -7, -9}));
}

/// CPython issue 155477: `close()` then `join()` after a buffered `imap` was only partly
/// consumed hangs for ever there. Here `join()` ends the stream's feeding; the stream delivers
/// what was submitted, then `PoolNotRunning`.
TYPED_TEST(IMapInputTest, CloseAndJoinAfterPartialConsumptionDoNotHang) {
    TypeParam pool(2);
    auto stream = pool.imap(square, range_vector(0, 1000), 1, 2);
    EXPECT_EQ(stream.next(long_wait), std::optional<int>(0));
    pool.close();
    pool.join();
    int delivered = 0;
    EXPECT_TRUE(throws<mproc::PoolNotRunning>([&] {
        while (stream.next(long_wait)) {
            ++delivered;
        }
    }));
    EXPECT_LE(delivered, 2);
    EXPECT_EQ(stream.next(long_wait), std::nullopt);
}

} // namespace
