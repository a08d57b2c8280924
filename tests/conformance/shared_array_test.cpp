// SPDX-License-Identifier: MIT
// mproc::SharedArray: tasks read the caller's elements on every pool, and write into them
// where the pool's tasks share the caller's memory (ThreadPool, Pool; not MpiPool's ranks).

#include <cstddef>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

double sum_of(mproc::SharedArray<const double> values) {
    return std::accumulate(values.begin(), values.end(), 0.0);
}

std::size_t size_of(mproc::SharedArray<const int> values) { return values.size(); }

/// Writes the square of `i` at `i`: tasks write disjoint elements.
int square_into(std::pair<mproc::SharedArray<long>, int> target) {
    target.first[static_cast<std::size_t>(target.second)] =
        static_cast<long>(target.second) * target.second;
    return target.second;
}

/// Reads element `i` of the array: many tasks share one array.
double element_of(std::pair<mproc::SharedArray<const double>, int> source) {
    return source.first[static_cast<std::size_t>(source.second)];
}

mproc::SharedArray<const double> pass_back(mproc::SharedArray<const double> values) {
    return values;
}

long tripled(int x) { return 3L * x; }

template <class Pool>
class SharedArrayTest : public PoolTest {};
TYPED_TEST_SUITE(SharedArrayTest, PoolTypes);

TYPED_TEST(SharedArrayTest, ATaskReadsTheCallersElements) {
    TypeParam pool(2);
    mproc::SharedArray<double> values(100'000);
    std::iota(values.begin(), values.end(), 1.0);
    const double expected = std::accumulate(values.begin(), values.end(), 0.0);
    EXPECT_EQ(pool.apply(sum_of, mproc::SharedArray<const double>(values)), expected);
    EXPECT_EQ(pool.apply_async(sum_of, values).get(long_wait), expected);

    std::vector<std::pair<mproc::SharedArray<const double>, int>> reads;
    for (int i = 0; i < 1000; i += 7) {
        reads.emplace_back(values, i);
    }
    const std::vector<double> got = pool.map(element_of, reads, 3);
    ASSERT_EQ(got.size(), reads.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        EXPECT_EQ(got[k], values[static_cast<std::size_t>(reads[k].second)]);
    }
}

TYPED_TEST(SharedArrayTest, WhatTasksWriteReachesTheCallerWhereMemoryIsShared) {
    TypeParam pool(2);
    constexpr int n = 500;
    mproc::SharedArray<long> squares(n);
    std::vector<std::pair<mproc::SharedArray<long>, int>> targets;
    for (int i = 0; i < n; ++i) {
        targets.emplace_back(squares, i);
    }
    const std::vector<int> done = pool.map(square_into, targets, 16);
    ASSERT_EQ(done.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const long expected = tasks_share_the_callers_memory<TypeParam> ? long{i} * i : 0;
        ASSERT_EQ(squares[static_cast<std::size_t>(i)], expected) << "element " << i;
    }
}

// map and map_into over a SharedArray's elements, into a SharedArray's elements (where a
// process pool's workers read and write the caller's memory in place), also from and into parts
// of an array that start and end inside pages, and from plain memory into an array and back.
TYPED_TEST(SharedArrayTest, MapIntoASharedArrayFromASharedArray) {
    TypeParam pool(2);
    constexpr std::size_t n = 300'001; // chunks of the auto chunksize end inside pages
    mproc::SharedArray<int> in(n);
    std::iota(in.begin(), in.end(), -1000);
    mproc::SharedArray<long> out(n + 10);
    const mproc::SharedArray<const int> items = in;
    pool.map_into(tripled, items, std::span<long>(out.data() + 3, n));
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) {
        wrong += out[i + 3] != tripled(in[i]) ? 1 : 0;
    }
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(out[2], 0);
    EXPECT_EQ(out[n + 3], 0) << "written past the span";

    // A part of the input, chunks of a chosen size, into plain memory.
    std::vector<long> plain(1000);
    pool.map_into(tripled, std::span<const int>(in.data() + 17, plain.size()), plain, 7);
    for (std::size_t i = 0; i < plain.size(); ++i) {
        ASSERT_EQ(plain[i], tripled(in[i + 17])) << "element " << i;
    }
    // Plain memory into the array.
    const std::vector<int> small{1, 2, 3, 4, 5};
    pool.map_into(tripled, small, std::span<long>(out.data(), small.size()), 2);
    EXPECT_EQ(out[0], 3);
    EXPECT_EQ(out[4], 15);
    // map's own results from a SharedArray's elements.
    const std::vector<long> mapped = pool.map(tripled, items);
    ASSERT_EQ(mapped.size(), n);
    EXPECT_EQ(mapped[0], tripled(in[0]));
    EXPECT_EQ(mapped[n - 1], tripled(in[n - 1]));
}

TYPED_TEST(SharedArrayTest, EmptyArraysCross) {
    TypeParam pool(1);
    EXPECT_EQ(pool.apply(size_of, mproc::SharedArray<const int>()), 0u);
    EXPECT_EQ(pool.apply(size_of, mproc::SharedArray<const int>(mproc::SharedArray<int>(0))), 0u);
    EXPECT_EQ(pool.apply(size_of, mproc::SharedArray<const int>(mproc::SharedArray<int>(3))), 3u);
}

TYPED_TEST(SharedArrayTest, AnArrayReturnedByATaskHasTheElements) {
    TypeParam pool(1);
    mproc::SharedArray<double> values(std::vector<double>{1.5, 2.5, 4.0});
    const mproc::SharedArray<const double> back = pool.apply(pass_back, values);
    ASSERT_EQ(back.size(), 3u);
    EXPECT_EQ(back[0], 1.5);
    EXPECT_EQ(back[2], 4.0);
}

TEST(SharedArray, CopiesShareTheirElements) {
    mproc::SharedArray<int> a(4);
    mproc::SharedArray<int> b = a;
    b[2] = 7;
    EXPECT_EQ(a[2], 7);
    EXPECT_TRUE(a.shares_memory_with(b));
    EXPECT_FALSE(a.shares_memory_with(mproc::SharedArray<int>(4)));
}

} // namespace
