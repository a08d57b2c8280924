// SPDX-License-Identifier: MIT
// map and map_async: every item's result, in input order, chunked as Python chunks.

#include <algorithm>
#include <future>
#include <list>
#include <optional>
#include <ranges>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

bool is_even(int x) { return x % 2 == 0; }
std::string repeat_x(int n) { return std::string(static_cast<std::size_t>(n), 'x'); }
std::size_t length(const std::string& s) { return s.size(); }

/// A result type with no public default constructor (a serialiser may use the private one).
class NoDefault {
  public:
    explicit NoDefault(int value) : value_(value) {}
    int value() const { return value_; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value_);
    }

  private:
    friend class cereal::access;
    NoDefault() = default;
    int value_ = 0;
};
static_assert(!std::is_default_constructible_v<NoDefault>);

NoDefault make_no_default(int x) { return NoDefault(x * 3); }

template <class Pool>
class MapTest : public PoolTest {};
TYPED_TEST_SUITE(MapTest, PoolTypes);

/// Per item, the worker that ran it, on a pool whose workers each run one chunk: the runs of equal
/// ids are the chunks. Checks that no two chunks shared a worker.
template <class Pool>
std::vector<std::size_t> chunk_sizes_of_map(std::size_t workers, int items,
                                            std::optional<std::ptrdiff_t> chunksize) {
    Pool pool(mproc::PoolOptions{.workers = static_cast<std::ptrdiff_t>(workers),
                                 .max_tasks_per_child = 1});
    const std::vector<int> input = range_vector(0, items);
    const std::vector<std::uint64_t> ids =
        chunksize ? pool.map(worker_id, input, *chunksize) : pool.map(worker_id, input);
    EXPECT_EQ(ids.size(), input.size());
    const std::vector<std::size_t> runs = run_lengths(ids);
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), runs.size())
        << "a worker ran more than one chunk despite max_tasks_per_child = 1";
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).count(0), 0u)
        << "an item ran outside any worker";
    return runs;
}

TYPED_TEST(MapTest, ResultsComeInInputOrder) {
    TypeParam pool(3);
    const std::vector<int> input = range_vector(-50, 150);
    EXPECT_EQ(pool.map(square, input), expected_map(square, input));
    EXPECT_EQ(pool.map(negate, input, 7), expected_map(negate, input));
}

// mproc::fn<f>: a plain function as a function object, wherever a pool takes a callable, with
// the same results as the function itself (a process pool sends it as nothing).
TYPED_TEST(MapTest, AFunctionPassedAsFnGivesTheFunctionsResults) {
    TypeParam pool(2);
    const std::vector<int> input = range_vector(-20, 200);
    EXPECT_EQ(pool.map(mproc::fn<square>, input), pool.map(square, input));
    EXPECT_EQ(pool.apply(mproc::fn<square>, 12), 144);
    std::vector<int> out(input.size());
    pool.map_into(mproc::fn<square>, input, out, 7);
    EXPECT_EQ(out, pool.map(square, input));
    std::vector<bool> evens;
    for (bool even : pool.imap(mproc::fn<is_even>, input, 5)) {
        evens.push_back(even);
    }
    EXPECT_EQ(evens, pool.map(is_even, input));
    EXPECT_EQ(pool.map(mproc::fn<length>, std::vector<std::string>{"ab", "", "xyz"}),
              (std::vector<std::size_t>{2, 0, 3}));
    static_assert(std::is_empty_v<mproc::Fn<square>>);
}

TYPED_TEST(MapTest, InputOrderEvenWhenLaterItemsFinishFirst) {
    TypeParam pool(4);
    const std::vector<int> input{60, 0, 40, 0, 20, 0, 1};
    EXPECT_EQ(pool.map(sleep_ms, input, 1), input);
}

TYPED_TEST(MapTest, DefaultChunksizeIsPythons) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    // Python: chunksize = ceil(n / (4 * workers)).
    // 100 items, 2 workers: ceil(100 / 8) = 13, so 7 chunks of 13 and one of 9.
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 100, std::nullopt),
              (std::vector<std::size_t>{13, 13, 13, 13, 13, 13, 13, 9}));
    // 17 items, 2 workers: ceil(17 / 8) = 3.
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 17, std::nullopt),
              (std::vector<std::size_t>{3, 3, 3, 3, 3, 2}));
    // 16 items, 2 workers: exactly 2 (no rounding up when it divides).
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 16, std::nullopt), (std::vector<std::size_t>(8, 2)));
    // Fewer items than 4 * workers: one item a chunk.
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(3, 5, std::nullopt), (std::vector<std::size_t>(5, 1)));
}

std::uint64_t worker_id_of_vector(const std::vector<double>&) { return mproc::this_worker::id(); }

TYPED_TEST(MapTest, AcrossProcessesLargeItemsTravelAFewAtATime) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    // 12 items of 512 KiB on 2 workers: Python's rule gives chunks of ceil(12 / 8) = 2. Across
    // processes a chunk carries about a megabyte at most, so these go one at a time; threads
    // copy nothing and keep Python's chunks.
    TypeParam pool(mproc::PoolOptions{.workers = 2, .max_tasks_per_child = 1});
    const std::vector<std::vector<double>> input(12, std::vector<double>(std::size_t{1} << 16));
    const std::vector<std::size_t> runs = run_lengths(pool.map(worker_id_of_vector, input));
    constexpr bool crosses_processes = !std::is_base_of_v<mproc::ThreadPool, TypeParam>;
    EXPECT_EQ(runs,
              std::vector<std::size_t>(crosses_processes ? 12 : 6, crosses_processes ? 1 : 2));
    // map_outcomes chooses its chunks the same way.
    std::vector<std::uint64_t> ids;
    for (const auto& outcome : pool.map_outcomes(worker_id_of_vector, input)) {
        ids.push_back(outcome.value());
    }
    EXPECT_EQ(run_lengths(ids), runs);
    // Small items keep Python's rule everywhere (ceil(12 / 8) = 2).
    const std::vector<std::vector<double>> small(12, std::vector<double>(4));
    EXPECT_EQ(run_lengths(pool.map(worker_id_of_vector, small)), std::vector<std::size_t>(6, 2));
}

TYPED_TEST(MapTest, ExplicitChunksize) {
    if constexpr (!tasks_run_only_on_workers<TypeParam>) {
        GTEST_SKIP() << "the calling thread runs tasks too (caller_runs_chunks)";
    }
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 6, 1), (std::vector<std::size_t>(6, 1)));
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 10, 4), (std::vector<std::size_t>{4, 4, 2}));
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 10, 5), (std::vector<std::size_t>{5, 5}));
    // Larger than the input: one chunk.
    EXPECT_EQ(chunk_sizes_of_map<TypeParam>(2, 10, 1000), (std::vector<std::size_t>{10}));
}

TYPED_TEST(MapTest, AnyChunksizeGivesTheSameResults) {
    TypeParam pool(3);
    const std::vector<int> input = range_vector(0, 23);
    const std::vector<int> expected = expected_map(square, input);
    for (std::ptrdiff_t chunksize : {1, 2, 3, 5, 22, 23, 24, 1000}) {
        EXPECT_EQ(pool.map(square, input, chunksize), expected) << "chunksize " << chunksize;
    }
}

TYPED_TEST(MapTest, EmptyInputGivesEmptyResultWithoutCallingF) {
    TypeParam pool(2);
    const std::vector<int> empty;
    EXPECT_TRUE(pool.map(never_called, empty).empty());
    EXPECT_TRUE(pool.map(never_called, empty, 3).empty());
    EXPECT_TRUE(pool.map(never_called, std::vector<int>{}).empty());
    // Lazy input that turns out empty.
    EXPECT_TRUE(pool.map(never_called, Generator(0, 0)).empty());

    int successes = 0;
    int errors = 0;
    std::size_t size_seen = 99;
    auto result = pool.map_async(never_called, empty, mproc::auto_chunksize,
                                 mproc::callbacks(
                                     [&](const std::vector<int>& v) {
                                         ++successes;
                                         size_seen = v.size();
                                     },
                                     [&](std::exception_ptr) { ++errors; }));
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.successful());
    EXPECT_TRUE(result.get().empty());
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(errors, 0);
    EXPECT_EQ(size_seen, 0u);
}

TYPED_TEST(MapTest, LazyInputOfUnknownLength) {
    TypeParam pool(2);
    const std::vector<int> numbers = range_vector(0, 40);
    std::vector<int> even_squares;
    for (int x = 0; x < 40; x += 2)
        even_squares.push_back(x * x);

    // A filter view: neither sized nor const-iterable.
    auto evens = numbers | std::views::filter(is_even);
    EXPECT_EQ(pool.map(square, evens), even_squares);
    EXPECT_EQ(pool.map(square, numbers | std::views::filter(is_even), 3), even_squares);

    // A single-pass generator of unknown length.
    EXPECT_EQ(pool.map(negate, Generator(0, 25)), expected_map(negate, range_vector(0, 25)));
    Generator generator(5, 9);
    EXPECT_EQ(pool.map(negate, generator, 2), (std::vector<int>{-5, -6, -7, -8}));

    // An istream.
    std::istringstream text("3 1 4 1 5 9 2 6");
    EXPECT_EQ(pool.map(square, std::views::istream<int>(text)),
              (std::vector<int>{9, 1, 16, 1, 25, 81, 4, 36}));

    // A bidirectional container and a lazy transform of a sized range.
    const std::list<int> list{4, 5, 6};
    EXPECT_EQ(pool.map(square, list), (std::vector<int>{16, 25, 36}));
    EXPECT_EQ(pool.map(square, std::views::iota(0, 5) | std::views::transform(negate)),
              (std::vector<int>{0, 1, 4, 9, 16}));
}

TYPED_TEST(MapTest, InputThatThrowsWhileBeingReadThrowsFromMap) {
    TypeParam pool(2);
    EXPECT_TRUE(throws_with<std::out_of_range>(
        [&] { pool.map(square, Generator(0, 10, /*throw_at=*/4)); }, "input failed at 4"));
    EXPECT_EQ(pool.map(square, std::vector<int>{2}), std::vector<int>{4}); // pool still usable
}

TYPED_TEST(MapTest, NonDefaultConstructibleResults) {
    TypeParam pool(2);
    for (std::ptrdiff_t chunksize : {1, 4}) {
        const std::vector<NoDefault> out =
            pool.map(make_no_default, range_vector(0, 10), chunksize);
        ASSERT_EQ(out.size(), 10u);
        for (int i = 0; i < 10; ++i) {
            EXPECT_EQ(out[static_cast<std::size_t>(i)].value(), i * 3);
        }
    }
    auto result = pool.map_async(make_no_default, range_vector(0, 3));
    ASSERT_TRUE(result.wait(long_wait));
    ASSERT_EQ(result.get().size(), 3u);
    EXPECT_EQ(result.get()[2].value(), 6);
}

TYPED_TEST(MapTest, BoolResults) {
    TypeParam pool(4);
    const std::vector<int> input = range_vector(0, 1000);
    const std::vector<bool> out = pool.map(is_even, input, 1); // neighbouring bits, many workers
    ASSERT_EQ(out.size(), input.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(out[i], i % 2 == 0) << i;
    }
    auto result = pool.map_async(is_even, input, 3);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), out);
}

TYPED_TEST(MapTest, StringItemsAndResults) {
    TypeParam pool(2);
    EXPECT_EQ(pool.map(repeat_x, std::vector<int>{0, 1, 3}),
              (std::vector<std::string>{"", "x", "xxx"}));
    EXPECT_EQ(pool.map(length, std::vector<std::string>{"a", "", "abcd"}),
              (std::vector<std::size_t>{1, 0, 4}));
    EXPECT_EQ(
        pool.map([](const std::string& s) { return s + s; }, std::vector<std::string>{"ab", "c"}),
        (std::vector<std::string>{"abab", "cc"}));
}

/// Item i of the large-vector tests: 40,000 doubles (320 KiB, so they travel by reference from
/// the caller's memory where they live long enough).
std::vector<double> large_item(int i) {
    std::vector<double> item(40000);
    for (std::size_t j = 0; j < item.size(); ++j) {
        item[j] = static_cast<double>(i) * 1000 + static_cast<double>(j) * 0.25;
    }
    return item;
}
std::vector<double> doubled(const std::vector<double>& item) {
    std::vector<double> result(item.size());
    std::ranges::transform(item, result.begin(), [](double x) { return 2 * x; });
    return result;
}

TYPED_TEST(MapTest, LargeItemsFromStorageFromACopyAndFromAView) {
    TypeParam pool(2);
    std::vector<std::vector<double>> input;
    std::vector<std::vector<double>> expected;
    for (int i = 0; i < 6; ++i) {
        input.push_back(large_item(i));
        expected.push_back(doubled(input.back()));
    }
    EXPECT_EQ(pool.map(doubled, input), expected);             // read from the caller's vector
    EXPECT_EQ(pool.map_async(doubled, input).get(), expected); // from the job's copy
    // A view makes each item on the fly: a temporary, which must be copied, never referred to.
    auto made = std::views::iota(0, 6) | std::views::transform(large_item);
    EXPECT_EQ(pool.map(doubled, made), expected);
    std::vector<std::vector<double>> streamed;
    for (std::vector<double>& result : pool.imap(doubled, made)) {
        streamed.push_back(std::move(result));
    }
    EXPECT_EQ(streamed, expected);
    EXPECT_EQ(pool.apply(doubled, input[4]), expected[4]);
}

TYPED_TEST(MapTest, MapAsyncReturnsAnAsyncResultOfTheVector) {
    TypeParam pool(2);
    auto result = pool.map_async(sleep_ms, std::vector<int>{100, 0, 10});
    static_assert(std::is_same_v<decltype(result), mproc::AsyncResult<std::vector<int>>>);
    EXPECT_FALSE(result.ready()); // an item sleeps 100 ms: map_async did not wait
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.successful());
    EXPECT_EQ(result.get(), (std::vector<int>{100, 0, 10}));
    EXPECT_EQ(std::move(result).get(), (std::vector<int>{100, 0, 10}));

    auto chunked = pool.map_async(square, range_vector(0, 50), 7);
    ASSERT_TRUE(chunked.wait(long_wait));
    EXPECT_EQ(chunked.get(), expected_map(square, range_vector(0, 50)));
}

TYPED_TEST(MapTest, MapAsyncDoesNotNeedTheCallersInputToStayAlive) {
    TypeParam pool(1);
    mproc::AsyncResult<std::vector<int>> first;
    mproc::AsyncResult<std::vector<int>> second;
    {
        auto blocker = pool.apply_async(sleep_ms, 30); // the map items wait behind this
        std::vector<int> input = range_vector(0, 20);
        first = pool.map_async(square, input, 3);
        std::list<int> list{1, 2, 3};
        second = pool.map_async(negate, list);
        input.assign(20, -1); // neither the change nor the destruction may reach the task
    }
    ASSERT_TRUE(first.wait(long_wait));
    EXPECT_EQ(first.get(), expected_map(square, range_vector(0, 20)));
    ASSERT_TRUE(second.wait(long_wait));
    EXPECT_EQ(second.get(), (std::vector<int>{-1, -2, -3}));
}

TYPED_TEST(MapTest, MapAsyncOverLazyInput) {
    TypeParam pool(2);
    auto result = pool.map_async(square, Generator(0, 6), 4);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), (std::vector<int>{0, 1, 4, 9, 16, 25}));
}

TYPED_TEST(MapTest, MapAsyncSuccessCallbackGetsTheWholeVectorOnce) {
    TypeParam pool(3);
    int calls = 0;
    std::vector<int> seen;
    auto result = pool.map_async(square, range_vector(0, 30), 4,
                                 mproc::on_success([&](const std::vector<int>& v) {
                                     ++calls;
                                     seen = v;
                                 }));
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, expected_map(square, range_vector(0, 30)));
}

TYPED_TEST(MapTest, BoolInputs) {
    // std::vector<bool> and other bool ranges hand out proxies or temporaries, not references.
    TypeParam pool(3);
    const std::vector<bool> bits{true, false, false, true, true};
    const std::vector<int> expected{1, 0, 0, 1, 1};
    auto to_int = [](bool b) { return b ? 1 : 0; };
    EXPECT_EQ(pool.map(to_int, bits), expected);
    EXPECT_EQ(pool.map(to_int, bits, 2), expected);
    EXPECT_EQ(pool.map(to_int, std::list<bool>(bits.begin(), bits.end())), expected);
    auto async = pool.map_async(to_int, bits, 1);
    ASSERT_TRUE(async.wait(long_wait));
    EXPECT_EQ(async.get(), expected);
    auto moved = pool.map_async(to_int, std::vector<bool>(bits));
    ASSERT_TRUE(moved.wait(long_wait));
    EXPECT_EQ(moved.get(), expected);
    auto stream = pool.imap(to_int, bits, 2);
    EXPECT_EQ(drain(stream), expected);
}

TYPED_TEST(MapTest, ConcurrentCallersEachGetTheirOwnResults) {
    // Like Python's Pool, one pool serves calls from several threads of the caller at once.
    TypeParam pool(3);
    std::vector<std::future<bool>> callers;
    for (int t = 0; t < 4; ++t) {
        callers.push_back(std::async(std::launch::async, [&pool, t] {
            bool all_right = true;
            for (int round = 0; round < 10; ++round) {
                const std::vector<int> input = range_vector(t * 1000, t * 1000 + 50 + round);
                all_right = all_right &&
                            pool.map(negate, input, 1 + round % 4) == expected_map(negate, input);
                auto stream = pool.imap_unordered(square, range_vector(t, t + 5));
                all_right = all_right && drain(stream).size() == 5;
            }
            return all_right;
        }));
    }
    for (auto& caller : callers) {
        ASSERT_EQ(caller.wait_for(long_wait), std::future_status::ready);
        EXPECT_TRUE(caller.get());
    }
}

} // namespace
