// SPDX-License-Identifier: MIT
#pragma once
// Tasks that make their worker process die in every way one can (a fault, abort(), SIGKILL,
// _exit(3), std::terminate), what the caller's mproc::WorkerLost must then say, and a check of
// every route a task's crash can take back to the caller. Shared by the tests of mproc::Pool
// (worker_failure_test.cpp) and mproc::MpiPool (../mpi/mpi_pool_test.cpp), which must report a
// crash alike.

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

namespace worker_crashes {

using namespace std::chrono_literals;

inline constexpr auto long_wait = 20s;

enum class Cause : int {
    none = 0,
    segfault,  // a wild write: SIGSEGV
    abort,     // abort(): SIGABRT
    kill,      // SIGKILL, which no handler sees
    exit3,     // _exit(3) in the task
    terminate, // std::terminate(): SIGABRT through the terminate handler
    raise,     // a C++ exception (not a crash)
    hang,      // sleeps for a minute (for hard timeouts)
};

inline const Cause crash_causes[] = {Cause::segfault, Cause::abort, Cause::kill, Cause::exit3,
                                     Cause::terminate};

/// Whether the worker's fatal-signal handler sees the death (and so reports the running item
/// and a backtrace).
inline bool reported(Cause cause) {
    return cause == Cause::segfault || cause == Cause::abort || cause == Cause::terminate;
}

// In the first page, which is never mapped; not null, which UBSan would report (and exit) before
// the write could fault. Volatile: opaque to the optimiser, so the write really happens.
inline volatile std::uintptr_t unmapped_address = 16;

[[gnu::noinline]] inline void crash_with(Cause cause) {
    switch (cause) {
    case Cause::segfault:
        *reinterpret_cast<volatile int*>(unmapped_address) = 1;
        break;
    case Cause::abort:
        std::abort();
    case Cause::kill:
        ::kill(getpid(), SIGKILL);
        pause();
        break;
    case Cause::exit3:
        _exit(3);
    case Cause::terminate:
        std::terminate();
    case Cause::raise:
        throw std::runtime_error("task raised");
    case Cause::hang:
        std::this_thread::sleep_for(60s);
        break;
    default:
        break;
    }
}

/// An item is `value * 16 + cause`: returns value * value, unless the cause makes it fail.
[[gnu::noinline]] inline int fragile_task(int item) {
    crash_with(static_cast<Cause>(item % 16));
    const int value = item / 16;
    return value * value;
}
inline int fragile_pair(int value, int cause) { return fragile_task(value * 16 + cause); }
/// fragile_task for an item written out: items that do not cross as their bytes.
inline int fragile_text(std::string item) { return fragile_task(std::stoi(item)); }
inline int item_of(int value, Cause cause) { return value * 16 + static_cast<int>(cause); }

/// The worker process a task runs in.
inline long pid_of_worker(int) { return static_cast<long>(getpid()); }

inline const char* cause_name(Cause cause) {
    static const char* names[] = {"none",  "segfault",  "abort", "kill",
                                  "exit3", "terminate", "raise", "hang"};
    return names[static_cast<int>(cause)];
}

/// What the WorkerLost for `cause` must say: the worker's pid (`worker_pid`, or any but this
/// process's when 0), the item, the cause, and a backtrace where the worker could send one.
inline void expect_lost_to(const mproc::WorkerLost& e, Cause cause, unsigned long long task_index,
                           long worker_pid = 0) {
    SCOPED_TRACE(e.what());
    const std::string message = e.what();
    EXPECT_NE(e.worker_pid(), 0);
    EXPECT_NE(e.worker_pid(), static_cast<long>(getpid()));
    if (worker_pid != 0) {
        EXPECT_EQ(e.worker_pid(), worker_pid);
    }
    EXPECT_EQ(e.task_index(), task_index);
    EXPECT_NE(message.find(std::to_string(e.worker_pid())), std::string::npos);
    EXPECT_NE(message.find("while running task " + std::to_string(task_index)), std::string::npos);
    switch (cause) {
    case Cause::segfault:
        EXPECT_EQ(e.signal(), SIGSEGV);
        EXPECT_NE(message.find("Segmentation fault"), std::string::npos);
        break;
    case Cause::abort:
    case Cause::terminate:
        EXPECT_EQ(e.signal(), SIGABRT);
        EXPECT_NE(message.find("Aborted"), std::string::npos);
        break;
    case Cause::kill:
        EXPECT_EQ(e.signal(), SIGKILL);
        EXPECT_NE(message.find("Killed"), std::string::npos);
        break;
    case Cause::exit3:
        EXPECT_EQ(e.signal(), 0);
        EXPECT_EQ(e.exit_status(), 3);
        EXPECT_NE(message.find("exited with status 3"), std::string::npos);
        break;
    default:
        ADD_FAILURE() << "not a crash";
    }
    EXPECT_EQ(!e.backtrace_frames().empty(), reported(cause));
}

template <class F>
void expect_lost(F&& call, Cause cause, unsigned long long task_index, long worker_pid = 0) {
    try {
        std::forward<F>(call)();
        ADD_FAILURE() << "no WorkerLost for " << cause_name(cause);
    } catch (const mproc::WorkerLost& e) {
        expect_lost_to(e, cause, task_index, worker_pid);
    }
}

/// `error`, which must be a WorkerLost, as expect_lost_to wants it.
inline void expect_lost_error(const std::exception_ptr& error, Cause cause,
                              unsigned long long task_index, long worker_pid) {
    try {
        std::rethrow_exception(error);
    } catch (const mproc::WorkerLost& e) {
        expect_lost_to(e, cause, task_index, worker_pid);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a WorkerLost: " << e.what();
    }
}

/// Writes this worker's pid to `path`, then sleeps for a minute.
inline int report_pid_then_sleep(std::string path) {
    { std::ofstream(path + ".tmp") << getpid(); }
    std::rename((path + ".tmp").c_str(), path.c_str());
    std::this_thread::sleep_for(60s);
    return 0;
}

/// A file name of this process's own.
inline std::string temp_path(const char* name) {
    return "/tmp/mproc_" + std::string(name) + "_" + std::to_string(getpid());
}

inline long read_pid_when_written(const std::string& path) {
    long pid = 0;
    for (int attempt = 0; attempt < 2000 && pid == 0; ++attempt) {
        std::ifstream(path) >> pid;
        std::this_thread::sleep_for(5ms);
    }
    std::remove(path.c_str());
    return pid;
}

/// A worker killed from outside (SIGKILL) while it runs a task sends no report: its pid and the
/// signal must come all the same.
template <class Pool>
void expect_a_kill_from_outside_reported(Pool& pool) {
    const std::string path = temp_path("killed_from_outside");
    auto sleeping = pool.apply_async(report_pid_then_sleep, path);
    const long pid = read_pid_when_written(path);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
    ASSERT_TRUE(sleeping.wait(long_wait));
    expect_lost([&] { sleeping.get(); }, Cause::kill, 0, pid);
}

/// Every route by which a crash comes back: apply, map (chunksize 1; chunksize 4 with items
/// that cross as bytes and with items that do not), imap (chunksize 1 and 4), imap_unordered,
/// map_outcomes and imap_outcomes. `pool` has one worker process, so the pid a task reports
/// just before is the one that dies. Of the items 0..7, item 5 crashes; in chunks of 4 its
/// worker, where it could report, names it exactly and keeps item 4's result; where it could
/// not, the error names the chunk's first item, 4.
template <class Pool>
void expect_every_route_names_the_item(Pool& pool, Cause cause) {
    ASSERT_EQ(pool.workers(), 1u);
    constexpr std::size_t crashing = 5;
    std::vector<int> items;
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) {
        items.push_back(item_of(i, i == static_cast<int>(crashing) ? cause : Cause::none));
        texts.push_back(std::to_string(items.back()));
    }
    const unsigned long long in_chunk_of_4 = reported(cause) ? crashing : 4;
    auto current_worker = [&] { return pool.apply(pid_of_worker, 0); };
    long pid = 0;

    {
        SCOPED_TRACE("apply");
        pid = current_worker();
        expect_lost([&] { pool.apply(fragile_task, item_of(9, cause)); }, cause, 0, pid);
    }
    {
        SCOPED_TRACE("map, chunksize 1");
        pid = current_worker();
        expect_lost([&] { pool.map(fragile_task, items, 1); }, cause, crashing, pid);
    }
    {
        SCOPED_TRACE("map, chunksize 4, items as bytes");
        pid = current_worker();
        expect_lost([&] { pool.map(fragile_task, items, 4); }, cause, in_chunk_of_4, pid);
    }
    {
        SCOPED_TRACE("map, chunksize 4, items encoded");
        pid = current_worker();
        expect_lost([&] { pool.map(fragile_text, texts, 4); }, cause, in_chunk_of_4, pid);
    }
    for (const std::ptrdiff_t chunksize : {1, 4}) {
        SCOPED_TRACE("imap, chunksize " + std::to_string(chunksize));
        pid = current_worker();
        const unsigned long long named = chunksize == 1 ? crashing : in_chunk_of_4;
        auto stream = pool.imap(fragile_task, items, chunksize);
        for (std::size_t i = 0; i < items.size(); ++i) {
            SCOPED_TRACE(i);
            // With chunksize 4 the items after the crashing one, in its chunk, never ran.
            const bool lost_here = chunksize == 1 ? i == crashing : i >= named;
            try {
                EXPECT_EQ(stream.next(long_wait).value(), static_cast<int>(i * i));
                EXPECT_FALSE(lost_here);
            } catch (const mproc::WorkerLost& e) {
                EXPECT_TRUE(lost_here);
                expect_lost_to(e, cause, named, pid);
            }
        }
    }
    {
        SCOPED_TRACE("imap_unordered");
        pid = current_worker();
        std::size_t lost = 0;
        auto stream = pool.imap_unordered(fragile_task, items);
        for (std::size_t i = 0; i < items.size(); ++i) {
            try {
                (void)stream.next(long_wait).value();
            } catch (const mproc::WorkerLost& e) {
                ++lost;
                expect_lost_to(e, cause, crashing, pid);
            }
        }
        EXPECT_EQ(lost, 1u);
    }
    {
        SCOPED_TRACE("map_outcomes, chunksize 4");
        pid = current_worker();
        const auto outcomes = pool.map_outcomes(fragile_task, items, 4);
        ASSERT_EQ(outcomes.size(), items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            SCOPED_TRACE(i);
            if (i < in_chunk_of_4) {
                EXPECT_EQ(outcomes[i].value(), static_cast<int>(i * i));
            } else {
                ASSERT_FALSE(outcomes[i].has_value());
                expect_lost_error(outcomes[i].error(), cause, in_chunk_of_4, pid);
            }
        }
    }
    {
        SCOPED_TRACE("imap_outcomes");
        pid = current_worker();
        std::size_t i = 0;
        for (const auto& outcome : pool.imap_outcomes(fragile_task, items)) {
            SCOPED_TRACE(i);
            if (i == crashing) {
                ASSERT_FALSE(outcome.has_value());
                expect_lost_error(outcome.error(), cause, crashing, pid);
            } else {
                EXPECT_EQ(outcome.value(), static_cast<int>(i * i));
            }
            ++i;
        }
        EXPECT_EQ(i, items.size());
    }
    EXPECT_EQ(pool.apply(fragile_task, item_of(7, Cause::none)), 49); // and the pool goes on
}

/// What a worker that cannot decode an item throws (the caller encoded it fine).
class UndecodableItem : public std::exception {
  public:
    const char* what() const noexcept override { return "item 13 refused"; }
};

/// An item that crosses through cereal (not as its bytes) and that its worker refuses to decode
/// when `value` is 13: then the worker cannot run the chunk at all, and answers it `failed`.
struct RefusedItem {
    int value = 0;
    std::string text;

    template <class Archive>
    void save(Archive& archive) const {
        archive(value, text);
    }
    template <class Archive>
    void load(Archive& archive) {
        archive(value, text);
        if (value == 13) {
            throw UndecodableItem();
        }
    }
};
inline int value_of(RefusedItem item) { return item.value; }

/// A chunk its worker refused (a `failed` answer) names its own item in the call, on a stream
/// too, whose chunks are kept in slots that are reused: with a buffer of 2 chunks, item 13's
/// chunk is in slot 1.
template <class Pool>
void expect_a_refused_item_named_in_a_stream(Pool& pool) {
    std::vector<RefusedItem> items;
    for (int i = 0; i < 16; ++i) {
        items.push_back({i, "item"});
    }
    int i = 0;
    for (const auto& outcome : pool.imap_outcomes(value_of, items, 1, 2)) {
        SCOPED_TRACE(i);
        if (i != 13) {
            EXPECT_EQ(outcome.value(), i);
        } else {
            try {
                std::rethrow_exception(outcome.error());
            } catch (const mproc::RemoteError& e) {
                EXPECT_EQ(e.task_index(), 13u) << e.what();
                EXPECT_EQ(e.message(), "item 13 refused");
            }
        }
        ++i;
    }
    EXPECT_EQ(i, 16);
}

} // namespace worker_crashes
