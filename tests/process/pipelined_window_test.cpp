// SPDX-License-Identifier: MIT
// The process backend queues several short chunks at a worker ahead of time (its pipelined
// window). None of the pool's promises may change with it: a crash loses exactly the item that
// was running and nothing queued behind it, max_tasks_per_child still retires a worker after
// exactly that many chunks, a time limit still counts from the start of its own chunk, and
// terminate still ends everything in flight. Tiny tasks by the thousand, so that windows fill.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

namespace {

using namespace std::chrono_literals;

constexpr auto long_wait = 30s;
constexpr int items = 4000;
constexpr int crash_item = 2500;

int doubled(int item) { return 2 * item; }

// Volatile and in the first page (never mapped): the write really happens and really faults.
volatile std::uintptr_t unmapped_address = 16;

int doubled_or_segfault(int item) {
    if (item == crash_item) {
        *reinterpret_cast<volatile int*>(unmapped_address) = 1;
    }
    return 2 * item;
}

int doubled_or_sigkill(int item) {
    if (item == crash_item) {
        ::kill(getpid(), SIGKILL); // no handler sees it: no crash report
        pause();
    }
    return 2 * item;
}

int doubled_or_hang(int item) {
    if (item == crash_item) {
        std::this_thread::sleep_for(60s);
    }
    return 2 * item;
}

long worker_pid(int) { return static_cast<long>(getpid()); }

/// Spins `us` microseconds, then says (1) whether a request already waits in this worker
/// process's channel to the caller (a socket of this process with bytes unread): a chunk that
/// was queued behind this one.
int spin_then_request_waiting(int us) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    while (std::chrono::steady_clock::now() < until) {
    }
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        struct stat status {};
        int unread = 0;
        if (::fstat(fd, &status) == 0 && S_ISSOCK(status.st_mode) &&
            ::ioctl(fd, FIONREAD, &unread) == 0 && unread > 0) {
            return 1;
        }
    }
    return 0;
}

std::vector<int> inputs() {
    std::vector<int> all(items);
    for (int i = 0; i < items; ++i) {
        all[static_cast<std::size_t>(i)] = i;
    }
    return all;
}

/// Every outcome but the one of crash_item holds its value; that one holds `Error`.
template <class Error, class Outcomes>
void expect_only_crash_item_failed(const Outcomes& outcomes) {
    ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(items));
    for (int i = 0; i < items; ++i) {
        const auto& outcome = outcomes[static_cast<std::size_t>(i)];
        if (i == crash_item) {
            ASSERT_FALSE(outcome.has_value());
            try {
                std::rethrow_exception(outcome.error());
            } catch (const Error& e) {
                EXPECT_EQ(e.task_index(), static_cast<std::size_t>(crash_item)) << e.what();
            } catch (...) {
                ADD_FAILURE() << "item " << i << " failed with another error";
            }
        } else {
            ASSERT_TRUE(outcome.has_value()) << "item " << i << " was lost too";
            EXPECT_EQ(outcome.value(), 2 * i);
        }
    }
}

constexpr int kill_every = 200;

int doubled_or_sigkill_now_and_then(int item) {
    if (item % kill_every == kill_every - 1) {
        ::kill(getpid(), SIGKILL); // no handler: only what the worker left in shared memory
        pause();
    }
    return 2 * item;
}

TEST(PipelinedWindow, ChunksOfAFewHundredMicrosecondsHaveOneQueuedBehindLongOnesNone) {
    // A round trip through the I/O thread costs a 300 us chunk a sizeable part of its time, so
    // the next one waits in the worker's socket (after a few measured ones); whether it does
    // is seen from the task. Chunks of a millisecond or more run alone.
    mproc::Pool pool(1);
    const auto medium = pool.map(spin_then_request_waiting, std::vector<int>(40, 300), 1);
    EXPECT_GT(std::count(medium.begin(), medium.end(), 1), 0)
        << "no 300 us chunk ever had the next one waiting behind it";
    const auto long_ones = pool.map(spin_then_request_waiting, std::vector<int>(8, 1500), 1);
    EXPECT_EQ(std::count(long_ones.begin(), long_ones.end(), 1), 0)
        << "a chunk of 1.5 ms had another queued behind it";
}

TEST(PipelinedWindow, ACrashAmongMediumTasksLosesExactlyTheCrashingItem) {
    // The same promise as for tiny tasks, with one chunk queued behind each running one.
    mproc::Pool pool(1);
    std::vector<int> spin_us(60, 200);
    spin_us[30] = -1; // crashes
    const auto outcomes = pool.map_outcomes(
        [](int us) {
            if (us < 0) {
                *reinterpret_cast<volatile int*>(unmapped_address) = 1;
            }
            return spin_then_request_waiting(us);
        },
        spin_us, 1);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        EXPECT_EQ(outcomes[i].has_value(), i != 30) << "item " << i;
    }
    EXPECT_THROW(std::rethrow_exception(outcomes[30].error()), mproc::WorkerLost);
}

TEST(PipelinedWindow, AnswersAWorkerHeldBackWhenItWasKilledAllArrive) {
    // A worker holds the answers of short chunks back while more chunks wait behind them, in
    // memory shared with the caller (held_answers.hpp). Twenty SIGKILLs, each in the middle of
    // a stream of tiny chunks, so that most come while answers are held: each must cost its own
    // item only, and every answer held at that moment must arrive as it was.
    mproc::Pool pool(1);
    const auto outcomes = pool.map_outcomes(doubled_or_sigkill_now_and_then, inputs(), 1);
    ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(items));
    for (int i = 0; i < items; ++i) {
        const auto& outcome = outcomes[static_cast<std::size_t>(i)];
        if (i % kill_every == kill_every - 1) {
            ASSERT_FALSE(outcome.has_value()) << "item " << i;
            try {
                std::rethrow_exception(outcome.error());
            } catch (const mproc::WorkerLost& e) {
                EXPECT_EQ(e.task_index(), static_cast<std::size_t>(i)) << e.what();
                EXPECT_EQ(e.signal(), SIGKILL);
            }
        } else {
            ASSERT_TRUE(outcome.has_value()) << "item " << i << " was lost too";
            EXPECT_EQ(outcome.value(), 2 * i);
        }
    }
}

TEST(PipelinedWindow, ACrashInAMapOfTinyTasksLosesExactlyTheCrashingItem) {
    mproc::Pool pool(2);
    // map submits every chunk at once: the windows fill as deep as they may.
    expect_only_crash_item_failed<mproc::WorkerLost>(
        pool.map_outcomes(doubled_or_segfault, inputs(), 1));
    expect_only_crash_item_failed<mproc::WorkerLost>(
        pool.map_outcomes(doubled_or_sigkill, inputs(), 1));
    EXPECT_EQ(pool.map(doubled, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{2, 4, 6}));
}

TEST(PipelinedWindow, ACrashInAnImapUnorderedStreamLosesOneItemAndEveryOtherArrives) {
    mproc::Pool pool(2);
    for (auto task : {doubled_or_segfault, doubled_or_sigkill}) {
        std::multiset<int> values;
        std::vector<std::size_t> lost;
        auto stream = pool.imap_unordered(task, inputs(), 1, 64);
        for (int i = 0; i < items; ++i) {
            try {
                values.insert(stream.next(long_wait).value());
            } catch (const mproc::WorkerLost& e) {
                lost.push_back(e.task_index());
            }
        }
        EXPECT_FALSE(stream.next(long_wait).has_value());
        EXPECT_EQ(lost, std::vector<std::size_t>{static_cast<std::size_t>(crash_item)});
        std::multiset<int> expected;
        for (int i = 0; i < items; ++i) {
            if (i != crash_item) {
                expected.insert(2 * i);
            }
        }
        EXPECT_EQ(values, expected);
    }
}

TEST(PipelinedWindow, ChunksQueuedBehindALostOneDoNotCountAsRetries) {
    // With one retry, the crashing item runs twice (and crashes twice); the items queued
    // behind it in its worker's window are re-queued without using up a retry of their own.
    mproc::Pool pool({.workers = 2, .max_retries = 1});
    const auto outcomes = pool.map_outcomes(doubled_or_segfault, inputs(), 1);
    expect_only_crash_item_failed<mproc::WorkerLost>(outcomes);
    try {
        std::rethrow_exception(outcomes[crash_item].error());
    } catch (const mproc::WorkerLost& e) {
        EXPECT_EQ(e.retries(), 1u);
    }
}

TEST(PipelinedWindow, MaxTasksPerChildRetiresWorkersOnTimeWithTinyTasks) {
    constexpr std::size_t per_child = 5;
    mproc::Pool pool({.workers = 2, .max_tasks_per_child = per_child});
    const auto pids = pool.map(worker_pid, std::vector<int>(400, 0), 1);
    std::map<long, std::size_t> tasks_of;
    for (const long pid : pids) {
        ++tasks_of[pid];
    }
    for (const auto& [pid, count] : tasks_of) {
        EXPECT_LE(count, per_child) << "worker " << pid << " ran past max_tasks_per_child";
    }
    EXPECT_GE(tasks_of.size(), 400 / per_child);

    std::map<long, std::size_t> streamed;
    for (const long pid : pool.imap_unordered(worker_pid, std::vector<int>(200, 0), 1, 64)) {
        ++streamed[pid];
    }
    for (const auto& [pid, count] : streamed) {
        EXPECT_LE(count, per_child) << "worker " << pid << " ran past max_tasks_per_child";
    }
}

TEST(PipelinedWindow, ATimeLimitCountsForItsOwnChunkAmongManyShortOnes) {
    // Thousands of short chunks with a limit: none of them times out, only the one that hangs,
    // and the chunks after it are not held up behind it.
    mproc::Pool pool(2);
    expect_only_crash_item_failed<mproc::TaskTimeout>(
        pool.map_outcomes(mproc::with_timeout(doubled_or_hang, 500ms), inputs(), 1));

    mproc::Pool limited({.workers = 2, .task_timeout = 500ms});
    expect_only_crash_item_failed<mproc::TaskTimeout>(
        limited.map_outcomes(doubled_or_hang, inputs(), 1));
}

TEST(PipelinedWindow, TerminateEndsEveryChunkInFlight) {
    mproc::Pool pool(2);
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < items; ++i) {
        results.push_back(pool.apply_async(doubled, i));
    }
    pool.terminate();
    std::size_t ran = 0;
    std::size_t terminated = 0;
    for (int i = 0; i < items; ++i) {
        auto& result = results[static_cast<std::size_t>(i)];
        ASSERT_TRUE(result.wait(long_wait)) << "item " << i << " never ended";
        try {
            EXPECT_EQ(result.get(), 2 * i);
            ++ran;
        } catch (const mproc::PoolTerminated&) {
            ++terminated;
        }
    }
    EXPECT_EQ(ran + terminated, static_cast<std::size_t>(items));
    pool.join();
}

} // namespace
