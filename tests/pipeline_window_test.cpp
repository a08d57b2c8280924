// SPDX-License-Identifier: MIT
// The pipelined window's policy (src/pipeline_window.hpp) on synthetic times: how deep a worker's
// window grows from the times its chunks take, and when it is refilled, for the process
// backend's policy (times its workers measure) and the MPI hub's (round trips it measures).

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>

#include "../src/pipeline_window.hpp"

namespace {

using namespace std::chrono_literals;
using mproc::detail::Clock;
using mproc::detail::mpi_window_policy;
using mproc::detail::PipelineWindow;
using mproc::detail::process_window_policy;

int job = 0; // jobs: compared by address only
int other_job = 0;

/// A process backend's window measuring `job`, after `count` chunks that each ran `ran`.
PipelineWindow process_window_after(std::size_t count, Clock::duration ran) {
    PipelineWindow window(process_window_policy);
    window.measure(&job);
    for (std::size_t i = 0; i < count; ++i) {
        window.learn(ran);
    }
    return window;
}

// ---- the process backend's policy ----

TEST(ProcessPipelineWindow, StartsOneChunkDeepWithoutAnEstimate) {
    const PipelineWindow window(process_window_policy);
    EXPECT_EQ(window.depth(), 1u);
    EXPECT_EQ(window.estimate(), 0.0);
    EXPECT_FALSE(window.measures(&job));
}

TEST(ProcessPipelineWindow, DeepensOnlyOnceFourShortChunksInARowRan) {
    PipelineWindow window(process_window_policy);
    window.measure(&job);
    for (int i = 0; i < 3; ++i) {
        window.learn(5us);
        EXPECT_EQ(window.depth(), 1u) << "after " << i + 1 << " short chunks";
    }
    window.learn(5us);
    // The running chunk, and ceil(30 us / 5 us) = 6 behind it.
    EXPECT_EQ(window.depth(), 7u);
    EXPECT_EQ(window.estimate(), 5000.0); // nanoseconds
}

TEST(ProcessPipelineWindow, ShortChunksBeforeALongOneDoNotDeepenTheWindow) {
    PipelineWindow window(process_window_policy);
    window.measure(&job);
    for (int i = 0; i < 3; ++i) {
        window.learn(5us);
    }
    window.learn(2ms);
    EXPECT_EQ(window.depth(), 1u);
    EXPECT_EQ(window.estimate(), 2e6); // a long chunk replaces the estimate at once
    for (int i = 0; i < 3; ++i) {
        window.learn(5us);
        EXPECT_EQ(window.depth(), 1u) << "the count starts again after a long chunk";
    }
    window.learn(5us);
    EXPECT_EQ(window.depth(), 7u);
}

TEST(ProcessPipelineWindow, ALongChunkTakesADeepWindowBackToOneAtOnce) {
    PipelineWindow window = process_window_after(10, 2us);
    ASSERT_EQ(window.depth(), 16u); // 1 + 30 / 2
    window.learn(1ms);              // one_ahead_below itself counts as long
    EXPECT_EQ(window.depth(), 1u);
}

TEST(ProcessPipelineWindow, ChunksBetweenTheLatencyAndOneMillisecondHaveOneBehind) {
    EXPECT_EQ(process_window_after(4, 30us).depth(), 2u);
    EXPECT_EQ(process_window_after(4, 500us).depth(), 2u);
    EXPECT_EQ(process_window_after(4, 999999ns).depth(), 2u);
    EXPECT_EQ(process_window_after(4, 1ms).depth(), 1u);
}

TEST(ProcessPipelineWindow, CoversTheLatencyWithWholeChunksRoundedUp) {
    EXPECT_EQ(process_window_after(4, 10us).depth(), 4u);         // 30 / 10 = 3 exactly
    EXPECT_EQ(process_window_after(4, 7us).depth(), 6u);          // ceil(4.29) = 5
    EXPECT_EQ(process_window_after(4, 29999ns).depth(), 3u);      // ceil(1.00003) = 2
    EXPECT_EQ(process_window_after(4, 1001ns).depth(), 1u + 30u); // ceil(29.97) = 30
}

TEST(ProcessPipelineWindow, HoldsAtMostThirtyTwoChunksBehindTheRunningOne) {
    EXPECT_EQ(process_window_after(4, 900ns).depth(), 33u); // 34 would cover the latency
    EXPECT_EQ(process_window_after(4, 1ns).depth(), 33u);
    EXPECT_EQ(process_window_after(4, 0ns).depth(), 33u); // a chunk too fast to time
}

TEST(ProcessPipelineWindow, ASlowerChunkCountsAtOnceAndAFasterOneAnEighth) {
    PipelineWindow window = process_window_after(4, 5us);
    window.learn(20us);
    EXPECT_EQ(window.estimate(), 20000.0);
    EXPECT_EQ(window.depth(), 3u); // 1 + ceil(1.5)
    window.learn(4us);
    EXPECT_EQ(window.estimate(), 18000.0); // (7 * 20000 + 4000) / 8
    window.learn(1us);
    EXPECT_EQ(window.estimate(), 15875.0); // (7 * 18000 + 1000) / 8
    window.learn(2us);
    EXPECT_EQ(window.estimate(), 14140.0); // 113125 / 8, rounded down to whole nanoseconds
    EXPECT_EQ(window.depth(), 4u);         // 1 + ceil(2.12)
}

TEST(ProcessPipelineWindow, AnotherJobStartsAfresh) {
    PipelineWindow window = process_window_after(4, 5us);
    window.measure(&job); // the same job: nothing changes
    EXPECT_EQ(window.depth(), 7u);
    window.measure(&other_job);
    EXPECT_TRUE(window.measures(&other_job));
    EXPECT_FALSE(window.measures(&job));
    EXPECT_EQ(window.depth(), 1u);
    EXPECT_EQ(window.estimate(), 0.0);
    window.learn(20us); // the first chunk of the new job sets the estimate, slower or not
    window.learn(20us);
    window.learn(20us);
    window.learn(20us);
    EXPECT_EQ(window.depth(), 3u);
}

TEST(ProcessPipelineWindow, AForgottenJobKeepsItsFiguresUntilTheNextChunkIsSent) {
    PipelineWindow window = process_window_after(4, 5us);
    window.forget_job();
    EXPECT_FALSE(window.measures(&job));
    EXPECT_EQ(window.depth(), 7u);
    window.measure(&job); // the same address may be a new job now
    EXPECT_EQ(window.depth(), 1u);
}

TEST(ProcessPipelineWindow, IsRefilledOnceHalfOfTheChunksBehindTheRunningOneAreDone) {
    const PipelineWindow seven = process_window_after(4, 5us); // 6 may wait
    ASSERT_EQ(seven.depth(), 7u);
    EXPECT_TRUE(seven.refill_due(1));
    EXPECT_TRUE(seven.refill_due(4)); // 3 waiting: half of 6
    EXPECT_FALSE(seven.refill_due(5));
    EXPECT_FALSE(seven.refill_due(7));
    const PipelineWindow six = process_window_after(4, 6us); // 5 may wait
    ASSERT_EQ(six.depth(), 6u);
    EXPECT_TRUE(six.refill_due(3)); // 2 waiting: at most half of 5
    EXPECT_FALSE(six.refill_due(4));
    const PipelineWindow two = process_window_after(4, 100us);
    ASSERT_EQ(two.depth(), 2u);
    EXPECT_TRUE(two.refill_due(1));
    EXPECT_FALSE(two.refill_due(2));
}

// ---- the MPI hub's policy: round trips, per worker process of a rank ----

/// Answers from a rank of `workers` worker processes to chunks sent one at a time, each when the
/// previous answer came (the rank was idle: each time is a round trip).
class MpiPipelineWindow : public ::testing::Test {
  protected:
    PipelineWindow window{mpi_window_policy};
    Clock::time_point now = Clock::time_point{} + 1s;

    void round_trip(Clock::duration took, std::size_t workers = 1) {
        const Clock::time_point sent = now;
        now += took;
        window.learn_from_answer(sent, now, workers);
        now += 1us; // the next chunk leaves after the answer
    }
};

TEST_F(MpiPipelineWindow, DeepensOnlyOnceFourQuickAnswersInARowCame) {
    window.measure(&job);
    for (int i = 0; i < 3; ++i) {
        round_trip(20us);
        EXPECT_EQ(window.depth(), 1u) << "after " << i + 1 << " answers";
    }
    round_trip(20us);
    EXPECT_EQ(window.estimate(), 20.0); // microseconds
    // Twice the chunks that pass 100 us: 2 * (5 + 1).
    EXPECT_EQ(window.depth(), 12u);
}

TEST_F(MpiPipelineWindow, AQuickAnswerBeforeSlowOnesDoesNotDeepenTheWindow) {
    window.measure(&job);
    round_trip(20us);
    round_trip(20us);
    round_trip(20us);
    round_trip(3ms);
    EXPECT_EQ(window.depth(), 1u);
    round_trip(20us);
    round_trip(20us);
    round_trip(20us);
    EXPECT_EQ(window.depth(), 1u); // three in a row since the slow one, and a slow estimate
}

TEST_F(MpiPipelineWindow, AveragesEveryAnswerAnEighthOfTheWay) {
    window.measure(&job);
    round_trip(40us);
    EXPECT_EQ(window.estimate(), 40.0);
    round_trip(120us);
    EXPECT_EQ(window.estimate(), 50.0);
    round_trip(10us);
    EXPECT_EQ(window.estimate(), 45.0);
    round_trip(5us);
    EXPECT_EQ(window.estimate(), 40.0);
    EXPECT_EQ(window.depth(), 6u); // 2 * floor(100 / 40 + 1)
}

TEST_F(MpiPipelineWindow, CountsTheChunksThatPassTheLatencyTwice) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(50us);
    }
    EXPECT_EQ(window.depth(), 6u); // 100 / 50 = 2 exactly: 2 * 3
}

TEST_F(MpiPipelineWindow, AnswersBetweenTheLatencyAndOneMillisecondHaveOneAhead) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(400us);
    }
    EXPECT_EQ(window.depth(), 2u);
}

TEST_F(MpiPipelineWindow, HoldsAtMostSixtyFourChunksPerWorker) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(1us);
    }
    EXPECT_EQ(window.depth(), 64u);
}

TEST_F(MpiPipelineWindow, AChunkThatWaitedAtTheRankCountsFromThePreviousAnswer) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(20us);
    }
    ASSERT_EQ(window.depth(), 12u);
    // Sent before the last answer: it waited behind it, and the rank's 2 workers answer twice
    // as often as one would: 2 * 8 us.
    const Clock::time_point last_answer = now - 1us;
    window.learn_from_answer(last_answer - 50us, last_answer + 8us, 2);
    EXPECT_EQ(window.estimate(), 20.0 + (16.0 - 20.0) / 8);
}

TEST_F(MpiPipelineWindow, ARankThatRanDryTeachesNothing) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(20us);
    }
    ASSERT_EQ(window.depth(), 12u);
    round_trip(900us); // sent after the previous answer, with the window deeper than 1
    EXPECT_EQ(window.estimate(), 20.0);
    EXPECT_EQ(window.depth(), 12u);
}

TEST_F(MpiPipelineWindow, AnotherJobStartsAfreshButForgettingKeepsTheFigures) {
    window.measure(&job);
    for (int i = 0; i < 4; ++i) {
        round_trip(20us);
    }
    window.forget_job();
    EXPECT_EQ(window.depth(), 12u);
    EXPECT_EQ(window.estimate(), 20.0);
    window.measure(&other_job);
    EXPECT_EQ(window.depth(), 1u);
    EXPECT_EQ(window.estimate(), 0.0);
}

TEST_F(MpiPipelineWindow, IsRefilledOnceHalfOfTheRanksWindowIsFree) {
    window.measure(&job);
    EXPECT_TRUE(window.refill_due(0, 2));
    EXPECT_TRUE(window.refill_due(1, 2)); // depth 1: 2 chunks for 2 workers
    EXPECT_FALSE(window.refill_due(2, 2));
    for (int i = 0; i < 4; ++i) {
        round_trip(20us);
    }
    ASSERT_EQ(window.depth(), 12u); // 24 chunks for 2 workers
    EXPECT_TRUE(window.refill_due(12, 2));
    EXPECT_FALSE(window.refill_due(13, 2));
    EXPECT_FALSE(window.refill_due(30, 2)); // more in flight than the window (it shrank)
}

} // namespace
