// SPDX-License-Identifier: MIT
// Every public call with extreme and hostile arguments: sizes at 0, 1, 2^31, 2^61, PTRDIFF_MAX
// and negative; empty, one-item and endless inputs; timeouts at zero, negative and at the
// largest durations (which overflow when added to now()). Each call must either give the right
// result in memory bounded by its input, or throw std::invalid_argument naming the parameter.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

constexpr std::ptrdiff_t ptrdiff_max = std::numeric_limits<std::ptrdiff_t>::max();
constexpr std::ptrdiff_t ptrdiff_min = std::numeric_limits<std::ptrdiff_t>::min();

/// Sizes a call must take: from the smallest to ones no input could ever fill.
const std::vector<std::ptrdiff_t> huge_and_small_sizes = {
    1, 2, std::ptrdiff_t{1} << 20, std::ptrdiff_t{1} << 31, std::ptrdiff_t{1} << 61, ptrdiff_max};
/// Sizes a call must refuse.
const std::vector<std::ptrdiff_t> non_positive_sizes = {0, -1, ptrdiff_min};
/// Worker counts no machine can honour.
const std::vector<std::ptrdiff_t> absurd_worker_counts = {std::ptrdiff_t{1} << 31,
                                                          std::ptrdiff_t{1} << 61, ptrdiff_max};

/// A call over at most this few items may grow the caller's peak memory by no more than this.
constexpr long memory_bound_kib = 32 * 1024;

/// Pools whose workers are processes of their own: they honour task_timeout, with_timeout,
/// max_retries and worker_memory_limit.
template <class Pool>
inline constexpr bool kills_workers = std::is_base_of_v<mproc::Pool, Pool>;

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), -1 if it cannot be read.
long status_kib(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::stol(line.substr(field.size() + 1));
        }
    }
    return -1;
}

/// How much `call()` raised this process's peak resident memory, in KiB. The peak (VmHWM) is
/// reset first through /proc/self/clear_refs; where that is refused, the resident size after
/// the call is all that can be seen.
template <class Call>
long peak_growth_kib(Call&& call) {
    const long before = status_kib("VmRSS");
    const bool reset = static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5");
    std::forward<Call>(call)();
    return (reset ? status_kib("VmHWM") : status_kib("VmRSS")) - before;
}

/// Whether `call()` throws std::invalid_argument whose message names `parameter`.
template <class Call>
::testing::AssertionResult refused(Call&& call, const std::string& parameter) {
    return throws_with<std::invalid_argument>(std::forward<Call>(call), parameter);
}

std::vector<std::pair<int, int>> pairs_of(const std::vector<int>& input) {
    std::vector<std::pair<int, int>> pairs;
    for (int x : input) {
        pairs.emplace_back(x, x);
    }
    return pairs;
}

template <class T>
std::vector<T> sorted(std::vector<T> values) {
    std::sort(values.begin(), values.end());
    return values;
}

template <class T>
std::vector<T> values_of(const std::vector<mproc::Outcome<T>>& outcomes) {
    std::vector<T> values;
    for (const auto& outcome : outcomes) {
        values.push_back(outcome.value());
    }
    return values;
}

template <class Pool>
class HostileArgumentsTest : public PoolTest {};
TYPED_TEST_SUITE(HostileArgumentsTest, PoolTypes);

TYPED_TEST(HostileArgumentsTest, WorkerCountsOutOfRangeAreRefused) {
    for (std::ptrdiff_t workers : non_positive_sizes) {
        EXPECT_TRUE(refused([&] { TypeParam pool(workers); }, "workers")) << workers;
    }
    for (std::ptrdiff_t workers : absurd_worker_counts) {
        SCOPED_TRACE(testing::Message() << "workers " << workers);
        EXPECT_TRUE(refused([&] { TypeParam pool(workers); }, "workers"));
        EXPECT_TRUE(
            refused([&] { TypeParam pool(mproc::PoolOptions{.workers = workers}); }, "workers"));
    }
}

TYPED_TEST(HostileArgumentsTest, OneAndTwoWorkersWork) {
    for (std::ptrdiff_t workers : {1, 2}) {
        TypeParam pool(workers);
        EXPECT_EQ(pool.workers(), static_cast<std::size_t>(workers));
        EXPECT_EQ(pool.map(square, range_vector(0, 10)), expected_map(square, range_vector(0, 10)));
    }
}

/// Every option at its extremes: refused by name when out of range or not supported by the
/// pool class, and honoured (the pool works) at its largest values where it is supported.
TYPED_TEST(HostileArgumentsTest, PoolOptionsAtTheirExtremes) {
    for (std::ptrdiff_t n : non_positive_sizes) {
        EXPECT_TRUE(refused(
            [&] { TypeParam pool(mproc::PoolOptions{.workers = 1, .max_tasks_per_child = n}); },
            "max_tasks_per_child"));
    }
    for (std::ptrdiff_t n : {std::ptrdiff_t{-1}, ptrdiff_min}) {
        EXPECT_TRUE(
            refused([&] { TypeParam pool(mproc::PoolOptions{.workers = 1, .max_retries = n}); },
                    "max_retries"));
    }
    for (auto limit : {std::chrono::nanoseconds::zero(), std::chrono::nanoseconds(-1),
                       std::chrono::nanoseconds::min()}) {
        EXPECT_TRUE(refused(
            [&] { TypeParam pool(mproc::PoolOptions{.workers = 1, .task_timeout = limit}); },
            "task_timeout"));
    }
    EXPECT_TRUE(
        refused([&] { TypeParam pool(mproc::PoolOptions{.workers = 1, .worker_memory_limit = 0}); },
                "worker_memory_limit"));

    const auto input = range_vector(0, 10);
    if constexpr (tasks_run_only_on_workers<TypeParam>) {
        TypeParam pool(mproc::PoolOptions{.workers = 2, .max_tasks_per_child = ptrdiff_max});
        EXPECT_EQ(pool.map(square, input, 1), expected_map(square, input));
    }
    if constexpr (kills_workers<TypeParam>) {
        // The largest time limit means none: it must not wrap around into the past when it is
        // added to the time a task starts.
        TypeParam pool(
            mproc::PoolOptions{.workers = 2,
                               .task_timeout = std::chrono::nanoseconds::max(),
                               .max_retries = ptrdiff_max,
                               .worker_memory_limit = std::numeric_limits<std::size_t>::max()});
        EXPECT_EQ(pool.map(square, input, 1), expected_map(square, input));
        EXPECT_EQ(pool.apply(sleep_ms, 5), 5);
    } else {
        EXPECT_TRUE(refused(
            [&] {
                TypeParam pool(mproc::PoolOptions{.workers = 1,
                                                  .task_timeout = std::chrono::nanoseconds::max()});
            },
            "task_timeout"));
        // A pool whose workers are never lost has nothing to retry and may take any count.
        try {
            TypeParam pool(mproc::PoolOptions{.workers = 1, .max_retries = ptrdiff_max});
            EXPECT_EQ(pool.map(square, input, 1), expected_map(square, input));
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("max_retries"), std::string::npos) << e.what();
        }
        EXPECT_TRUE(refused(
            [&] {
                TypeParam pool(mproc::PoolOptions{
                    .workers = 1, .worker_memory_limit = std::numeric_limits<std::size_t>::max()});
            },
            "worker_memory_limit"));
    }
}

TYPED_TEST(HostileArgumentsTest, WithTimeoutAtItsExtremes) {
    EXPECT_TRUE(
        refused([] { (void)mproc::with_timeout(square, std::chrono::seconds(0)); }, "limit"));
    EXPECT_TRUE(
        refused([] { (void)mproc::with_timeout(square, std::chrono::nanoseconds(-1)); }, "limit"));
    EXPECT_TRUE(
        refused([] { (void)mproc::with_timeout(square, std::chrono::seconds::min()); }, "limit"));
    EXPECT_TRUE(
        refused([] { (void)mproc::with_timeout(square, std::chrono::hours::min()); }, "limit"));
    // A limit beyond what nanoseconds hold is no limit at all, not a wrapped-around one.
    EXPECT_EQ(mproc::with_timeout(square, std::chrono::seconds::max()).limit,
              std::chrono::nanoseconds::max());
    EXPECT_EQ(mproc::with_timeout(square, std::chrono::hours::max()).limit,
              std::chrono::nanoseconds::max());
    if constexpr (kills_workers<TypeParam>) {
        TypeParam pool(2);
        const auto input = range_vector(0, 10);
        for (auto limit : {mproc::with_timeout(square, std::chrono::nanoseconds::max()),
                           mproc::with_timeout(square, std::chrono::seconds::max()),
                           mproc::with_timeout(square, std::chrono::hours::max())}) {
            EXPECT_EQ(pool.map(limit, input, 3), expected_map(square, input));
            EXPECT_EQ(pool.apply(limit, 7), 49);
            auto stream = pool.imap(limit, input, 2);
            EXPECT_EQ(drain(stream), expected_map(square, input));
        }
    }
}

TYPED_TEST(HostileArgumentsTest, NonPositiveSizesAreRefusedByName) {
    TypeParam pool(2);
    const auto input = range_vector(0, 10);
    const auto pairs = pairs_of(input);
    std::vector<int> out(input.size());
    for (std::ptrdiff_t size : non_positive_sizes) {
        SCOPED_TRACE(testing::Message() << "size " << size);
        EXPECT_TRUE(refused([&] { (void)pool.map(square, input, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.map_async(square, input, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.starmap(add, pairs, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.starmap_async(add, pairs, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { pool.map_into(square, input, out, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.map_outcomes(square, input, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.imap(square, input, size); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.imap_unordered(square, input, size); }, "chunksize"));
        // With a buffersize: without one, GCC 12 warns falsely (-Wmaybe-uninitialized) of the
        // empty optional inlined into this lambda.
        EXPECT_TRUE(
            refused([&] { (void)pool.imap_outcomes(square, input, size, 4); }, "chunksize"));
        EXPECT_TRUE(refused([&] { (void)pool.imap(square, input, 1, size); }, "buffersize"));
        EXPECT_TRUE(
            refused([&] { (void)pool.imap_unordered(square, input, 1, size); }, "buffersize"));
        EXPECT_TRUE(
            refused([&] { (void)pool.imap_outcomes(square, input, 1, size); }, "buffersize"));
        EXPECT_TRUE(refused([&] { (void)pool.imap_unordered_outcomes(square, input, 1, size); },
                            "buffersize"));
    }
    // The pool is unharmed.
    EXPECT_EQ(pool.map(square, input), expected_map(square, input));
}

/// map and its relatives with every chunksize over empty, one-item and ten-item inputs: a
/// chunksize larger than the input is one chunk of everything.
TYPED_TEST(HostileArgumentsTest, MapCallsTakeAnyPositiveChunksize) {
    TypeParam pool(2);
    for (int n : {0, 1, 10}) {
        const auto input = range_vector(0, n);
        const auto expected = expected_map(square, input);
        const auto pairs = pairs_of(input);
        const auto sums = expected_map([](int x) { return x + x; }, input);
        for (std::ptrdiff_t size : huge_and_small_sizes) {
            SCOPED_TRACE(testing::Message() << n << " items, chunksize " << size);
            const long growth = peak_growth_kib([&] {
                EXPECT_EQ(pool.map(square, input, size), expected);
                EXPECT_EQ(pool.map_async(square, input, size).get(long_wait), expected);
                EXPECT_EQ(pool.starmap(add, pairs, size), sums);
                EXPECT_EQ(pool.starmap_async(add, pairs, size).get(long_wait), sums);
                std::vector<int> out(input.size(), -1);
                pool.map_into(square, input, out, size);
                EXPECT_EQ(out, expected);
                // An input of unknown size is copied first, then chunked the same way.
                Generator generated(0, n);
                EXPECT_EQ(pool.map(square, generated, size), expected);
            });
            EXPECT_LT(growth, memory_bound_kib);
        }
    }
}

TYPED_TEST(HostileArgumentsTest, MapOutcomesTakesAnyPositiveChunksize) {
    TypeParam pool(2);
    for (int n : {0, 1, 10}) {
        const auto input = range_vector(0, n);
        const auto expected = expected_map(square, input);
        for (std::ptrdiff_t size : huge_and_small_sizes) {
            SCOPED_TRACE(testing::Message() << n << " items, chunksize " << size);
            const long growth = peak_growth_kib([&] {
                EXPECT_EQ(values_of(pool.map_outcomes(square, input, size)), expected);
                Generator generated(0, n);
                EXPECT_EQ(values_of(pool.map_outcomes(square, generated, size)), expected);
            });
            EXPECT_LT(growth, memory_bound_kib);
        }
    }
}

/// The streams with every chunksize, with and without a buffersize: memory in proportion to
/// what the input holds, never to what the arguments ask for.
TYPED_TEST(HostileArgumentsTest, StreamsTakeAnyPositiveChunksize) {
    TypeParam pool(2);
    for (int n : {0, 1, 10}) {
        const auto input = range_vector(0, n);
        const auto expected = expected_map(square, input);
        for (std::ptrdiff_t size : huge_and_small_sizes) {
            for (std::optional<std::ptrdiff_t> buffersize :
                 {std::optional<std::ptrdiff_t>{}, std::optional<std::ptrdiff_t>{1},
                  std::optional<std::ptrdiff_t>{ptrdiff_max}}) {
                SCOPED_TRACE(testing::Message()
                             << n << " items, chunksize " << size << ", buffersize "
                             << (buffersize ? std::to_string(*buffersize) : "default"));
                const long growth = peak_growth_kib([&] {
                    auto ordered = pool.imap(square, input, size, buffersize);
                    EXPECT_EQ(drain(ordered), expected);
                    auto unordered = pool.imap_unordered(square, input, size, buffersize);
                    EXPECT_EQ(sorted(drain(unordered)), expected);
                    auto outcomes = pool.imap_outcomes(square, input, size, buffersize);
                    EXPECT_EQ(values_of(drain(outcomes)), expected);
                    auto unordered_outcomes =
                        pool.imap_unordered_outcomes(square, input, size, buffersize);
                    EXPECT_EQ(sorted(values_of(drain(unordered_outcomes))), expected);
                });
                EXPECT_LT(growth, memory_bound_kib);
            }
        }
    }
}

TYPED_TEST(HostileArgumentsTest, StreamsTakeAnyPositiveBuffersize) {
    TypeParam pool(2);
    for (int n : {0, 1, 10}) {
        const auto expected = expected_map(square, range_vector(0, n));
        for (std::ptrdiff_t buffersize : huge_and_small_sizes) {
            for (std::ptrdiff_t size : {std::ptrdiff_t{1}, std::ptrdiff_t{3}, ptrdiff_max}) {
                SCOPED_TRACE(testing::Message()
                             << n << " items, chunksize " << size << ", buffersize " << buffersize);
                const long growth = peak_growth_kib([&] {
                    // A generator: the stream learns where the input ends only by reading it.
                    Generator ordered_input(0, n);
                    auto ordered = pool.imap(square, ordered_input, size, buffersize);
                    EXPECT_EQ(drain(ordered), expected);
                    Generator unordered_input(0, n);
                    auto unordered = pool.imap_unordered(square, unordered_input, size, buffersize);
                    EXPECT_EQ(sorted(drain(unordered)), expected);
                });
                EXPECT_LT(growth, memory_bound_kib);
            }
        }
    }
}

/// Ten items with the largest chunksize, leaving after the first result: the stream holds one
/// chunk of ten, and leaving it frees the pool for the next call at once.
TYPED_TEST(HostileArgumentsTest, StreamsWithHugeSizesCanBeLeftEarly) {
    TypeParam pool(2);
    const auto input = range_vector(0, 10);
    for (std::ptrdiff_t size : huge_and_small_sizes) {
        SCOPED_TRACE(testing::Message() << "chunksize " << size);
        const long growth = peak_growth_kib([&] {
            auto stream = pool.imap(square, input, size, ptrdiff_max);
            EXPECT_EQ(stream.next(long_wait), 0);
        });
        EXPECT_LT(growth, memory_bound_kib);
        EXPECT_EQ(pool.map(square, input), expected_map(square, input));
    }
}

/// Endless inputs: the stream reads only as far as its window, whatever the sizes asked for
/// within a window the input can fill, and leaving it early stops the reading.
TYPED_TEST(HostileArgumentsTest, EndlessInputsCanBeLeftEarly) {
    TypeParam pool(2);
    for (std::ptrdiff_t size : {1, 2, 7}) {
        for (std::optional<std::ptrdiff_t> buffersize :
             {std::optional<std::ptrdiff_t>{}, std::optional<std::ptrdiff_t>{1},
              std::optional<std::ptrdiff_t>{3}}) {
            SCOPED_TRACE(testing::Message()
                         << "chunksize " << size << ", buffersize "
                         << (buffersize ? std::to_string(*buffersize) : "default"));
            std::vector<int> ordered;
            for (int r : pool.imap(square, std::views::iota(0), size, buffersize)) {
                ordered.push_back(r);
                if (ordered.size() == 20) {
                    break;
                }
            }
            EXPECT_EQ(ordered, expected_map(square, range_vector(0, 20)));
            auto unordered = pool.imap_unordered(square, std::views::iota(0), size, buffersize);
            std::vector<int> seen;
            for (int i = 0; i < 20; ++i) {
                seen.push_back(*unordered.next(long_wait));
            }
            seen = sorted(seen);
            EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
            for (int r : seen) {
                const int root = static_cast<int>(std::lround(std::sqrt(r)));
                EXPECT_EQ(root * root, r);
            }
            auto outcomes = pool.imap_outcomes(square, std::views::iota(0), size, buffersize);
            EXPECT_EQ(outcomes.next(long_wait)->value(), 0);
            EXPECT_EQ(outcomes.next(long_wait)->value(), 1);
        }
    }
}

/// Waits at zero, negative and at the largest durations, which overflow when added to now():
/// a zero or negative one polls, the largest ones wait for ever (and so return the result).
TYPED_TEST(HostileArgumentsTest, ResultTimeoutsAtTheirExtremes) {
    TypeParam pool(2);
    {
        auto pending = pool.apply_async(sleep_ms, 300);
        EXPECT_TRUE(throws<mproc::TimeoutError>([&] { (void)pending.get(0s); }));
        EXPECT_TRUE(throws<mproc::TimeoutError>([&] { (void)pending.get(-1s); }));
        EXPECT_TRUE(throws<mproc::TimeoutError>(
            [&] { (void)pending.get(std::chrono::nanoseconds::min()); }));
        EXPECT_FALSE(pending.wait(std::chrono::nanoseconds::zero()));
        EXPECT_FALSE(pending.wait(std::chrono::hours::min()));
        EXPECT_FALSE(pending.wait(std::chrono::duration<double>(-1e300)));
        EXPECT_TRUE(pending.wait(std::chrono::nanoseconds::max()));
        EXPECT_EQ(pending.get(0s), 300);
    }
    auto forever = [&](auto timeout) {
        SCOPED_TRACE(testing::Message() << "timeout " << timeout.count());
        auto result = pool.apply_async(sleep_ms, 20);
        EXPECT_TRUE(result.wait(timeout));
        EXPECT_EQ(pool.apply_async(sleep_ms, 20).get(timeout), 20);
        EXPECT_EQ(pool.map_async(square, range_vector(0, 10), 3).get(timeout),
                  expected_map(square, range_vector(0, 10)));
        auto stream = pool.imap(sleep_ms, std::vector<int>{20, 1}, 1, 1);
        EXPECT_EQ(stream.next(timeout), 20);
        EXPECT_EQ(stream.next(timeout), 1);
        EXPECT_EQ(stream.next(timeout), std::nullopt);
    };
    forever(std::chrono::nanoseconds::max());
    forever(std::chrono::seconds::max());
    forever(std::chrono::hours::max());
    forever(std::chrono::duration<double>(1e300));
    forever(std::chrono::duration<double>(std::numeric_limits<double>::infinity()));

    auto slow = pool.imap(sleep_ms, std::vector<int>{300}, 1, 1);
    EXPECT_TRUE(throws<mproc::TimeoutError>([&] { (void)slow.next(0s); }));
    EXPECT_TRUE(
        throws<mproc::TimeoutError>([&] { (void)slow.next(std::chrono::nanoseconds::min()); }));
    EXPECT_EQ(slow.next(std::chrono::seconds::max()), 300);

    // A timeout that is not a number is no duration at all.
    const auto nan = std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN());
    auto result = pool.apply_async(sleep_ms, 1);
    EXPECT_TRUE(refused([&] { (void)result.wait(nan); }, "timeout"));
    EXPECT_TRUE(refused([&] { (void)result.get(nan); }, "timeout"));
    auto stream = pool.imap(square, range_vector(0, 3));
    EXPECT_TRUE(refused([&] { (void)stream.next(nan); }, "timeout"));
    EXPECT_EQ(result.get(long_wait), 1);
    EXPECT_EQ(drain(stream), expected_map(square, range_vector(0, 3)));
}

} // namespace
