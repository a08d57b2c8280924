// SPDX-License-Identifier: MIT
// mproc::batched and mproc::lines on every pool class: batches of n items (the last one
// shorter), lazily, also over endless input; the lines of a stream, not its words.

#include <cstddef>
#include <functional>
#include <numeric>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

long sum_of(const std::vector<int>& batch) {
    return std::accumulate(batch.begin(), batch.end(), 0L);
}

/// Words: runs of characters other than ' '.
std::size_t words_in(const std::string& line) {
    std::size_t count = 0;
    char before = ' ';
    for (const char c : line) {
        count += c != ' ' && before == ' ' ? 1 : 0;
        before = c;
    }
    return count;
}

std::size_t words_in_block(const std::vector<std::string>& lines) {
    return std::transform_reduce(lines.begin(), lines.end(), std::size_t{0}, std::plus<>(),
                                 words_in);
}

template <class Pool>
class InputHelpersTest : public PoolTest {};
TYPED_TEST_SUITE(InputHelpersTest, PoolTypes);

TYPED_TEST(InputHelpersTest, BatchedGivesBatchesOfNTheLastOneShorter) {
    TypeParam pool(2);
    const std::vector<int> items = range_vector(0, 10);
    EXPECT_EQ(pool.map(sum_of, mproc::batched(items, 4)), (std::vector<long>{6, 22, 17}));
    EXPECT_EQ(pool.map(sum_of, mproc::batched(items, 10)), (std::vector<long>{45}));
    EXPECT_EQ(pool.map(sum_of, mproc::batched(items, 1000)), (std::vector<long>{45}));
    EXPECT_EQ(pool.map(sum_of, mproc::batched(std::vector<int>{}, 3)), (std::vector<long>{}));
    // An rvalue input is moved into the batches.
    EXPECT_EQ(pool.map(sum_of, mproc::batched(range_vector(1, 4), 2)), (std::vector<long>{3, 3}));
    EXPECT_THROW((void)mproc::batched(items, 0), std::invalid_argument);
    EXPECT_THROW((void)mproc::batched(items, -1), std::invalid_argument);
}

TYPED_TEST(InputHelpersTest, BatchedReadsEndlessInputLazily) {
    TypeParam pool(2);
    std::vector<long> sums;
    for (long sum : pool.imap(sum_of, mproc::batched(std::views::iota(0), 3))) {
        sums.push_back(sum);
        if (sums.size() == 4) {
            break;
        }
    }
    EXPECT_EQ(sums, (std::vector<long>{3, 12, 21, 30}));
}

TYPED_TEST(InputHelpersTest, LinesGivesLinesNotWords) {
    TypeParam pool(2);
    std::istringstream text("one two\n\nthree four five\nlast line without newline");
    EXPECT_EQ(pool.map(words_in, mproc::lines(text)), (std::vector<std::size_t>{2, 0, 3, 4}));
    std::istringstream empty("");
    EXPECT_TRUE(pool.map(words_in, mproc::lines(empty)).empty());
    std::istringstream one_newline("\n");
    EXPECT_EQ(pool.map(words_in, mproc::lines(one_newline)), (std::vector<std::size_t>{0}));
}

TYPED_TEST(InputHelpersTest, BlocksOfLinesCountEveryWord) {
    TypeParam pool(2);
    std::string text;
    std::size_t expected = 0;
    for (int line = 0; line < 1000; ++line) {
        for (int word = 0; word <= line % 7; ++word) {
            text += "w ";
            ++expected;
        }
        text += '\n';
    }
    std::istringstream in(text);
    std::size_t total = 0;
    for (std::size_t count :
         pool.imap_unordered(words_in_block, mproc::batched(mproc::lines(in), 64))) {
        total += count;
    }
    EXPECT_EQ(total, expected);
}

} // namespace
