// SPDX-License-Identifier: MIT
// A pool outlives its fork server: signals sent to the whole process group (Ctrl-C in a program
// that handles it), a server killed outright (SIGKILL, the OOM killer), a server stopped
// (SIGSTOP). Own main: the forkserver and spawn start methods re-run this program.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "process_table.hpp"
#include "start_method_name.hpp"

namespace {

using mproc::StartMethod;
using namespace std::chrono_literals;

long server_of(int) { return static_cast<long>(getppid()); } // a worker's parent
long worker_pid(int) { return static_cast<long>(getpid()); }
int square(int x) { return x * x; }
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

std::vector<int> squares(int n) {
    std::vector<int> expected(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        expected[static_cast<std::size_t>(i)] = i * i;
    }
    return expected;
}

std::vector<int> first_ints(int n) {
    std::vector<int> items(static_cast<std::size_t>(n));
    std::iota(items.begin(), items.end(), 0);
    return items;
}

/// Runs `body` in a child process that leads a process group of its own (so that signals sent
/// to "the whole group" reach it, its pool's processes and nothing of the test runner's) and
/// returns its exit status; a child that has not ended within `limit` is killed and fails.
template <class Body>
int in_own_process_group(Body body, std::chrono::milliseconds limit) {
    std::fflush(nullptr);
    const pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        int code = 99;
        try {
            code = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
        }
        _exit(code);
    }
    const std::optional<int> status = process_table::wait_for_child(child, limit);
    if (!status) {
        kill(-child, SIGKILL); // whatever it left in its group
        return -1;
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
}

std::atomic<int> group_signals_seen{0};
extern "C" void count_signal(int) { group_signals_seen.fetch_add(1); }

class EveryStartMethod : public ::testing::TestWithParam<StartMethod> {};
INSTANTIATE_TEST_SUITE_P(All, EveryStartMethod,
                         ::testing::Values(StartMethod::fork, StartMethod::forkserver,
                                           StartMethod::spawn),
                         start_method_name::of);

// Ctrl-C, a hang-up, or a supervisor's SIGTERM reach every process of the foreground group. A
// program that handles them goes on, and so must its pool: every later call runs. Workers that
// have the default dispositions (spawned ones, or forked before the handlers were installed)
// die of them and are replaced.
TEST_P(EveryStartMethod, SignalsToTheWholeProcessGroupSpareThePool) {
    const StartMethod method = GetParam();
    const int code = in_own_process_group(
        [method] {
            mproc::Pool pool({.workers = 2, .start_method = method, .max_retries = 3});
            const long server = pool.apply(server_of, 0);
            // Installed after the pool started, as a program often does: a `fork` server is a
            // copy of the caller, and would otherwise have the handlers too.
            struct sigaction handler {};
            handler.sa_handler = count_signal;
            sigemptyset(&handler.sa_mask);
            for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
                sigaction(signal, &handler, nullptr);
            }
            for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
                kill(0, signal);
            }
            std::this_thread::sleep_for(200ms); // the signals land; lost workers are replaced
            if (group_signals_seen.load() != 3) {
                return 2; // the caller itself did not get them: the test proves nothing
            }
            if (pool.map(square, first_ints(40), 1) != squares(40)) {
                return 3;
            }
            if (method != StartMethod::spawn && pool.apply(server_of, 0) != server) {
                return 4; // the server did not survive (it was replaced)
            }
            pool.close();
            pool.join();
            return 0;
        },
        60s);
    EXPECT_EQ(code, 0) << "2: signals not delivered, 3: map failed, 4: server replaced";
}

class ForkServerMethods : public ::testing::TestWithParam<StartMethod> {};
INSTANTIATE_TEST_SUITE_P(All, ForkServerMethods,
                         ::testing::Values(StartMethod::fork, StartMethod::forkserver),
                         start_method_name::of);

// SIGKILL and the OOM killer cannot be ignored. The task running when the server dies ends
// with WorkerLost naming the server; the standby takes over, and every later call runs, on
// every server in turn.
TEST_P(ForkServerMethods, APoolOutlivesItsForkServer) {
    mproc::Pool pool({.workers = 2, .start_method = GetParam()});
    std::set<long> servers;
    for (int round = 0; round < 3; ++round) {
        const long server = pool.apply(server_of, 0);
        EXPECT_TRUE(servers.insert(server).second) << "round " << round << ": not a new server";
        ASSERT_EQ(process_table::await_live_children(server, 3, 10s).size(), 3u)
            << "two workers and the standby";
        auto running = pool.apply_async(sleep_ms, 30'000);
        std::this_thread::sleep_for(200ms); // it has started
        ASSERT_EQ(kill(static_cast<pid_t>(server), SIGKILL), 0);
        try {
            running.get(20s);
            ADD_FAILURE() << "round " << round << ": the task outlived its server";
        } catch (const mproc::WorkerLost& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find("fork server (pid " + std::to_string(server)), std::string::npos)
                << message;
        }
        EXPECT_EQ(pool.map(square, first_ints(30), 1), squares(30)) << "round " << round;
    }
    pool.close();
    pool.join();
    EXPECT_TRUE(process_table::wait_until_gone({servers.begin(), servers.end()}, 10s));
}

// With the server and its standby both gone, no worker can ever be started again: every
// pending and later task ends at once with the one error that says so.
TEST_P(ForkServerMethods, WithoutAnyServerEveryCallEndsWithPoolBroken) {
    mproc::Pool pool({.workers = 1, .start_method = GetParam()});
    const long server = pool.apply(server_of, 0);
    const long worker = pool.apply(worker_pid, 0);
    ASSERT_EQ(process_table::await_live_children(server, 2, 10s).size(), 2u)
        << "the worker and the standby";
    // Stopped first, so that it cannot make a new standby when it sees this one die.
    ASSERT_EQ(kill(static_cast<pid_t>(server), SIGSTOP), 0);
    std::vector<long> standbys = process_table::live_children_of(server);
    std::erase(standbys, worker);
    ASSERT_EQ(standbys.size(), 1u) << "the server should have exactly one standby";
    auto queued = pool.map_async(sleep_ms, std::vector<int>(4, 100), 1);
    kill(static_cast<pid_t>(standbys[0]), SIGKILL);
    kill(static_cast<pid_t>(server), SIGKILL);
    EXPECT_THROW(queued.get(20s), mproc::Error);
    for (int call = 0; call < 3; ++call) {
        EXPECT_THROW(pool.apply(square, call), mproc::PoolBroken);
        EXPECT_THROW(pool.map(square, first_ints(10), 1), mproc::PoolBroken);
    }
}

// Deadlines, terminate() and the destructor must not wait on a server that cannot act: the
// caller kills its workers itself. Run in a child with a time limit: a hang fails the test.
TEST_P(ForkServerMethods, AStoppedForkServerDelaysNoDeadline) {
    const StartMethod method = GetParam();
    const int code = in_own_process_group(
        [method] {
            std::vector<long> workers;
            long server = 0;
            {
                mproc::Pool pool({.workers = 2, .start_method = method, .task_timeout = 500ms});
                server = pool.apply(server_of, 0);
                workers = pool.map(worker_pid, std::vector<int>(8, 0), 1);
                kill(static_cast<pid_t>(server), SIGSTOP);
                try {
                    pool.apply(sleep_ms, 60'000);
                    return 2;
                } catch (const mproc::TaskTimeout&) {
                }
                auto running = pool.apply_async(sleep_ms, 60'000); // on the other worker
                std::this_thread::sleep_for(100ms);
                pool.terminate();
                try {
                    running.get(10s);
                    return 3;
                } catch (const mproc::PoolTerminated&) {
                }
            } // the destructor: bounded too
            for (const long worker : workers) {
                if (process_table::process_exists(worker)) {
                    return 4;
                }
            }
            return process_table::wait_until_gone({server}, 10s) ? 0 : 5;
        },
        60s);
    EXPECT_EQ(code, 0) << "2: no TaskTimeout, 3: not terminated, 4: a worker outlived the pool, "
                          "5: the server outlived it, -1: hung";
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // spawned workers and fork servers stop here
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
