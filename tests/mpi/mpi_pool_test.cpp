// SPDX-License-Identifier: MIT
// What only mproc::MpiPool does, run under mpirun with 3 ranks (rank 0 runs the tests, ranks 1
// and 2 serve): tasks run on the worker ranks, in worker processes of theirs; a crashing task
// costs one WorkerLost and its rank goes on; errors name the rank and host; a free rank takes
// the next chunk (no static split).

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include "worker_crashes.hpp"

namespace {

using namespace std::chrono_literals;

/// The MPI rank a task ran on: worker ids count from rank << 40 on each rank.
int rank_of_this_task(int) { return static_cast<int>(mproc::this_worker::id() >> 40); }

long pid_of_this_task(int) { return static_cast<long>(getpid()); }

int crash(int) {
    raise(SIGSEGV);
    return 0;
}

int square(int x) { return x * x; }

class ParseError : public std::exception {
  public:
    const char* what() const noexcept override { return "no digits"; }
};
int throw_parse_error(int) { throw ParseError(); }
int throw_runtime_error(int) { throw std::runtime_error("plain runtime_error"); }

/// Sleeps x milliseconds, returns the rank it ran on.
int sleep_then_rank(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return rank_of_this_task(0);
}

TEST(MpiPoolTest, DefaultsToOneWorkerPerWorkerRank) {
    mproc::MpiPool pool;
    EXPECT_EQ(pool.workers(), 2u);
}

TEST(MpiPoolTest, TasksRunOnWorkerRanksInProcessesOtherThanTheCaller) {
    mproc::MpiPool pool(4);
    const std::vector<int> ranks = pool.map(rank_of_this_task, std::vector<int>(40, 0), 1);
    EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()), (std::set<int>{1, 2}));
    const std::vector<long> pids = pool.map(pid_of_this_task, std::vector<int>(20, 0), 1);
    EXPECT_EQ(std::set<long>(pids.begin(), pids.end()).count(static_cast<long>(getpid())), 0u);
}

TEST(MpiPoolTest, ACrashingTaskCostsOneWorkerLostAndItsRankGoesOn) {
    mproc::MpiPool pool(2);
    try {
        pool.apply(crash, 0);
        FAIL() << "the crash came back as a value";
    } catch (const mproc::WorkerLost& lost) {
        const std::string message = lost.what();
        EXPECT_NE(message.find("died"), std::string::npos) << message;
        EXPECT_NE(message.find("while running task 0"), std::string::npos) << message;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
        // (A sanitizer turns the SIGSEGV into a report and an exit status.)
        EXPECT_NE(message.find("Segmentation fault"), std::string::npos) << message;
#endif
        EXPECT_NE(message.find("MPI rank "), std::string::npos) << message;
        EXPECT_NE(message.find("host "), std::string::npos) << message;
    }
    // Both ranks still serve: every item of a map that needs both comes back.
    const std::vector<int> ranks = pool.map(sleep_then_rank, std::vector<int>(8, 20), 1);
    EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()), (std::set<int>{1, 2}));
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TEST(MpiPoolTest, ARemoteErrorNamesTheRankAndHost) {
    mproc::MpiPool pool(2);
    try {
        pool.apply(throw_parse_error, 0);
        FAIL() << "no exception";
    } catch (const mproc::RemoteError& error) {
        EXPECT_EQ(error.type_name(), "(anonymous namespace)::ParseError");
        EXPECT_EQ(error.message(), "no digits");
        EXPECT_NE(error.origin().find("MPI rank "), std::string::npos) << error.origin();
        EXPECT_NE(error.origin().find("(host "), std::string::npos) << error.origin();
        EXPECT_NE(std::string(error.what()).find(error.origin()), std::string::npos)
            << error.what();
    }
}

TEST(MpiPoolTest, AStandardExceptionKeepsItsMessageAndCarriesTheRankNested) {
    mproc::MpiPool pool(2);
    try {
        pool.apply(throw_runtime_error, 0);
        FAIL() << "no exception";
    } catch (const std::runtime_error& error) {
        EXPECT_STREQ(error.what(), "plain runtime_error");
        try {
            std::rethrow_if_nested(error);
            FAIL() << "no origin nested in the exception";
        } catch (const mproc::Error& origin) {
            EXPECT_NE(std::string(origin.what()).find("raised on MPI rank "), std::string::npos)
                << origin.what();
        }
    }
}

TEST(MpiPoolTest, AFreeRankTakesTheNextChunk) {
    // One worker per rank. The first item keeps one rank busy for a second; a static split
    // would still hand that rank half the items, while a free rank taking the next chunk runs
    // every short item on the other rank.
    mproc::MpiPool pool(2);
    std::vector<int> input(9, 10);
    input.insert(input.begin(), 1000);
    std::map<int, int> items_per_rank;
    for (int rank : pool.imap_unordered(sleep_then_rank, input)) {
        ++items_per_rank[rank];
    }
    ASSERT_EQ(items_per_rank.size(), 2u);
    std::multiset<int> counts;
    for (const auto& [rank, count] : items_per_rank) {
        counts.insert(count);
    }
    EXPECT_EQ(counts, (std::multiset<int>{1, 9}));
}

TEST(MpiPoolTest, ChunksSentAheadForShortTasksDoNotHoldBackTheNextCallsLongOnes) {
    // Thousands of trivial tasks first: each rank's window grows deep. The next call's chunks
    // are long; were they sent that far ahead, the rank running the one-second item would hold
    // short items behind it. A free rank must take them instead, as without pipelining.
    mproc::MpiPool pool(2);
    EXPECT_EQ(pool.map(square, std::vector<int>(5000, 3), 1), std::vector<int>(5000, 9));
    std::vector<int> input(9, 10);
    input.insert(input.begin(), 1000);
    const std::vector<int> ranks = pool.map(sleep_then_rank, input, 1);
    std::map<int, int> items_per_rank;
    for (int rank : ranks) {
        ++items_per_rank[rank];
    }
    EXPECT_EQ(items_per_rank[ranks[0]], 1) << "short items waited behind the long one";
}

/// Spins x microseconds of the steady clock, then returns x.
int spin_us(int x) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(x);
    while (std::chrono::steady_clock::now() < until) {
    }
    return x;
}

TEST(MpiPoolTest, TasksOfAFewHundredMicrosecondsAreSentOneAhead) {
    // Their round trip would cost them a large part of their time, so once a few answered, each
    // rank gets one more chunk per worker than it runs. ctest runs this test alone with
    // MPROC_TRACE=1 too, and looks for the hub's "window now 2 chunks per worker". On a loaded
    // machine a 150 us task can take milliseconds of wall time, for which the hub rightly sends
    // nothing ahead: so five pools in turn try, and one hub that grew its window is enough.
    for (int round = 0; round < 5; ++round) {
        mproc::MpiPool pool(2);
        EXPECT_EQ(pool.map(spin_us, std::vector<int>(600, 150), 1), std::vector<int>(600, 150));
    }
}

TEST(MpiPoolTest, PoolsOpenOneAfterAnotherAndSideBySide) {
    for (int i = 0; i < 20; ++i) {
        mproc::MpiPool first(1);
        mproc::MpiPool second(3);
        EXPECT_EQ(first.apply(square, i), i * i);
        EXPECT_EQ(second.map(square, std::vector<int>{i, i + 1}),
                  (std::vector<int>{i * i, (i + 1) * (i + 1)}));
    }
}

/// Crashes (SIGSEGV) on item 777, returns x * x otherwise.
int crash_on_777(int x) {
    if (x == 777) {
        raise(SIGSEGV);
    }
    return x * x;
}

int sleep_ms_then_square(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms * ms;
}

TEST(MpiPoolTest, ACrashAmongManyShortPipelinedTasksCostsExactlyThatTask) {
    // Thousands of trivial chunks: each rank gets many in flight at once (and its worker process
    // a window of them). The crash costs its own item one WorkerLost naming the rank; the chunks
    // sent along with it still run (the rank's pool sends the unstarted ones to the new worker).
    mproc::MpiPool pool(2);
    std::vector<int> input(3000);
    for (int i = 0; i < 3000; ++i) {
        input[static_cast<std::size_t>(i)] = i;
    }
    const auto outcomes = pool.map_outcomes(crash_on_777, input, 1);
    ASSERT_EQ(outcomes.size(), input.size());
    for (int i = 0; i < 3000; ++i) {
        const auto& outcome = outcomes[static_cast<std::size_t>(i)];
        if (i != 777) {
            ASSERT_TRUE(outcome.has_value()) << "item " << i;
            EXPECT_EQ(outcome.value(), i * i);
            continue;
        }
        ASSERT_FALSE(outcome.has_value());
        try {
            std::rethrow_exception(outcome.error());
        } catch (const mproc::WorkerLost& lost) {
            EXPECT_NE(std::string(lost.what()).find("MPI rank "), std::string::npos) << lost.what();
        }
    }
    // And the rank serves on.
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

// A crash reaches rank 0 with what mproc::Pool reports of it (worker_crashes.hpp): the worker
// process's pid, the item in the caller's call, the signal or exit status, the backtrace.
class MpiWorkerCrash : public ::testing::TestWithParam<worker_crashes::Cause> {};

INSTANTIATE_TEST_SUITE_P(Causes, MpiWorkerCrash, ::testing::ValuesIn(worker_crashes::crash_causes),
                         [](const auto& info) {
                             return std::string(worker_crashes::cause_name(info.param));
                         });

TEST_P(MpiWorkerCrash, EveryRouteNamesTheItemItsWorkerWasRunning) {
    mproc::MpiPool pool(1);
    worker_crashes::expect_every_route_names_the_item(pool, GetParam());
}

TEST(MpiWorkerCrash, AWorkerKilledFromOutsideEndsItsTaskWithItsPidAndSignal) {
    mproc::MpiPool pool(1);
    worker_crashes::expect_a_kill_from_outside_reported(pool);
    EXPECT_EQ(pool.apply(square, 6), 36);
}

TEST(MpiWorkerCrash, TheBacktraceNamesTheCrashingFunctionAndTheMessageTheRank) {
    using namespace worker_crashes;
    mproc::MpiPool pool(1);
    try {
        pool.apply(fragile_task, item_of(1, Cause::segfault));
        FAIL() << "no WorkerLost";
    } catch (const mproc::WorkerLost& e) {
        EXPECT_NE(std::string(e.what()).find("on MPI rank 1 (host "), std::string::npos)
            << e.what();
        const std::string text = e.backtrace();
        EXPECT_NE(text.find("crash_with"), std::string::npos) << text;
        EXPECT_NE(text.find("fragile_task"), std::string::npos) << text;
    }
}

TEST(MpiWorkerCrash, AChunkItsWorkerCannotRunNamesItsItemInAStream) {
    mproc::MpiPool pool(1);
    worker_crashes::expect_a_refused_item_named_in_a_stream(pool);
}

TEST(MpiPoolTest, TerminateEndsEveryChunkInFlightOnTheRanks) {
    // Short chunks, so that the ranks hold windows of them when terminate() comes.
    mproc::MpiPool pool(2);
    auto result = pool.map_async(sleep_ms_then_square, std::vector<int>(20000, 1), 1);
    std::this_thread::sleep_for(100ms);
    pool.terminate();
    ASSERT_TRUE(result.wait(30s)) << "a chunk was never settled";
    EXPECT_THROW(result.get(), mproc::PoolTerminated);
    pool.join();
}

/// Hard time limits, retries and memory limits are the process pool's: MpiPool refuses them
/// rather than run without them (a call's own limit, mproc::with_timeout, at compile time:
/// tests/process/compile_fail/mpi_pool_with_timeout.cpp).
TEST(MpiPoolTest, RefusesTheFailureOptionsItDoesNotSupport) {
    auto refused = [](mproc::PoolOptions options, const std::string& option) {
        try {
            mproc::MpiPool pool(options);
            ADD_FAILURE() << option << " was accepted";
        } catch (const std::invalid_argument& error) {
            EXPECT_NE(std::string(error.what()).find(option), std::string::npos) << error.what();
        }
    };
    refused({.workers = 1, .task_timeout = std::chrono::seconds(1)}, "task_timeout");
    refused({.workers = 1, .max_retries = 2}, "max_retries");
    refused({.workers = 1, .worker_memory_limit = std::size_t{1} << 30}, "worker_memory_limit");
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // ranks 1 and 2 serve here, then exit with status 0
    ::testing::InitGoogleTest(&argc, argv);
    alarm(240); // a hang fails the job (SIGALRM ends rank 0; mpirun then ends the rest)
    return RUN_ALL_TESTS();
}
