// SPDX-License-Identifier: MIT
// map_outcomes, imap_outcomes, imap_unordered_outcomes: every item's value or error, so one bad
// item costs one error instead of the whole call. The same on every pool class.

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

template <class Pool>
class OutcomesTest : public PoolTest {};
TYPED_TEST_SUITE(OutcomesTest, PoolTypes);

/// Checks `outcomes` against fail_if_negative over `input`: values where x >= 0, the task's
/// std::runtime_error where x < 0.
template <class Outcomes>
void expect_fail_if_negative_outcomes(const Outcomes& outcomes, const std::vector<int>& input) {
    ASSERT_EQ(outcomes.size(), input.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
        if (input[i] >= 0) {
            ASSERT_TRUE(outcomes[i].has_value()) << "item " << i;
            EXPECT_EQ(*outcomes[i], input[i]);
            EXPECT_EQ(outcomes[i].error(), nullptr);
        } else {
            ASSERT_FALSE(outcomes[i]) << "item " << i;
            EXPECT_TRUE(throws_with<std::runtime_error>([&] { (void)outcomes[i].value(); },
                                                        "bad item " + std::to_string(input[i])));
        }
    }
}

TYPED_TEST(OutcomesTest, MapOutcomesKeepsEveryGoodResultAroundFailures) {
    TypeParam pool(3);
    std::vector<int> input = range_vector(0, 100);
    for (int bad : {0, 7, 8, 50, 99}) {
        input[bad] = -input[bad] - 1;
    }
    for (std::ptrdiff_t chunksize : {1, 4, 1000}) {
        SCOPED_TRACE(chunksize);
        expect_fail_if_negative_outcomes(pool.map_outcomes(fail_if_negative, input, chunksize),
                                         input);
    }
    expect_fail_if_negative_outcomes(pool.map_outcomes(fail_if_negative, input), input);
    // Python's map keeps its rule: one failure, and the call throws.
    EXPECT_THROW(pool.map(fail_if_negative, input), std::runtime_error);
}

TYPED_TEST(OutcomesTest, MapOutcomesOfAnUnsizedInputAndOfNothing) {
    TypeParam pool(2);
    const auto outcomes = pool.map_outcomes(square, Generator(0, 30));
    ASSERT_EQ(outcomes.size(), 30u);
    for (int i = 0; i < 30; ++i) {
        EXPECT_EQ(outcomes[static_cast<std::size_t>(i)].value(), i * i);
    }
    EXPECT_TRUE(pool.map_outcomes(square, std::vector<int>{}).empty());
    EXPECT_THROW(pool.map_outcomes(square, std::vector<int>{1}, 0), std::invalid_argument);
}

TYPED_TEST(OutcomesTest, ImapOutcomesStreamsErrorsAsItemsInInputOrder) {
    TypeParam pool(3);
    std::vector<int> input = range_vector(0, 60);
    for (int bad : {3, 4, 30}) {
        input[bad] = -input[bad];
    }
    auto stream = pool.imap_outcomes(fail_if_negative, input, 2);
    expect_fail_if_negative_outcomes(drain(stream), input);
}

TYPED_TEST(OutcomesTest, ImapUnorderedOutcomesYieldsEachItemOnce) {
    TypeParam pool(3);
    std::vector<int> input = range_vector(1, 61);
    for (int bad : {0, 10, 59}) {
        input[bad] = -input[bad];
    }
    auto stream = pool.imap_unordered_outcomes(fail_if_negative, input, 3);
    std::vector<int> values;
    std::vector<std::string> errors;
    for (const auto& outcome : stream) {
        if (outcome) {
            values.push_back(*outcome);
        } else {
            try {
                std::rethrow_exception(outcome.error());
            } catch (const std::runtime_error& e) {
                errors.emplace_back(e.what());
            }
        }
    }
    std::sort(values.begin(), values.end());
    std::sort(errors.begin(), errors.end());
    std::vector<int> good;
    for (int x : input) {
        if (x > 0) good.push_back(x);
    }
    EXPECT_EQ(values, good);
    EXPECT_EQ(errors, (std::vector<std::string>{"bad item -1", "bad item -11", "bad item -60"}));
}

TYPED_TEST(OutcomesTest, AnInputErrorIsStillThrownAfterTheOutcomesBeforeIt) {
    TypeParam pool(2);
    auto stream = pool.imap_outcomes(square, Generator(0, 10, 5));
    for (int i = 0; i < 5; ++i) {
        const auto outcome = stream.next(long_wait);
        ASSERT_TRUE(outcome.has_value());
        EXPECT_EQ(outcome->value(), i * i);
    }
    EXPECT_TRUE(
        throws_with<std::out_of_range>([&] { stream.next(long_wait); }, "input failed at 5"));
    EXPECT_THROW(pool.map_outcomes(square, Generator(0, 10, 5)), std::out_of_range);
}

TEST(Outcome, HoldsAValueOrAnError) {
    mproc::Outcome<std::string> good(std::string("text"));
    EXPECT_TRUE(good.has_value());
    EXPECT_EQ(good.value(), "text");
    EXPECT_EQ(good->size(), 4u);
    mproc::Outcome<std::string> bad(std::make_exception_ptr(std::out_of_range("gone")));
    EXPECT_FALSE(bad);
    EXPECT_THROW((void)bad.value(), std::out_of_range);
    EXPECT_THROW((void)mproc::Outcome<int>(std::exception_ptr()), std::invalid_argument);
}

} // namespace
