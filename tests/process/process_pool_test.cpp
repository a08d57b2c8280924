// SPDX-License-Identifier: MIT
// What only the process pool does: isolation, fd hygiene, reaping, caller death, retirement,
// exceptions across processes, and the worker's refusal of code it does not have.

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/lent_memory.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "process/channel.hpp"
#include "process/worker_process.hpp"
#include "process_table.hpp"

namespace {

using namespace std::chrono_literals;
using namespace process_table;

int global_counter = 0;

int bump_global(int) { return ++global_counter; }
long worker_pid(int) { return static_cast<long>(getpid()); }
long print_and_square(long x) {
    std::printf("task %ld on stdout\n", x); // into whatever descriptor 1 is in the worker
    std::fflush(stdout);
    return x * x;
}
// In the first page, never mapped (not null, which UBSan would report before the write faults).
volatile std::uintptr_t unmapped_address = 16;
int segfault(int) {
    *reinterpret_cast<volatile int*>(unmapped_address) = 1;
    return 0;
}

std::vector<int> fds_in_worker(int) { return open_fds(); }

/// Waits for a test's forked child (killing it after `limit`, a hang) and checks that it exited
/// with status 0; `codes` says what each other status means.
::testing::AssertionResult ends_cleanly(pid_t child, std::chrono::seconds limit,
                                        const char* codes) {
    const std::optional<int> ended = wait_for_child(child, limit);
    if (!ended) {
        return ::testing::AssertionFailure()
               << "still running after " << limit.count() << " s: hung";
    }
    if (!WIFEXITED(*ended)) {
        return ::testing::AssertionFailure() << "died: wait status " << *ended;
    }
    if (WEXITSTATUS(*ended) != 0) {
        return ::testing::AssertionFailure()
               << "exited with status " << WEXITSTATUS(*ended) << " (" << codes << ")";
    }
    return ::testing::AssertionSuccess();
}

/// CPU time this process (every thread) has used.
std::chrono::nanoseconds process_cpu_time() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

TEST(ProcessPool, AnIdlePoolTakesNoCpu) {
    // After its last news the I/O thread polls without sleeping for a moment, so that an apply
    // in a loop finds it awake; that must end, and idle workers must sleep too. A thread that
    // kept spinning would use most of the 300 ms.
    mproc::Pool pool(2);
    const auto pids = pool.map(worker_pid, std::vector<int>(20, 0), 1);
    for (int i = 0; i < 200; ++i) { // round trips: the I/O thread spins between them
        ASSERT_NE(pool.apply(worker_pid, i), static_cast<long>(getpid()));
    }
    const std::set<long> workers(pids.begin(), pids.end());
    std::vector<std::chrono::milliseconds> workers_before;
    for (const long pid : workers) {
        workers_before.push_back(cpu_time(pid));
    }
    const auto before = process_cpu_time();
    std::this_thread::sleep_for(300ms);
    const auto used = process_cpu_time() - before;
    EXPECT_LT(used, 30ms) << "the caller's process (its I/O thread) kept using CPU while idle";
    std::size_t i = 0;
    for (const long pid : workers) {
        EXPECT_LT(cpu_time(pid) - workers_before[i++], 30ms)
            << "worker " << pid << " kept using CPU while idle";
    }
}

TEST(ProcessPool, GlobalsATaskMutatesStayInItsWorker) {
    mproc::Pool pool(1);
    const auto counts = pool.map(bump_global, std::vector<int>(5, 0), 1);
    EXPECT_EQ(counts, (std::vector<int>{1, 2, 3, 4, 5})); // one worker, its own global
    EXPECT_EQ(global_counter, 0);                         // the caller's is untouched
}

TEST(ProcessPool, TasksRunInOtherProcesses) {
    mproc::Pool pool(2);
    const auto pids = pool.map(worker_pid, std::vector<int>(20, 0), 1);
    for (const long pid : pids) {
        EXPECT_NE(pid, static_cast<long>(getpid()));
    }
}

/// Sends `signal` to every thread of this process but the calling one, without allocating: a
/// thread that is inside the allocator when the pool forks its fork server leaves the sanitizers'
/// allocator locked in the child (GCC 12's ASan takes no lock around fork), and the workers then
/// hang on their first allocation. glibc's own malloc is safe across fork; the storm below must
/// be too, so that it tests mproc and not the sanitizer.
void signal_other_threads(int signal) {
    const long self = static_cast<long>(syscall(SYS_gettid));
    const int directory = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) {
        return;
    }
    alignas(8) char entries[4096];
    long read = 0;
    while ((read = syscall(SYS_getdents64, directory, entries, sizeof entries)) > 0) {
        for (long offset = 0; offset < read;) {
            struct Entry {
                std::uint64_t inode;
                std::int64_t next;
                unsigned short length;
                unsigned char type;
                char name[1];
            };
            const auto* entry = reinterpret_cast<const Entry*>(entries + offset);
            long thread = 0;
            for (const char* digit = entry->name; *digit >= '0' && *digit <= '9'; ++digit) {
                thread = thread * 10 + (*digit - '0');
            }
            if (thread > 0 && thread != self) {
                syscall(SYS_tgkill, getpid(), thread, signal);
            }
            offset += entry->length;
        }
    }
    ::close(directory);
}

std::vector<double> doubled(std::vector<double> values) {
    for (double& value : values) {
        value *= 2;
    }
    return values;
}

// Profilers and timers interrupt system calls: with a handler installed without SA_RESTART, a
// blocking poll, recv or sendmsg fails with EINTR, in the middle of a large frame too. Signals
// are aimed at every thread of the caller (its I/O thread included) and at every process below
// it (the fork server and the workers inherit the handler), and every call must still complete
// with the right results.
TEST(ProcessPool, ASignalStormWithoutRestartInterruptsNoCall) {
    std::fflush(nullptr);
    const pid_t child = fork(); // the handler and the storm stay in this child
    ASSERT_GE(child, 0);
    if (child == 0) {
        static std::atomic<long> interrupts{0};
        struct sigaction action {};
        action.sa_handler = [](int) { interrupts.fetch_add(1, std::memory_order_relaxed); };
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0; // no SA_RESTART
        sigaction(SIGALRM, &action, nullptr);
        setpgid(0, 0); // a group of its own: this child and every process below it
        std::atomic<bool> storming{true};
        std::thread storm([&] {
            while (storming.load()) {
                signal_other_threads(SIGALRM);
                kill(-getpgrp(), SIGALRM); // the fork server, its standby and the workers
                std::this_thread::sleep_for(200us);
            }
        });
        int wrong = 0;
        try {
            for (int round = 0; round < 3; ++round) {
                mproc::Pool pool(2);
                wrong |= pool.apply(bump_global, 0) == 1 ? 0 : 1; // each worker's own counter
                const auto pids = pool.map(worker_pid, std::vector<int>(2000, 0), 1);
                wrong |= pids.size() == 2000 ? 0 : 2;
                long sum = 0;
                for (const long pid : pool.imap_unordered(worker_pid, std::vector<int>(500, 0))) {
                    sum += pid > 0 ? 1 : 0;
                }
                wrong |= sum == 500 ? 0 : 4;
                // Frames of 2 MiB each way, read and written in many pieces.
                const std::vector<std::vector<double>> big(8, std::vector<double>(1 << 18, 1.5));
                for (const auto& values : pool.map(doubled, big, 1)) {
                    wrong |= values.size() == (1u << 18) && values.back() == 3.0 ? 0 : 8;
                }
            }
        } catch (...) {
            wrong |= 16; // e.g. a std::system_error for EINTR
        }
        storming = false;
        storm.join();
        wrong |= interrupts.load() > 100 ? 0 : 32;
        _exit(wrong == 0 ? 0 : 100 + wrong);
    }
    EXPECT_TRUE(ends_cleanly(child, 120s,
                             "100 + 1, 2, 4, 8: a wrong result (apply, map, imap_unordered, "
                             "payload); 16: a call threw; 32: too few signals arrived to prove "
                             "anything"));
}

TEST(ProcessPool, WorkersDoNotInheritTheCallersDescriptors) {
    const int stray = ::open("/dev/null", O_RDONLY); // no O_CLOEXEC: would leak through fork
    ASSERT_GE(stray, 0);
    mproc::Pool pool(1);
    const std::vector<int> fds = pool.apply(fds_in_worker, 0);
    ::close(stray);
    EXPECT_EQ(fds, (std::vector<int>{0, 1, 2, 3})) << "stdio and the worker's channel only";
}

TEST(ProcessPool, NoZombieNoLeakedDescriptorAfter500Pools) {
    { mproc::Pool warm_up(1); } // first-use allocations (trace flag, module table) happen here
    const auto fds_before = open_fds();
    const auto children_before = child_processes();
    for (int cycle = 0; cycle < 500; ++cycle) {
        mproc::Pool pool(2);
        ASSERT_EQ(pool.apply([](int x) { return x + 1; }, cycle), cycle + 1);
        if (cycle % 2 == 0) {
            pool.close();
            pool.join();
        } // else the destructor terminates and joins
    }
    EXPECT_EQ(open_fds(), fds_before);
    EXPECT_EQ(child_processes(), children_before);
}

TEST(ProcessPool, FortyLifecyclesLeaveNoDescendantProcess) {
    // In a child, so that a hang (a pool waiting for a worker or a launcher that will never
    // answer) fails within the limit, and so that every descendant counted is this test's. Each
    // kind of end: terminate (destructor) right after the first answer, close + join, a timed
    // first task (it waits for the hello), and terminate while the first task is still on its
    // way to a worker that has not said hello yet.
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        for (int cycle = 0; cycle < 40; ++cycle) {
            mproc::Pool pool(2);
            switch (cycle % 4) {
            case 0:
                if (pool.apply([](int x) { return x + 1; }, cycle) != cycle + 1) _exit(10);
                break;
            case 1:
                if (pool.apply([](int x) { return x + 1; }, cycle) != cycle + 1) _exit(11);
                pool.close();
                pool.join();
                break;
            case 2:
                if (pool.apply(mproc::with_timeout([](int x) { return x + 1; }, 10s), cycle) !=
                    cycle + 1)
                    _exit(12);
                break;
            case 3: {
                auto pending = pool.apply_async([](int x) { return x + 1; }, cycle);
                pool.terminate();
                pool.join();
                if (!pending.wait(10s)) _exit(13); // a value or PoolTerminated, never a hang
                break;
            }
            }
        }
        // The pools are gone: their fork servers and workers were reaped before join returned.
        _exit(descendant_processes().empty() ? 0 : 20);
    }
    EXPECT_TRUE(ends_cleanly(child, 120s,
                             "10-13: a wrong result or a hang in a cycle (cycle % 4 = status - "
                             "10); 20: descendant processes left after the pools were destroyed"));
}

TEST(ProcessPool, TerminateKillsAndReapsBusyWorkers) {
    mproc::Pool pool(2);
    const auto pids = pool.map(worker_pid, std::vector<int>(4, 0), 1);
    auto sleeping = pool.apply_async(
        [](int ms) {
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            return 0;
        },
        60'000);
    std::this_thread::sleep_for(50ms);
    const auto started = std::chrono::steady_clock::now();
    pool.terminate();
    ASSERT_TRUE(sleeping.wait(10s));
    EXPECT_THROW(sleeping.get(), mproc::PoolTerminated);
    pool.join();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s); // not the task's 60 s
    EXPECT_TRUE(wait_until_gone(std::vector<long>(pids.begin(), pids.end()), 2s));
    EXPECT_TRUE(child_processes().empty());
}

TEST(ProcessPool, MaxTasksPerChildStartsFreshProcesses) {
    mproc::Pool pool({.workers = 1, .max_tasks_per_child = 2});
    const auto pids = pool.map(worker_pid, std::vector<int>(6, 0), 1);
    EXPECT_EQ(std::set<long>(pids.begin(), pids.end()).size(), 3u);
}

// ---- large results, read by the caller from the worker's memory (lent_memory.hpp) ----------

/// `count` numbers from `count` on: every size has its own contents.
std::vector<std::uint32_t> numbered(std::uint32_t count) {
    std::vector<std::uint32_t> numbers(count);
    std::iota(numbers.begin(), numbers.end(), count);
    return numbers;
}
std::string lettered(std::uint32_t size) {
    std::string text(size, 'a');
    text.back() = 'z';
    return text;
}
bool worker_may_lend(int) { return mproc::detail::this_process_lends.allowed(); }
/// How many of the worker's answers keep values it lent. The releases the caller sent before
/// the request for this task are read before it runs, whether the request came on the socket
/// (behind them) or in the worker's fast lane (which counts them).
std::size_t worker_unreleased(int) { return mproc::detail::this_process_lends.unreleased(); }

TEST(ProcessPool, LargeResultsAreReadFromTheWorkersMemoryAndLetGo) {
    mproc::Pool pool({.workers = 1});
    // A worker lends once the caller has read its hello, which its first task may precede.
    pool.apply(worker_pid, 0);
    ASSERT_TRUE(pool.apply(worker_may_lend, 0)); // this process can read its worker's memory
    // Around the size from which results are lent (1 MiB), and far above it.
    for (const std::uint32_t count :
         {0u, 1000u, (1u << 18) - 1, 1u << 18, (1u << 18) + 1, 3u << 20, 1u << 25}) {
        ASSERT_EQ(pool.apply(numbered, count), numbered(count)) << count;
    }
    EXPECT_EQ(pool.apply(lettered, 5u << 20), lettered(5u << 20));
    // Each lent result is let go once read, before the worker runs its next task: none of 40
    // results of 8 MiB stays in the worker.
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(pool.apply(numbered, 2u << 20).back(), (2u << 20) + (2u << 20) - 1);
        ASSERT_EQ(pool.apply(worker_unreleased, 0), 0u) << i;
    }
}

TEST(ProcessPool, ALentResultIsLetGoBeforeTheWorkersNextTaskRuns) {
    // The next call waits in the queue while the lent result is read; then its request and the
    // release of that result leave together: the request in the worker's fast lane, the
    // release on the socket. The worker must read the release first.
    mproc::Pool pool({.workers = 1});
    pool.apply(worker_pid, 0);
    ASSERT_TRUE(pool.apply(worker_may_lend, 0));
    for (int i = 0; i < 20; ++i) {
        auto lent = pool.apply_async(numbered, 2u << 20);
        auto next = pool.apply_async(worker_unreleased, 0);
        ASSERT_EQ(lent.get().size(), 2u << 20);
        ASSERT_EQ(next.get(), 0u) << i;
    }
}

TEST(ProcessPool, LargeResultsInFlightTogetherEachArriveWhole) {
    // Many calls at once: lent answers, their releases and the next requests cross in the
    // same sockets, on workers that retire after every third task.
    mproc::Pool pool({.workers = 2, .max_tasks_per_child = 3});
    std::vector<mproc::AsyncResult<std::vector<std::uint32_t>>> results;
    for (std::uint32_t i = 0; i < 30; ++i) {
        results.push_back(pool.apply_async(numbered, (1u << 18) + i * 4099));
    }
    for (std::uint32_t i = 0; i < 30; ++i) {
        ASSERT_EQ(results[i].get(), numbered((1u << 18) + i * 4099)) << i;
    }
}

/// Sleeps, then returns a lent result, and kills its own process 100 ms later: after the
/// answer is sent, before the caller (held up by a slow callback) reads it.
std::vector<std::uint32_t> answer_then_die(std::uint32_t count) {
    std::this_thread::sleep_for(600ms);
    std::thread([] {
        std::this_thread::sleep_for(100ms);
        kill(getpid(), SIGKILL);
    }).detach();
    return numbered(count);
}
int nap_then(int value) {
    std::this_thread::sleep_for(100ms);
    return value;
}

TEST(ProcessPool, AWorkerThatDiesBeforeItsLentResultIsReadCostsThatResultOnly) {
    mproc::Pool pool({.workers = 2});
    // Both workers past their first task (which their hello may not precede), so both lend.
    const auto lending = pool.map(nap_then, std::vector<int>{1, 1}, 1);
    ASSERT_EQ(lending, (std::vector<int>{1, 1}));
    // The first call's callback holds the pool's I/O thread for 2 s, from 100 ms on; the
    // second call's worker answers at 600 ms and is dead at 700 ms, long before its answer is
    // read (margins for a loaded machine: the callback may start up to 500 ms late).
    auto slow = pool.apply_async(mproc::on_success([](int) { std::this_thread::sleep_for(2s); }),
                                 nap_then, 1);
    auto unread = pool.apply_async(answer_then_die, 1u << 20);
    EXPECT_EQ(slow.get(), 1);
    try {
        unread.get();
        ADD_FAILURE() << "the dead worker's result was read";
    } catch (const mproc::Error& error) {
        EXPECT_NE(std::string(error.what()).find("could not be read from its memory"),
                  std::string::npos)
            << error.what();
    }
    // The pool goes on: the worker is replaced, and lent results arrive whole.
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(pool.apply(numbered, 1u << 19), numbered(1u << 19));
    }
}

struct ParseError : std::exception {
    const char* what() const noexcept override { return "bad token"; }
};

TEST(ProcessPool, ForeignExceptionsComeBackAsRemoteError) {
    mproc::Pool pool(2);
    auto thrower = [](int i) {
        if (i == 3) throw ParseError();
        return i;
    };
    try {
        pool.map(thrower, std::vector<int>{0, 1, 2, 3, 4}, 1);
        FAIL() << "map should have thrown";
    } catch (const mproc::RemoteError& e) {
        EXPECT_NE(e.type_name().find("ParseError"), std::string::npos) << e.type_name();
        EXPECT_EQ(e.message(), "bad token");
        EXPECT_EQ(e.task_index(), 3u);
        EXPECT_NE(e.worker_pid(), static_cast<long>(getpid()));
    }
    // Standard types come back as themselves.
    EXPECT_THROW(pool.apply([] { throw std::out_of_range("x"); }), std::out_of_range);
}

TEST(ProcessPool, WorkersExitWithinASecondWhenTheCallerIsKilled) {
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    const pid_t caller = fork();
    ASSERT_GE(caller, 0);
    if (caller == 0) {
        // The "caller": a pool whose workers report their pids, then it waits to be killed.
        ::close(report[0]);
        mproc::Pool pool(2);
        pool.map(worker_pid, std::vector<int>(8, 0), 1); // the workers are up and serving
        const std::vector<long> server = child_processes();
        if (server.size() == 1) { // ...and the standby the server makes a moment later
            await_live_children(server[0], 3, 10s);
        }
        for (const long pid : descendant_processes()) { // the fork server, standby, workers
            [[maybe_unused]] auto n = ::write(report[1], &pid, sizeof(pid));
        }
        ::close(report[1]);
        pause();
        _exit(0);
    }
    ::close(report[1]);
    std::vector<long> pids;
    long pid;
    while (::read(report[0], &pid, sizeof(pid)) == sizeof(pid)) {
        pids.push_back(pid);
    }
    ::close(report[0]);
    kill(caller, SIGKILL);
    waitpid(caller, nullptr, 0);
    EXPECT_EQ(pids.size(), 4u) << "a fork server, its standby and two workers";
    EXPECT_TRUE(wait_until_gone(pids, 1s)) << "workers outlived their caller";
}

// A process forked from a pool's owner (fork() without exec, as a server forks per client)
// holds a copy of the pool but none of its threads, and shares its sockets. The copy must refuse
// calls (not wait for ever), and its destructor must return and leave the owner's workers alone:
// before, it shut the owner's fork server down and the owner's next call found no worker.
// Python's multiprocessing likewise ignores a pool's finalizer outside the process that made it.
template <class P>
class ForkedChild : public ::testing::Test {};
using OwnedPools = ::testing::Types<mproc::Pool, mproc::ThreadPool>;
TYPED_TEST_SUITE(ForkedChild, OwnedPools);

TYPED_TEST(ForkedChild, ItsCopyOfThePoolRefusesCallsAndLeavesTheOwnersWorkersAlone) {
    auto pool = std::make_unique<TypeParam>(2);
    const auto before = pool->map(worker_pid, std::vector<int>(8, 0), 1);
    std::fflush(nullptr);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int wrong = 0;
        try {
            pool->apply(bump_global, 0);
            wrong |= 1;
        } catch (const mproc::PoolNotRunning& e) {
            wrong |= std::string(e.what()).find("forked") == std::string::npos ? 2 : 0;
        }
        try {
            pool->close();
            wrong |= 4;
        } catch (const mproc::PoolNotRunning&) {
        }
        pool.reset(); // the copy's destructor: returns, and touches nothing of the owner's
        _exit(wrong == 0 ? 0 : 10 + wrong);
    }
    ASSERT_TRUE(ends_cleanly(child, 20s,
                             "a hang: in a call or in the copy's destructor; 11: a call ran; 12: "
                             "the refusal does not say why; 14: close() was taken"));
    // The owner's pool goes on, on the same workers: none was lost and replaced.
    const auto after = pool->map(worker_pid, std::vector<int>(8, 0), 1);
    const std::set<long> workers(before.begin(), before.end());
    for (const long pid : after) {
        EXPECT_TRUE(workers.contains(pid)) << "worker " << pid << " replaced one of the owner's";
    }
}

// A daemon may run with its standard streams closed. The pool's first descriptors would then
// take numbers 0-2, and a worker's print to stdout went into the fork server's control socket:
// the caller took the garbage for a dead server and learnt no worker's exit status from then on.
long square_long(long x) { return x * x; }

/// A task that needs parallelism of its own makes its own pools in its worker process: threads,
/// and worker processes of its own.
long sum_of_squares_on_inner_pools(int n) {
    std::vector<long> xs(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        xs[static_cast<std::size_t>(i)] = i;
    }
    auto square = [](long x) { return x * x; };
    mproc::ThreadPool threads(2);
    long sum = 0;
    for (long r : threads.map(square, xs)) {
        sum += r;
    }
    mproc::Pool processes(2);
    for (long r : processes.map(mproc::fn<square_long>, xs)) {
        sum += r;
    }
    return sum;
}

TEST(ProcessPool, ATaskMakesItsOwnPoolsForNestedParallelism) {
    mproc::Pool pool(2);
    const std::vector<int> sizes{10, 100};
    const std::vector<long> sums = pool.map(sum_of_squares_on_inner_pools, sizes, 1);
    EXPECT_EQ(sums, (std::vector<long>{2 * 285, 2 * 328350}));
}

TEST(ProcessPool, WithTheStandardStreamsClosedNoPoolDescriptorTakesTheirPlace) {
    std::fflush(nullptr);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(0);
        ::close(1);
        ::close(2);
        int wrong = 0;
        {
            mproc::Pool pool(2);
            if (pool.map(print_and_square, std::vector<long>{1, 2, 3, 4}, 1) !=
                std::vector<long>{1, 4, 9, 16}) {
                wrong |= 1;
            }
            try {
                pool.apply(segfault, 0);
                wrong |= 2;
            } catch (const mproc::WorkerLost& e) {
                // The signal's name comes from the exit status, which the fork server reports.
                wrong |=
                    std::string(e.what()).find("Segmentation fault") == std::string::npos ? 4 : 0;
            }
            wrong |= pool.apply(print_and_square, 5) == 25 ? 0 : 8;
        }
        char target[64] = {};
        wrong |= readlink("/proc/self/fd/1", target, sizeof(target) - 1) > 0 &&
                         std::string(target) == "/dev/null"
                     ? 0
                     : 16;
        _exit(wrong == 0 ? 0 : 100 + wrong);
    }
    EXPECT_TRUE(ends_cleanly(child, 60s,
                             "100 + 1: wrong map results; 2: no WorkerLost; 4: WorkerLost "
                             "without the exit status; 8: no replacement; 16: descriptor 1 is "
                             "not /dev/null"));
}

TEST(ProcessPool, AWorkerRefusesCodeItDoesNotHave) {
    // A real worker loop on one end of a socket; the test plays the caller with a run request
    // naming code in a module this binary does not have (as a different binary would).
    int channel[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel), 0);
    const pid_t worker = fork();
    ASSERT_GE(worker, 0);
    if (worker == 0) {
        ::close(channel[0]);
        mproc::detail::run_worker_process(channel[1], 1, {});
    }
    ::close(channel[1]);
    using namespace mproc::detail;
    FrameKind kind{};
    std::vector<std::byte> payload;
    ASSERT_TRUE(receive_frame(channel[0], kind, payload));
    ASSERT_EQ(kind, FrameKind::hello);
    ASSERT_TRUE(receive_frame(channel[0], kind, payload)); // its lane, not used here
    ASSERT_EQ(kind, FrameKind::fast_lane);
    WireWriter request;
    request.write(CodeAddress{this_program_id() ^ 0x5a5a5a5a5a5a5a5aULL, 64});
    send_frame(channel[0], FrameKind::run, request.data(), request.size());
    ASSERT_TRUE(receive_frame(channel[0], kind, payload));
    EXPECT_EQ(kind, FrameKind::failed);
    WireReader in(payload.data(), payload.size());
    try {
        std::rethrow_exception(decode_exception(in, worker, 0));
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("different binary"), std::string::npos) << e.what();
    }
    send_frame(channel[0], FrameKind::stop, nullptr, 0);
    int status = 0;
    waitpid(worker, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ::close(channel[0]);
}

} // namespace
