// SPDX-License-Identifier: MIT
// starmap and starmap_async: map whose items are tuples or pairs unpacked into the arguments.

#include <list>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

std::string label(const std::string& name, int count, char suffix) {
    return name + ":" + std::to_string(count) + suffix;
}
int subtract(int a, int b) { return a - b; }
int fail_if_equal(int a, int b) {
    if (a == b) {
        throw std::invalid_argument("equal pair " + std::to_string(a));
    }
    return a - b;
}
void ignore_pair(int, int) {}

std::vector<std::pair<int, int>> pairs(int n) {
    std::vector<std::pair<int, int>> v;
    for (int i = 0; i < n; ++i)
        v.emplace_back(i, 2 * i + 1);
    return v;
}
std::vector<int> expected_sums(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i)
        v.push_back(i + 2 * i + 1);
    return v;
}

template <class Pool>
class StarmapTest : public PoolTest {};
TYPED_TEST_SUITE(StarmapTest, PoolTypes);

TYPED_TEST(StarmapTest, UnpacksPairsInInputOrder) {
    TypeParam pool(3);
    EXPECT_EQ(pool.starmap(add, pairs(40)), expected_sums(40));
    EXPECT_EQ(pool.starmap(subtract, std::vector<std::pair<int, int>>{{5, 1}, {1, 5}, {0, 0}}),
              (std::vector<int>{4, -4, 0}));
}

TYPED_TEST(StarmapTest, UnpacksTuplesOfMixedTypes) {
    TypeParam pool(2);
    const std::vector<std::tuple<std::string, int, char>> input{
        {"a", 1, '!'}, {"bc", 22, '?'}, {"", 0, '.'}};
    EXPECT_EQ(pool.starmap(label, input), (std::vector<std::string>{"a:1!", "bc:22?", ":0."}));
    EXPECT_EQ(pool.starmap(label, input, 1), (std::vector<std::string>{"a:1!", "bc:22?", ":0."}));
}

TYPED_TEST(StarmapTest, ChunksizeDoesNotChangeTheResults) {
    TypeParam pool(2);
    for (std::ptrdiff_t chunksize : {1, 3, 39, 40, 41, 500}) {
        EXPECT_EQ(pool.starmap(add, pairs(40), chunksize), expected_sums(40))
            << "chunksize " << chunksize;
    }
}

TYPED_TEST(StarmapTest, NonRandomAccessAndEmptyInput) {
    TypeParam pool(2);
    const std::list<std::tuple<int, int>> list{{1, 2}, {3, 4}};
    EXPECT_EQ(pool.starmap(add, list), (std::vector<int>{3, 7}));
    // never_called throws: it must not be called for an empty input.
    EXPECT_TRUE(
        pool.starmap([](int a, int) { return never_called(a); }, std::vector<std::pair<int, int>>{})
            .empty());
}

TYPED_TEST(StarmapTest, VoidFunctionGivesMonostates) {
    TypeParam pool(2);
    const auto out = pool.starmap(ignore_pair, pairs(3));
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(out)>, std::vector<std::monostate>>);
    EXPECT_EQ(out.size(), 3u);
}

TYPED_TEST(StarmapTest, ErrorOfAnItemReachesTheCaller) {
    TypeParam pool(2);
    EXPECT_TRUE(throws_with<std::invalid_argument>(
        [&] {
            pool.starmap(fail_if_equal, std::vector<std::pair<int, int>>{{1, 2}, {3, 3}});
        },
        "equal pair 3"));
}

TYPED_TEST(StarmapTest, StarmapAsyncReturnsAnAsyncResultOfTheVector) {
    TypeParam pool(2);
    auto result = pool.starmap_async(add, pairs(25));
    static_assert(std::is_same_v<decltype(result), mproc::AsyncResult<std::vector<int>>>);
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_TRUE(result.successful());
    EXPECT_EQ(result.get(), expected_sums(25));

    auto chunked = pool.starmap_async(add, pairs(25), 4);
    ASSERT_TRUE(chunked.wait(long_wait));
    EXPECT_EQ(chunked.get(), expected_sums(25));
}

TYPED_TEST(StarmapTest, StarmapAsyncCallbacks) {
    TypeParam pool(2);
    int successes = 0;
    int errors = 0;
    std::vector<int> seen;
    std::string error_message;
    auto both = [&] {
        return mproc::callbacks(
            [&](const std::vector<int>& v) {
                ++successes;
                seen = v;
            },
            [&](std::exception_ptr e) {
                ++errors;
                try {
                    std::rethrow_exception(e);
                } catch (const std::invalid_argument& error) {
                    error_message = error.what();
                }
            });
    };
    auto ok = pool.starmap_async(add, pairs(10), mproc::auto_chunksize, both());
    ASSERT_TRUE(ok.wait(long_wait));
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(seen, expected_sums(10));

    auto bad = pool.starmap_async(fail_if_equal, std::vector<std::pair<int, int>>{{1, 2}, {4, 4}},
                                  1, both());
    ASSERT_TRUE(bad.wait(long_wait));
    EXPECT_FALSE(bad.successful());
    EXPECT_EQ(successes, 1);
    EXPECT_EQ(errors, 1);
    EXPECT_EQ(error_message, "equal pair 4");
}

TYPED_TEST(StarmapTest, StarmapAsyncDoesNotNeedTheCallersInputToStayAlive) {
    TypeParam pool(1);
    mproc::AsyncResult<std::vector<int>> result;
    {
        auto blocker = pool.apply_async(sleep_ms, 30);
        auto input = pairs(12);
        result = pool.starmap_async(add, input, 5);
        input.assign(12, {-1, -1});
    }
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), expected_sums(12));
}

} // namespace
