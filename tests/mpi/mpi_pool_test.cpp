// SPDX-License-Identifier: MIT
// What only mproc::MpiPool does, run under mpirun with 3 ranks (rank 0 runs the tests, ranks 1
// and 2 serve): tasks run on the worker ranks, in worker processes of theirs; a crashing task
// costs one WorkerLost and its rank goes on; errors name the rank and host; a free rank takes
// the next chunk (no static split); with in_rank, tasks run in the ranks' own processes; a rank
// busy with a long task is not taken for a silent one.

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
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
#if !defined(MPROC_ASAN_OR_TSAN)
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

/// A task's exception of its own type comes back as a RemoteError naming it, its message, and
/// the rank and host it was raised on.
void expect_a_remote_error_naming_the_rank_and_host(mproc::MpiPool& pool) {
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

/// A task's standard exception comes back as itself, with its message, and where it was raised
/// nested in it.
void expect_a_standard_exception_with_the_rank_nested(mproc::MpiPool& pool) {
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

TEST(MpiPoolTest, ARemoteErrorNamesTheRankAndHost) {
    mproc::MpiPool pool(2);
    expect_a_remote_error_naming_the_rank_and_host(pool);
}

TEST(MpiPoolTest, AStandardExceptionKeepsItsMessageAndCarriesTheRankNested) {
    mproc::MpiPool pool(2);
    expect_a_standard_exception_with_the_rank_nested(pool);
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

/// terminate() while the ranks hold windows of short chunks: every chunk of the call is settled,
/// and the call ends with PoolTerminated.
void expect_terminate_to_end_every_chunk(mproc::MpiPool& pool) {
    auto result = pool.map_async(sleep_ms_then_square, std::vector<int>(20000, 1), 1);
    std::this_thread::sleep_for(100ms);
    pool.terminate();
    ASSERT_TRUE(result.wait(30s)) << "a chunk was never settled";
    EXPECT_THROW(result.get(), mproc::PoolTerminated);
    pool.join();
}

TEST(MpiPoolTest, TerminateEndsEveryChunkInFlightOnTheRanks) {
    mproc::MpiPool pool(2);
    expect_terminate_to_end_every_chunk(pool);
}

/// Building an MpiPool with `options` throws std::invalid_argument saying `words`.
void refused(const mproc::PoolOptions& options, const std::string& words) {
    try {
        mproc::MpiPool pool(options);
        ADD_FAILURE() << words << ": accepted";
    } catch (const std::invalid_argument& error) {
        EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
}

/// Hard time limits, retries and memory limits are the process pool's: MpiPool refuses them
/// rather than run without them (a call's own limit, mproc::with_timeout, at compile time:
/// tests/process/compile_fail/mpi_pool_with_timeout.cpp).
TEST(MpiPoolTest, RefusesTheFailureOptionsItDoesNotSupport) {
    refused({.workers = 1, .task_timeout = std::chrono::seconds(1)}, "task_timeout");
    refused({.workers = 1, .max_retries = 2}, "max_retries");
    refused({.workers = 1, .worker_memory_limit = std::size_t{1} << 30}, "worker_memory_limit");
}

// ---- in-rank execution (PoolOptions::in_rank) ---------------------------------------------------

mproc::PoolOptions in_rank(std::ptrdiff_t workers = 2) {
    return {.workers = workers, .in_rank = true};
}

/// The process that ran the task, and its parent.
std::pair<long, long> pid_and_parent(int) {
    return {static_cast<long>(getpid()), static_cast<long>(getppid())};
}

TEST(MpiPoolInRankTest, MapImapAndApplyAsyncGiveTheirResults) {
    mproc::MpiPool pool(in_rank());
    EXPECT_EQ(pool.workers(), 2u);
    std::vector<int> input(300);
    std::vector<int> squares(300);
    for (int i = 0; i < 300; ++i) {
        input[static_cast<std::size_t>(i)] = i;
        squares[static_cast<std::size_t>(i)] = i * i;
    }
    EXPECT_EQ(pool.map(square, input, 1), squares);
    EXPECT_EQ(pool.map(square, input), squares); // the automatic chunksize
    std::vector<int> streamed;
    for (int y : pool.imap(square, input, 7)) {
        streamed.push_back(y);
    }
    EXPECT_EQ(streamed, squares);
    auto result = pool.apply_async(square, 12);
    EXPECT_EQ(result.get(), 144);
    const std::vector<int> ranks = pool.map(sleep_then_rank, std::vector<int>(8, 20), 1);
    EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()), (std::set<int>{1, 2}));
}

TEST(MpiPoolInRankTest, TasksRunInTheRanksOwnProcesses) {
    // mpirun starts every rank of this job as a child of its own (one host): a task run in a
    // rank has rank 0's parent as its parent; one run in a worker process of a rank has that
    // rank's fork server instead.
    const long launcher = static_cast<long>(getppid());
    std::set<long> rank_pids;
    {
        mproc::MpiPool pool(in_rank());
        for (const auto& [pid, parent] : pool.map(pid_and_parent, std::vector<int>(40, 0), 1)) {
            EXPECT_NE(pid, static_cast<long>(getpid()));
            EXPECT_EQ(parent, launcher) << "task ran in process " << pid << ", not in a rank";
            rank_pids.insert(pid);
        }
    }
    EXPECT_EQ(rank_pids.size(), 2u);
    {
        // A later pool finds the same processes: the ranks themselves, which outlive pools.
        mproc::MpiPool pool(in_rank());
        std::set<long> again;
        for (const auto& [pid, parent] : pool.map(pid_and_parent, std::vector<int>(40, 0), 1)) {
            again.insert(pid);
        }
        EXPECT_EQ(again, rank_pids);
    }
    mproc::MpiPool isolated(2);
    for (const auto& [pid, parent] : isolated.map(pid_and_parent, std::vector<int>(10, 0), 1)) {
        EXPECT_EQ(rank_pids.count(pid), 0u);
        EXPECT_NE(parent, launcher);
    }
}

TEST(MpiPoolInRankTest, ExceptionsComeBackAsWithIsolation) {
    mproc::MpiPool pool(in_rank());
    expect_a_remote_error_naming_the_rank_and_host(pool);
    expect_a_standard_exception_with_the_rank_nested(pool);
    // A failed item fails its map alone; the ranks go on.
    EXPECT_THROW(pool.map(throw_runtime_error, std::vector<int>(5, 0), 1), std::runtime_error);
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

int initialized_on_this_rank = 0;
int what_the_initializer_left(int) { return initialized_on_this_rank; }

TEST(MpiPoolInRankTest, TheInitializerRunsInTheRankAndAThrowingOneFailsEveryTask) {
    {
        mproc::PoolOptions options = in_rank();
        options.initializer = [] { initialized_on_this_rank = 42; };
        mproc::MpiPool pool(options);
        EXPECT_EQ(pool.map(what_the_initializer_left, std::vector<int>(20, 0), 1),
                  std::vector<int>(20, 42));
    }
    mproc::PoolOptions options = in_rank();
    options.initializer = [] { throw std::runtime_error("initializer failed"); };
    mproc::MpiPool pool(options);
    try {
        pool.apply(square, 3);
        FAIL() << "the task ran although its initializer threw";
    } catch (const std::runtime_error& error) {
        EXPECT_STREQ(error.what(), "initializer failed");
    }
}

/// Creates the file at `path` (rank 0 waits for it: the task has started), then sleeps.
int touch_then_sleep(std::string path) {
    std::ofstream(path) << "started\n";
    std::this_thread::sleep_for(300ms);
    return 7;
}

TEST(MpiPoolInRankTest, ACallWhoseTaskHasStartedCannotBeCancelled) {
    mproc::MpiPool pool(in_rank());
    const std::string path = ::testing::TempDir() + "mproc_in_rank_started_" +
                             std::to_string(static_cast<long>(getpid()));
    std::remove(path.c_str());
    auto result = pool.apply_async(touch_then_sleep, path);
    while (!std::ifstream(path)) {
        ASSERT_FALSE(result.ready()) << "the task ended without creating " << path;
        std::this_thread::sleep_for(1ms);
    }
    std::remove(path.c_str());
    EXPECT_FALSE(result.cancel()); // killing the task would kill the rank
    EXPECT_EQ(result.get(), 7);
}

TEST(MpiPoolInRankTest, TerminateDropsQueuedChunksAndTheRanksServeOn) {
    {
        mproc::MpiPool pool(in_rank());
        expect_terminate_to_end_every_chunk(pool);
    }
    mproc::MpiPool pool(in_rank());
    EXPECT_EQ(pool.map(square, std::vector<int>(100, 4), 1), std::vector<int>(100, 16));
}

TEST(MpiPoolInRankTest, ServedBesideAnIsolatedPoolOnTheSameRanks) {
    mproc::MpiPool isolated(2);
    mproc::MpiPool in_ranks(in_rank());
    auto from_isolated = isolated.map_async(square, std::vector<int>(2000, 3), 1);
    auto from_ranks = in_ranks.map_async(square, std::vector<int>(2000, 5), 1);
    EXPECT_EQ(from_ranks.get(), std::vector<int>(2000, 25));
    EXPECT_EQ(from_isolated.get(), std::vector<int>(2000, 9));
}

/// What in_rank cannot honour is refused as the pool is built, naming the option.
TEST(MpiPoolInRankTest, RefusesWhatARankCannotDoForItsTasks) {
    refused(in_rank(3), "at most one worker per worker rank (2), not 3");
    mproc::PoolOptions retired = in_rank();
    retired.max_tasks_per_child = 10;
    refused(retired, "max_tasks_per_child");
    mproc::PoolOptions limited = in_rank();
    limited.task_timeout = std::chrono::seconds(1);
    refused(limited, "task_timeout");
    // Fewer workers than ranks is fine: the other ranks serve nothing of this pool.
    mproc::MpiPool one(in_rank(1));
    const std::vector<int> ranks = one.map(rank_of_this_task, std::vector<int>(10, 0), 1);
    EXPECT_EQ(std::set<int>(ranks.begin(), ranks.end()).size(), 1u);
    // Other pools have no ranks to run tasks in.
    EXPECT_THROW(mproc::ThreadPool({.workers = 1, .in_rank = true}), std::invalid_argument);
    EXPECT_THROW(mproc::Pool({.workers = 1, .in_rank = true}), std::invalid_argument);
}

// ---- a rank that holds chunks and is silent ends the job; one that works is heard -------------

/// The silence limit the test's run set (mpi_rank_silence_spares_long_tasks, via mpirun -x), or 0.
int silence_limit_set() {
    const char* value = std::getenv("MPROC_MPI_RANK_TIMEOUT");
    return value == nullptr ? 0 : std::atoi(value);
}

/// Tasks twice as long as the limit: the ranks running them must be heard meanwhile, in worker
/// processes or in the rank itself (where the task holds the rank's serving thread).
TEST(MpiRankSilenceTest, TasksLongerThanTheLimitAreNotTakenForASilentRank) {
    const int limit = silence_limit_set();
    if (limit == 0) {
        GTEST_SKIP() << "run with MPROC_MPI_RANK_TIMEOUT set (ctest -R mpi_rank_silence)";
    }
    const int ms = 2 * limit * 1000;
    mproc::MpiPool isolated(2);
    EXPECT_EQ(isolated.map(sleep_then_rank, std::vector<int>{ms, ms}, 1).size(), 2u);
    mproc::MpiPool in_ranks(in_rank());
    EXPECT_EQ(in_ranks.map(sleep_then_rank, std::vector<int>{ms, ms}, 1).size(), 2u);
}

/// MPROC_MPI_RANK_TIMEOUT is read as each pool is built: a value it cannot mean is refused there,
/// naming the variable.
TEST(MpiRankSilenceTest, ANonsensicalLimitIsRefused) {
    const char* set = std::getenv("MPROC_MPI_RANK_TIMEOUT");
    const std::string kept = set == nullptr ? "" : set;
    for (const char* bad :
         {"1", "-3", "abc", "5s", "3.5", "99999999999999999999", "9223372036854775807"}) {
        setenv("MPROC_MPI_RANK_TIMEOUT", bad, 1);
        try {
            mproc::MpiPool pool(1);
            ADD_FAILURE() << "MPROC_MPI_RANK_TIMEOUT=" << bad << " was taken";
        } catch (const std::invalid_argument& error) {
            EXPECT_NE(std::string(error.what()).find(std::string("MPROC_MPI_RANK_TIMEOUT=") + bad),
                      std::string::npos)
                << error.what();
        }
    }
    for (const char* good : {"0", "2", "86400"}) {
        setenv("MPROC_MPI_RANK_TIMEOUT", good, 1);
        mproc::MpiPool pool(1);
        EXPECT_EQ(pool.map(square, std::vector<int>{3}), std::vector<int>{9}) << good;
    }
    if (set == nullptr) {
        unsetenv("MPROC_MPI_RANK_TIMEOUT");
    } else {
        setenv("MPROC_MPI_RANK_TIMEOUT", kept.c_str(), 1);
    }
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // ranks 1 and 2 serve here, then exit with status 0
    ::testing::InitGoogleTest(&argc, argv);
    alarm(240); // a hang fails the job (SIGALRM ends rank 0; mpirun then ends the rest)
    return RUN_ALL_TESTS();
}
