// SPDX-License-Identifier: MIT
// The three start methods: fork (copies of the caller), forkserver and spawn (fresh runs of this
// program, which is why this test has its own main with mproc::serve_if_worker first).

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "process_table.hpp"
#include "start_method_name.hpp"

namespace {

using mproc::StartMethod;
using namespace std::chrono_literals;

int set_in_caller_only = 0; // set by the test before creating a pool
int set_by_initializer = 0;

int read_caller_state(int) { return set_in_caller_only; }
int read_initializer_state(int) { return set_by_initializer; }
long worker_pid(int) { return static_cast<long>(getpid()); }
int square(int x) { return x * x; }
int exit_with(int status) { _exit(status); }
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

/// An initializer with state (Python's initargs), sent through its serialize member.
struct SetTo {
    int value = 0;
    void operator()() const { set_by_initializer = value; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(value);
    }
};

/// A function object with state and no serialize member: only a forked worker can run it.
struct SetToUnsendable {
    int value = 0;
    void operator()() const { set_by_initializer = value; }
};

void set_to_nine() { set_by_initializer = 9; }

class StartMethods : public ::testing::TestWithParam<StartMethod> {};

INSTANTIATE_TEST_SUITE_P(All, StartMethods,
                         ::testing::Values(StartMethod::fork, StartMethod::forkserver,
                                           StartMethod::spawn),
                         start_method_name::of);

TEST_P(StartMethods, MapRunsInWorkerProcesses) {
    mproc::Pool pool({.workers = 2, .start_method = GetParam()});
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3, 4}, 1), (std::vector<int>{1, 4, 9, 16}));
    for (const long pid : pool.map(worker_pid, std::vector<int>(6, 0), 1)) {
        EXPECT_NE(pid, static_cast<long>(getpid()));
    }
}

TEST_P(StartMethods, OnlyForkedWorkersSeeTheCallersState) {
    set_in_caller_only = 7;
    mproc::Pool pool({.workers = 1, .start_method = GetParam()});
    const int seen = pool.apply(read_caller_state, 0);
    set_in_caller_only = 0;
    EXPECT_EQ(seen, GetParam() == StartMethod::fork ? 7 : 0);
}

TEST_P(StartMethods, TheInitializerRunsInEveryWorker) {
    mproc::Pool pool(
        {.workers = 2, .initializer = [] { set_by_initializer = 42; }, .start_method = GetParam()});
    for (const int value : pool.map(read_initializer_state, std::vector<int>(8, 0), 1)) {
        EXPECT_EQ(value, 42);
    }
    EXPECT_EQ(set_by_initializer, 0); // not in the caller
}

TEST_P(StartMethods, AnInitializerWithStateCarriesItToEveryWorker) {
    mproc::Pool pool({.workers = 2,
                      .initializer = mproc::portable_initializer(SetTo{17}),
                      .start_method = GetParam()});
    for (const int value : pool.map(read_initializer_state, std::vector<int>(8, 0), 1)) {
        EXPECT_EQ(value, 17);
    }
    EXPECT_EQ(set_by_initializer, 0); // not in the caller
}

TEST_P(StartMethods, AFunctionPointerInitializerRunsInEveryWorker) {
    mproc::Pool pool({.workers = 2, .initializer = set_to_nine, .start_method = GetParam()});
    for (const int value : pool.map(read_initializer_state, std::vector<int>(8, 0), 1)) {
        EXPECT_EQ(value, 9);
    }
}

TEST_P(StartMethods, AnInitializerWithStateButNoSerializeRunsOnlyInForkedWorkers) {
    const mproc::PoolOptions options{
        .workers = 1, .initializer = SetToUnsendable{5}, .start_method = GetParam()};
    if (GetParam() != StartMethod::fork) {
        EXPECT_THROW(mproc::Pool{options}, std::invalid_argument);
        return;
    }
    mproc::Pool pool(options);
    EXPECT_EQ(pool.apply(read_initializer_state, 0), 5);
}

TEST_P(StartMethods, RetiredWorkersAreReplaced) {
    mproc::Pool pool({.workers = 1, .max_tasks_per_child = 2, .start_method = GetParam()});
    const auto pids = pool.map(worker_pid, std::vector<int>(6, 0), 1);
    EXPECT_EQ(std::set<long>(pids.begin(), pids.end()).size(), 3u);
}

/// A result large enough to be lent by the worker (lent_memory.hpp): `count` numbers from
/// `count` on, so that every size has its own contents.
std::vector<std::uint32_t> numbered(std::uint32_t count) {
    std::vector<std::uint32_t> numbers(count);
    std::iota(numbers.begin(), numbers.end(), count);
    return numbers;
}

TEST_P(StartMethods, LargeResultsArriveWhole) {
    // Read from the worker's memory wherever this process may read it: the same for workers
    // forked from the caller, from the fork server, or started anew (spawn).
    mproc::Pool pool({.workers = 2, .max_tasks_per_child = 3, .start_method = GetParam()});
    const std::vector<std::uint32_t> counts{1u << 18, (1u << 20) + 3, 5, 1u << 22};
    for (int round = 0; round < 3; ++round) { // retired workers included
        for (const std::uint32_t count : counts) {
            ASSERT_EQ(pool.apply(numbered, count), numbered(count)) << count;
        }
    }
}

TEST_P(StartMethods, WorkersOutliveTheThreadThatCreatedThePool) {
    // Workers die with whoever started them (PR_SET_PDEATHSIG follows a thread, not a process):
    // that must be the pool's own machinery, not the thread that happened to construct it.
    std::unique_ptr<mproc::Pool> pool;
    std::thread([&] {
        pool = std::make_unique<mproc::Pool>(
            mproc::PoolOptions{.workers = 2, .start_method = GetParam()});
    }).join();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto pids = pool->map(worker_pid, std::vector<int>(20, 0), 1);
    EXPECT_LE(std::set<long>(pids.begin(), pids.end()).size(), 2u) << "workers were replaced";
}

TEST(StartMethodsSpawn, ACapturingInitializerIsRefused) {
    int seed = 3;
    EXPECT_THROW(mproc::Pool({.workers = 1,
                              .initializer = [&seed] { set_by_initializer = seed; },
                              .start_method = StartMethod::spawn}),
                 std::invalid_argument);
    // The fork start method copies the caller, so any initializer works there.
    mproc::Pool forked({.workers = 1,
                        .initializer = [&seed] { set_by_initializer = seed; },
                        .start_method = StartMethod::fork});
    EXPECT_EQ(forked.apply(read_initializer_state, 0), 3);
}

void seed_three() { set_by_initializer = 3; }

// A re-run worker runs the initializer from the bytes it received: state of the wrong length
// must end in a clear error naming the truncation, not in a lookup of a zero code address.
TEST(PortableInitializer, StateOfTheWrongLengthIsReportedAsTruncated) {
    const mproc::Initializer initializer(&seed_three);
    const std::vector<std::byte>& portable = initializer.portable();
    ASSERT_EQ(portable.size(), 2 * sizeof(mproc::detail::CodeAddress)); // entry, then function
    const std::byte* state = portable.data() + sizeof(mproc::detail::CodeAddress);
    for (const std::size_t size : {std::size_t{0}, sizeof(mproc::detail::CodeAddress) - 1}) {
        try {
            mproc::detail::run_function_initializer<void()>(state, size);
            ADD_FAILURE() << "state of " << size << " bytes was accepted";
        } catch (const mproc::Error& error) {
            EXPECT_NE(std::string(error.what()).find("truncated"), std::string::npos)
                << error.what();
        }
    }
    set_by_initializer = 0;
    mproc::detail::run_function_initializer<void()>(state, sizeof(mproc::detail::CodeAddress));
    EXPECT_EQ(set_by_initializer, 3);
    // This test ran the initializer in the caller: the tests that check that an initializer
    // never does (run after this one when the whole program runs at once) must find it unset.
    set_by_initializer = 0;
}

} // namespace

// Daemons often ignore SIGCHLD (SIG_IGN) so that no child of theirs lingers as a zombie: the
// kernel then reaps their children by itself, as they exit. A pool in such a program must still
// learn how a worker ended where its own fork server parents the workers, never signal a pid
// that may no longer be its worker's (timeouts, terminate), and end every worker before its
// destructor returns.
TEST_P(StartMethods, AProgramThatIgnoresSigchldStillLearnsHowItsWorkersEnded) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    struct sigaction previous {};
    ASSERT_EQ(sigaction(SIGCHLD, &ignore, &previous), 0);
    std::vector<long> workers;
    {
        mproc::Pool pool({.workers = 2, .start_method = GetParam()});
        try {
            pool.apply(exit_with, 7);
            ADD_FAILURE() << "no WorkerLost";
        } catch (const mproc::WorkerLost& e) {
            if (GetParam() != StartMethod::spawn) {
                // A spawned worker is the caller's own child: the kernel reaped it, and with it
                // how it ended. A forked one is the fork server's, whose SIGCHLD is its own.
                EXPECT_EQ(e.exit_status(), 7) << e.what();
                EXPECT_NE(std::string(e.what()).find("exited with status 7"), std::string::npos)
                    << e.what();
            }
        }
        EXPECT_EQ(pool.apply(square, 5), 25); // replaced, and the pool goes on
        EXPECT_THROW(pool.apply(mproc::with_timeout(sleep_ms, 200ms), 60'000),
                     mproc::TaskTimeout); // killed through the launcher
        EXPECT_EQ(pool.apply(square, 6), 36);
        workers = pool.map(worker_pid, std::vector<int>(8, 0), 1);
        pool.terminate(); // and the rest killed at once
        pool.join();
    }
    sigaction(SIGCHLD, &previous, nullptr);
    for (const long pid : workers) {
        EXPECT_FALSE(process_table::process_exists(pid)) << "worker " << pid << " outlived join";
    }
}

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // spawned workers and fork servers stop here
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
