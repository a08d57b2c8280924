// SPDX-License-Identifier: MIT
// What mproc::Pool does when workers die, hang, eat memory or talk garbage: every affected task
// ends with an error that says what happened, every other task completes, the pool goes on, and
// nothing hangs. All with real workers that really crash.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "process_table.hpp"
#include "worker_crashes.hpp"

namespace {

using namespace std::chrono_literals;
using namespace process_table;
using namespace worker_crashes;

class WorkerCrash : public ::testing::TestWithParam<Cause> {};

INSTANTIATE_TEST_SUITE_P(Causes, WorkerCrash, ::testing::ValuesIn(crash_causes),
                         [](const auto& info) { return std::string(cause_name(info.param)); });

TEST_P(WorkerCrash, EveryCallReportsTheLostTaskAndTheOthersComplete) {
    const Cause cause = GetParam();
    mproc::Pool pool(2);
    const std::vector<int> good_items{item_of(1, Cause::none), item_of(2, Cause::none),
                                      item_of(3, Cause::none), item_of(4, Cause::none)};
    const std::vector<int> items{item_of(1, Cause::none), item_of(2, Cause::none),
                                 item_of(9, cause), // task index 2 crashes
                                 item_of(3, Cause::none), item_of(4, Cause::none)};

    // apply, apply_async
    expect_lost([&] { pool.apply(fragile_task, item_of(5, cause)); }, cause, 0);
    auto pending = pool.apply_async(fragile_task, item_of(5, cause));
    ASSERT_TRUE(pending.wait(long_wait));
    expect_lost([&] { pending.get(); }, cause, 0);
    EXPECT_EQ(pool.apply(fragile_task, item_of(7, Cause::none)), 49); // replaced, and goes on

    // map, map_async, starmap (chunksize 1: the error names the item)
    expect_lost([&] { pool.map(fragile_task, items, 1); }, cause, 2);
    auto mapped = pool.map_async(fragile_task, items, 1);
    ASSERT_TRUE(mapped.wait(long_wait));
    expect_lost([&] { mapped.get(); }, cause, 2);
    std::vector<std::pair<int, int>> pairs{{1, 0}, {2, 0}, {9, static_cast<int>(cause)}, {3, 0}};
    expect_lost([&] { pool.starmap(fragile_pair, pairs, 1); }, cause, 2);

    // imap, imap_unordered: the lost item throws where it stands; every other item is there
    std::vector<int> values;
    std::size_t lost = 0;
    auto stream = pool.imap(fragile_task, items);
    for (std::size_t i = 0; i < items.size(); ++i) {
        try {
            values.push_back(stream.next(long_wait).value());
        } catch (const mproc::WorkerLost& e) {
            ++lost;
            expect_lost_to(e, cause, 2);
            EXPECT_EQ(i, 2u);
        }
    }
    EXPECT_EQ(lost, 1u);
    EXPECT_EQ(values, (std::vector<int>{1, 4, 9, 16}));
    lost = 0;
    values.clear();
    auto unordered = pool.imap_unordered(fragile_task, items);
    for (std::size_t i = 0; i < items.size(); ++i) {
        try {
            values.push_back(unordered.next(long_wait).value());
        } catch (const mproc::WorkerLost& e) {
            ++lost;
            expect_lost_to(e, cause, 2);
        }
    }
    EXPECT_EQ(lost, 1u);
    std::sort(values.begin(), values.end());
    EXPECT_EQ(values, (std::vector<int>{1, 4, 9, 16}));
    EXPECT_FALSE(unordered.next(long_wait).has_value());

    // and the pool is still whole
    EXPECT_EQ(pool.map(fragile_task, good_items), (std::vector<int>{1, 4, 9, 16}));
}

TEST_P(WorkerCrash, InAChunkTheFinishedItemsAreKeptWhenTheWorkerCouldReport) {
    const Cause cause = GetParam();
    mproc::Pool pool(1);
    // One chunk of four; the third crashes.
    const std::vector<int> items{item_of(1, Cause::none), item_of(2, Cause::none),
                                 item_of(3, cause), item_of(4, Cause::none)};
    const auto outcomes = pool.map_outcomes(fragile_task, items, 4);
    ASSERT_EQ(outcomes.size(), 4u);
    const bool reported = !(cause == Cause::kill || cause == Cause::exit3);
    for (std::size_t i = 0; i < 4; ++i) {
        SCOPED_TRACE(i);
        if (reported && i < 2) {
            EXPECT_EQ(outcomes[i].value(), static_cast<int>((i + 1) * (i + 1)));
            continue;
        }
        ASSERT_FALSE(outcomes[i].has_value());
        try {
            std::rethrow_exception(outcomes[i].error());
        } catch (const mproc::WorkerLost& e) {
            // With a report, the crashing item is named; without one, only its chunk is known.
            expect_lost_to(e, cause, reported ? 2 : 0);
        }
    }
}

TEST_P(WorkerCrash, EveryRouteNamesTheItemItsWorkerWasRunning) {
    mproc::Pool pool(1);
    expect_every_route_names_the_item(pool, GetParam());
}

TEST(WorkerCrash, TheBacktraceNamesTheCrashingFunction) {
    mproc::Pool pool(1);
    try {
        pool.apply(fragile_task, item_of(1, Cause::segfault));
        FAIL() << "no WorkerLost";
    } catch (const mproc::WorkerLost& e) {
        const std::string text = e.backtrace();
        ASSERT_FALSE(text.empty());
        // Symbolised by addr2line (binutils, beside the compiler), from the test's symbols.
        EXPECT_NE(text.find("crash_with"), std::string::npos) << text;
        EXPECT_NE(text.find("fragile_task"), std::string::npos) << text;
        EXPECT_NE(text.find("worker_crashes.hpp"), std::string::npos) << text;
    }
}

TEST(WorkerCrash, AWorkerKilledFromOutsideEndsItsTaskAndIsReplaced) {
    mproc::Pool pool(1);
    expect_a_kill_from_outside_reported(pool);
    EXPECT_EQ(pool.apply(fragile_task, item_of(6, Cause::none)), 36);
}

TEST(WorkerCrash, AChunkItsWorkerCannotRunNamesItsItemInAStream) {
    mproc::Pool pool(1);
    expect_a_refused_item_named_in_a_stream(pool);
}

// ---- stress: random crashes of every kind, nothing lost, nothing counted twice -----------------

TEST(Stress, TwoThousandTasksWithRandomCrashesEachEndExactlyOnce) {
    { mproc::Pool warm_up(1); } // first-use allocations happen before the counts below
    const auto fds_before = open_fds();
    const auto children_before = child_processes();

    constexpr int tasks = 2000;
    std::mt19937 random(20261125); // fixed seed: a failure can be replayed
    std::vector<int> items;
    std::vector<Cause> planned;
    for (int i = 0; i < tasks; ++i) {
        Cause cause = Cause::none;
        const int roll = static_cast<int>(random() % 1000);
        if (roll < 100) { // ~10%: a crash, of a random kind
            cause = crash_causes[random() % std::size(crash_causes)];
        } else if (roll < 120) { // ~2%: an ordinary exception
            cause = Cause::raise;
        } else if (roll < 122) { // a few tasks that never end
            cause = Cause::hang;
        }
        planned.push_back(cause);
        items.push_back(item_of(i % 1000, cause));
    }

    std::size_t values = 0;
    std::size_t errors = 0;
    const auto started = std::chrono::steady_clock::now();
    {
        mproc::Pool pool(4);
        const auto outcomes = pool.map_outcomes(mproc::with_timeout(fragile_task, 500ms), items, 1);
        ASSERT_EQ(outcomes.size(), items.size());
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            SCOPED_TRACE("task " + std::to_string(i) + ": " + cause_name(planned[i]));
            const auto& outcome = outcomes[i];
            if (outcome) {
                ++values;
                EXPECT_EQ(planned[i], Cause::none);
                EXPECT_EQ(*outcome, (static_cast<int>(i) % 1000) * (static_cast<int>(i) % 1000));
                continue;
            }
            ++errors;
            try {
                std::rethrow_exception(outcome.error());
            } catch (const mproc::WorkerLost& e) {
                expect_lost_to(e, planned[i], i); // the right task, the right cause
            } catch (const mproc::TaskTimeout& e) {
                EXPECT_EQ(planned[i], Cause::hang);
                EXPECT_EQ(e.task_index(), i);
            } catch (const std::runtime_error& e) {
                EXPECT_EQ(planned[i], Cause::raise);
                EXPECT_STREQ(e.what(), "task raised");
            }
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto failures = static_cast<std::size_t>(
        std::count_if(planned.begin(), planned.end(), [](Cause c) { return c != Cause::none; }));
    EXPECT_EQ(values + errors, static_cast<std::size_t>(tasks));
    EXPECT_EQ(errors, failures); // every failure reported once, and nothing else failed
    EXPECT_GT(failures, 150u);   // the mix really happened
    EXPECT_EQ(child_processes(), children_before) << "a worker or the fork server is left";
    EXPECT_EQ(open_fds(), fds_before) << "a descriptor leaked";
    std::printf("stress: %d tasks, %zu failures planned and reported, %.2f s\n", tasks, failures,
                seconds);
}

// ---- retries ----------------------------------------------------------------------------------

/// Crashes (SIGSEGV) the first `crashes` times it runs for `path` (counted in that file).
int crash_the_first_times(std::string path, int crashes) {
    int runs = 0;
    std::ifstream(path) >> runs;
    std::ofstream(path) << runs + 1;
    if (runs < crashes) {
        crash_with(Cause::segfault);
    }
    return runs;
}

TEST(Retries, ATaskThatLostItsWorkerRunsAgain) {
    const std::string path = temp_path("retries");
    std::remove(path.c_str());
    mproc::Pool pool({.workers = 1, .max_retries = 2});
    EXPECT_EQ(pool.apply(crash_the_first_times, path, 2), 2); // crashed twice, then ran
    std::remove(path.c_str());
    try {
        pool.apply(crash_the_first_times, path, 5);
        FAIL() << "no WorkerLost";
    } catch (const mproc::WorkerLost& e) {
        EXPECT_EQ(e.retries(), 2u);
        EXPECT_EQ(e.signal(), SIGSEGV);
        EXPECT_NE(std::string(e.what()).find("after 2 retries"), std::string::npos) << e.what();
    }
    std::remove(path.c_str());
}

TEST(Retries, NoneByDefault) {
    const std::string path = temp_path("no_retries");
    std::remove(path.c_str());
    mproc::Pool pool(1);
    EXPECT_THROW(pool.apply(crash_the_first_times, path, 1), mproc::WorkerLost);
    EXPECT_EQ(pool.apply(crash_the_first_times, path, 1), 1);
    std::remove(path.c_str());
    EXPECT_THROW(mproc::Pool({.workers = 1, .max_retries = -1}), std::invalid_argument);
}

// ---- hard timeouts ----------------------------------------------------------------------------

int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

TEST(TaskTimeout, APoolLimitKillsTheTaskAndThePoolGoesOn) {
    mproc::Pool pool({.workers = 2, .task_timeout = 300ms});
    const auto started = std::chrono::steady_clock::now();
    try {
        pool.apply(sleep_ms, 60'000);
        FAIL() << "no TaskTimeout";
    } catch (const mproc::TaskTimeout& e) {
        EXPECT_NE(e.worker_pid(), 0);
        EXPECT_EQ(e.task_index(), 0u);
        EXPECT_TRUE(wait_until_gone({e.worker_pid()}, 5s)) << "the overdue worker still runs";
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s); // not the task's minute
    // One item of a map times out; the rest are kept.
    const auto outcomes = pool.map_outcomes(sleep_ms, std::vector<int>{1, 60'000, 2, 3}, 1);
    EXPECT_EQ(outcomes[0].value(), 1);
    EXPECT_THROW((void)outcomes[1].value(), mproc::TaskTimeout);
    EXPECT_EQ(outcomes[2].value(), 2);
    EXPECT_EQ(outcomes[3].value(), 3);
    EXPECT_EQ(pool.apply(sleep_ms, 5), 5);
}

TEST(TaskTimeout, APerCallLimitOverridesThePoolsAndIsNotAGetTimeout) {
    mproc::Pool pool(2);
    EXPECT_THROW(pool.apply(mproc::with_timeout(sleep_ms, 200ms), 60'000), mproc::TaskTimeout);
    EXPECT_EQ(pool.apply(mproc::with_timeout(sleep_ms, 20s), 10), 10);
    auto stream = pool.imap(mproc::with_timeout(sleep_ms, 300ms), std::vector<int>{1, 60'000, 3});
    EXPECT_EQ(stream.next(long_wait).value(), 1);
    try {
        stream.next(long_wait);
        FAIL() << "no TaskTimeout";
    } catch (const mproc::TaskTimeout& e) {
        EXPECT_EQ(e.task_index(), 1u);
    }
    EXPECT_EQ(stream.next(long_wait).value(), 3);
    // get(timeout) only stops waiting, as in Python: the task runs on and delivers.
    auto slow = pool.apply_async(sleep_ms, 400);
    EXPECT_THROW(slow.get(10ms), mproc::TimeoutError);
    EXPECT_EQ(slow.get(long_wait), 400);
    EXPECT_THROW(mproc::with_timeout(sleep_ms, 0s), std::invalid_argument);
}

TEST(TaskTimeout, ThreadPoolRefusesALimitItCannotEnforce) {
    EXPECT_THROW(mproc::ThreadPool({.workers = 1, .task_timeout = 1s}), std::invalid_argument);
    EXPECT_THROW(mproc::ThreadPool({.workers = 1, .worker_memory_limit = 1 << 30}),
                 std::invalid_argument);
}

// ---- memory limit -----------------------------------------------------------------------------

#if defined(MPROC_ASAN_OR_TSAN)
constexpr bool address_space_is_reserved_by_a_sanitizer = true;
#else
constexpr bool address_space_is_reserved_by_a_sanitizer = false;
#endif

/// Where allocate_and_touch's block goes, so that no compiler may leave it out (Clang drops an
/// allocation whose memory nobody reads).
char* volatile escaped_block = nullptr;

std::size_t allocate_and_touch(std::size_t bytes) {
    std::vector<char> block(bytes, 1);
    escaped_block = block.data();
    return block.size();
}

TEST(MemoryLimit, ATaskPastTheLimitFailsWithBadAllocAndThePoolGoesOn) {
    if (address_space_is_reserved_by_a_sanitizer) {
        GTEST_SKIP() << "ASan/TSan reserve terabytes of address space: RLIMIT_AS cannot apply";
    }
    mproc::Pool pool({.workers = 1, .worker_memory_limit = std::size_t{1} << 30});
    EXPECT_THROW(pool.apply(allocate_and_touch, std::size_t{4} << 30), std::bad_alloc);
    EXPECT_EQ(pool.apply(allocate_and_touch, std::size_t{64} << 20), std::size_t{64} << 20);
    // The caller itself is not limited.
    EXPECT_EQ(allocate_and_touch(std::size_t{1} << 30), std::size_t{1} << 30);
}

// ---- terminate, early break, destruction: nothing pending, nothing left ----------------------

TEST(InFlight, TerminateEndsEveryPendingResultAndReapsEveryWorker) {
    const auto children_before = child_processes();
    std::vector<mproc::AsyncResult<int>> results;
    {
        mproc::Pool pool(2);
        for (int i = 0; i < 6; ++i) {
            results.push_back(pool.apply_async(sleep_ms, 60'000));
        }
        results.push_back(pool.apply_async(fragile_task, item_of(1, Cause::abort)));
        std::this_thread::sleep_for(100ms);
        pool.terminate();
        for (auto& result : results) {
            ASSERT_TRUE(result.wait(long_wait));
            EXPECT_FALSE(result.successful());
        }
        pool.join();
    }
    EXPECT_EQ(child_processes(), children_before);
}

TEST(InFlight, BreakingOutOfImapLeavesThePoolUsable) {
    const auto children_before = child_processes();
    {
        mproc::Pool pool(2);
        std::vector<int> items(50, 300);
        items[0] = item_of(1, Cause::none);
        for (int r : pool.imap(fragile_task, std::vector<int>{item_of(2, Cause::none),
                                                              item_of(3, Cause::segfault)})) {
            EXPECT_EQ(r, 4);
            break; // the crashing item may still be in flight
        }
        for ([[maybe_unused]] int r : pool.imap_unordered(sleep_ms, items)) {
            break; // slow items in flight
        }
        EXPECT_EQ(pool.apply(fragile_task, item_of(5, Cause::none)), 25);
    }
    EXPECT_EQ(child_processes(), children_before);
}

TEST(InFlight, DestroyingThePoolEndsWhatOutlivesIt) {
    const auto children_before = child_processes();
    mproc::AsyncResult<std::vector<int>> mapped;
    {
        mproc::Pool pool(2);
        mapped = pool.map_async(sleep_ms, std::vector<int>(8, 60'000), 1);
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(mapped.wait(long_wait));
    EXPECT_THROW(mapped.get(), mproc::PoolTerminated);
    EXPECT_EQ(child_processes(), children_before);
}

// ---- a worker that talks garbage is lost, never believed --------------------------------------

/// Writes `bytes` on the worker's own channel (fd 3) as if it were a frame, then sleeps (or
/// exits at once when `then_exit`).
int write_on_channel(std::vector<unsigned char> bytes, bool then_exit) {
    [[maybe_unused]] const ssize_t n = ::write(3, bytes.data(), bytes.size());
    if (then_exit) {
        _exit(0);
    }
    std::this_thread::sleep_for(60s);
    return 0;
}

std::vector<unsigned char> frame_header(std::uint32_t kind, std::uint64_t size) {
    std::vector<unsigned char> bytes(16);
    std::memcpy(bytes.data(), &kind, 4);
    std::memcpy(bytes.data() + 8, &size, 8);
    return bytes;
}

void expect_lost_for_garbage(mproc::Pool& pool, std::vector<unsigned char> bytes, bool then_exit,
                             const char* says) {
    try {
        pool.apply(write_on_channel, std::move(bytes), then_exit);
        ADD_FAILURE() << "no WorkerLost";
    } catch (const mproc::WorkerLost& e) {
        EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
        EXPECT_TRUE(wait_until_gone({e.worker_pid()}, 5s)) << "the liar still runs";
    }
    EXPECT_EQ(pool.apply(fragile_task, item_of(3, Cause::none)), 9);
}

TEST(Garbage, AnUnknownFrameKindLosesTheWorker) {
    mproc::Pool pool(1);
    expect_lost_for_garbage(pool, frame_header(0xdeadbeef, 4), false, "unknown frame kind");
}

TEST(Garbage, AnAbsurdFrameSizeLosesTheWorkerWithoutAllocatingIt) {
    mproc::Pool pool(1);
    expect_lost_for_garbage(pool, frame_header(4, ~std::uint64_t{0}), false, "refused");
    // 60 GiB announced, 8 bytes sent: refused when the rest does not come, nothing reserved.
    auto header = frame_header(4, std::uint64_t{60} << 30);
    header.resize(header.size() + 8, 0x11);
    expect_lost_for_garbage(pool, header, true, "truncated frame");
}

TEST(Garbage, ATruncatedFrameLosesTheWorker) {
    mproc::Pool pool(1);
    auto header = frame_header(4, 100);
    header.resize(header.size() + 10, 0x22);
    expect_lost_for_garbage(pool, header, true, "truncated frame");
    // ...and a worker that stops in the middle of a frame and stays alive is not waited for
    // past the stall limit (5 s).
    expect_lost_for_garbage(pool, header, false, "stalled");
}

TEST(Garbage, ADoneFrameThatDoesNotDecodeFailsItsTask) {
    mproc::Pool pool(1);
    // A well-formed frame whose payload is not an outcome: the task fails, and the worker,
    // which then answers for real, is believed no more.
    auto frame = frame_header(4, 3);
    frame.insert(frame.end(), {7, 7, 7});
    const auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(pool.apply(write_on_channel, frame, false), mproc::Error);
    EXPECT_EQ(pool.apply(fragile_task, item_of(4, Cause::none)), 16);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "waited for the liar's task";
}

TEST(Garbage, AGarbledContainerSizeIsRefusedBeforeAnyAllocation) {
    // Found by the wire-decoder fuzzer: cereal sizes a container before reading it, so a few
    // bytes announcing 2^32 characters cost 4 GiB. The checked archive refuses the size.
    using namespace mproc::detail;
    WireWriter out;
    encode_value(out, std::vector<std::string>{"abc"});
    // value size (8 bytes), element count (8), the string's length (8), its bytes
    const std::uint64_t huge = std::uint64_t{1} << 32;
    std::memcpy(out.bytes().data() + 16, &huge, sizeof(huge));
    WireReader in(out.data(), out.size());
    EXPECT_THROW(decode_value<std::vector<std::string>>(in), WireError);
}

// ---- fork safety: replacements come from the fork server, not from this threaded process --

std::mutex shared_with_tasks; // locked by tasks in their worker, and here by another thread

int lock_shared_mutex(int x) {
    std::lock_guard lock(shared_with_tasks);
    return x + 1;
}

TEST(ForkSafety, AReplacementWorkerDoesNotInheritALockAnotherThreadHolds) {
    mproc::Pool pool({.workers = 1, .max_tasks_per_child = 2});
    std::atomic<bool> held{false};
    std::atomic<bool> release{false};
    std::thread holder([&] {
        std::lock_guard lock(shared_with_tasks);
        held = true;
        while (!release)
            std::this_thread::sleep_for(1ms);
    });
    while (!held)
        std::this_thread::sleep_for(1ms);
    // The worker crashes, and is retired: both replacements start while the lock is held here.
    EXPECT_THROW(pool.apply(fragile_task, item_of(1, Cause::segfault)), mproc::WorkerLost);
    std::vector<mproc::AsyncResult<int>> results;
    for (int i = 0; i < 6; ++i) {
        results.push_back(pool.apply_async(lock_shared_mutex, i));
    }
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(results[static_cast<std::size_t>(i)].wait(long_wait)) << "deadlocked";
        EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i + 1);
    }
    release = true;
    holder.join();
}

} // namespace
