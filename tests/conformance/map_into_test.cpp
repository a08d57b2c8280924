// SPDX-License-Identifier: MIT
// map_into: map whose results go into storage the caller provides.

#include <array>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

std::string repeat_y(int n) { return std::string(static_cast<std::size_t>(n), 'y'); }

template <class Pool>
class MapIntoTest : public PoolTest {};
TYPED_TEST_SUITE(MapIntoTest, PoolTypes);

TYPED_TEST(MapIntoTest, WritesEveryResultInInputOrder) {
    TypeParam pool(3);
    const std::vector<int> input = range_vector(-50, 150);
    for (std::ptrdiff_t chunksize : {1, 7, 1000}) {
        std::vector<int> out(input.size(), 12345);
        pool.map_into(square, input, out, chunksize);
        EXPECT_EQ(out, expected_map(square, input)) << "chunksize " << chunksize;
    }
    std::vector<int> out(input.size());
    pool.map_into(negate, input, out); // default chunksize
    EXPECT_EQ(out, expected_map(negate, input));
}

TYPED_TEST(MapIntoTest, ResultsConvertToTheOutputsElementType) {
    // int results into doubles: on a process pool they arrive as a block of ints, copied one
    // by one with the conversion (a block of the output's own type is copied whole).
    TypeParam pool(2);
    const std::vector<int> input = range_vector(-20, 20);
    std::vector<double> out(input.size(), 0.5);
    pool.map_into(square, input, out, 8);
    for (std::size_t i = 0; i < input.size(); ++i) {
        EXPECT_EQ(out[i], static_cast<double>(input[i] * input[i])) << "item " << i;
    }
}

TYPED_TEST(MapIntoTest, AcceptsSpansArraysAndLazyInputs) {
    TypeParam pool(2);
    std::array<long, 5> array{};
    pool.map_into(square, std::views::iota(0, 5), array); // not random access: copied first
    EXPECT_EQ(array, (std::array<long, 5>{0, 1, 4, 9, 16}));

    std::vector<int> buffer(10, -1);
    pool.map_into(square, std::vector<int>{2, 3}, std::span(buffer).subspan(4, 2));
    EXPECT_EQ(buffer, (std::vector<int>{-1, -1, -1, -1, 4, 9, -1, -1, -1, -1}));

    std::vector<std::string> strings(3);
    pool.map_into(repeat_y, std::vector<int>{1, 0, 2}, strings);
    EXPECT_EQ(strings, (std::vector<std::string>{"y", "", "yy"}));
}

TYPED_TEST(MapIntoTest, OutputOfTheWrongSizeIsRefusedBeforeAnythingRuns) {
    TypeParam pool(2);
    std::vector<int> out(3, 7);
    EXPECT_TRUE(throws_with<std::invalid_argument>(
        [&] {
            pool.map_into(never_called, std::vector<int>{1, 2}, out);
        },
        "out"));
    EXPECT_EQ(out, (std::vector<int>{7, 7, 7}));
    std::vector<int> none;
    pool.map_into(never_called, std::vector<int>{}, none); // empty: f is not called
}

TYPED_TEST(MapIntoTest, FailureThrowsAfterEveryChunkRan) {
    TypeParam pool(2);
    const std::vector<int> input{1, 2, -3, 4, 5, 6};
    std::vector<int> out(input.size(), 0);
    EXPECT_TRUE(throws_with<std::runtime_error>(
        [&] { pool.map_into(fail_if_negative, input, out, 2); }, "bad item -3"));
    // The chunks without a failure all ran (Python's map does not fail fast).
    EXPECT_EQ(out[0], 1);
    EXPECT_EQ(out[1], 2);
    EXPECT_EQ(out[4], 5);
    EXPECT_EQ(out[5], 6);
}

TYPED_TEST(MapIntoTest, RefusedAfterClose) {
    TypeParam pool(2);
    pool.close();
    std::vector<int> out(1);
    EXPECT_THROW(pool.map_into(square, std::vector<int>{1}, out), mproc::PoolNotRunning);
    pool.join();
}

} // namespace
