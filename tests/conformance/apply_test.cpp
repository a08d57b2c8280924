#include <stdexcept>

#include "pool_types.hpp"

namespace {

int add(int a, int b) { return a + b; }

template <class Pool>
class ApplyTest : public ::testing::Test {};
TYPED_TEST_SUITE(ApplyTest, PoolTypes);

TYPED_TEST(ApplyTest, ReturnsTheResult) {
    TypeParam pool(2);
    EXPECT_EQ(pool.apply(add, 3, 4), 7);
}

} // namespace
