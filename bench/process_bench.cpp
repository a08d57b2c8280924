// SPDX-License-Identifier: MIT
// mproc::Pool (worker processes) on the workloads of the process pool's performance targets, with
// mproc::ThreadPool for reference; bench/python_pool_bench.py runs the same workloads on Python's
// multiprocessing.Pool and prints the same format. scripts/bench_process.sh runs both and prints
// them side by side with the targets.
//
//   apply            apply(f, 7) round trip, one at a time, on a pool of 2 made once (us/call);
//                    also two floors, round trips to a forked process with no pool around them
//                    (two hand-offs each, where the pool's path has four: caller, I/O thread,
//                    worker, I/O thread, caller):
//                      floor_socketpair  the caller itself writes a 24-byte frame to an echo
//                                        process over a socketpair and reads the answer;
//                      floor_futex_shm   the caller and the process take turns on a word of
//                                        shared memory, sleeping on it with futex(2) (what a
//                                        ThreadPool hand-off costs, across processes)
//   map              map(f, 10^6 int64) with the default chunksize, pool of 2 made once (items/s);
//                    also its floor, impl "floor_socket_blocks": the same chunks sent to 2 forked
//                    processes over socketpairs as raw blocks of int64 (one copy in, one out, no
//                    per-item encoding), one thread of the caller per process, one chunk in flight
//                    per process
//   imap_unordered   imap_unordered(f, 0..n-1, chunksize 1), every result consumed (us/item)
//   medium           map(f, 2,000 items, chunksize 1) where f spins 100 us (steady clock), pool
//                    of 2 made once (us per task; 50 is the bound): what the round trip between
//                    chunks costs tasks too long to batch and too short to hide it
//   lifecycle        create a pool of 2, one apply, destroy it (ms); also impl "floor_fork", the
//                    least any process pool of 2 pays: fork 2 children that exit at once, and
//                    wait for both (no channel, no task)
//   seed_chunk4      the seed demo's workload: 12 tasks of 175,000,000 steps of `i * i * cycles`,
//                    imap_unordered with the article's chunksize 4 on a pool of 10 made inside the
//                    timed region, as the article's `with Pool(10) as pool:` (s)
//   seed_auto        the same through map with the default (auto) chunksize: 1 here (s); also
//                    impl "sequential", the same tasks in a loop on the calling thread, which the
//                    speed-up is measured against
//   payload          map over 1,000 items of 1 MiB std::vector<double> (1 GiB in, 1 GiB out), f
//                    returning a copy, pools of 2 made once (GiB of input per second); also
//                    "memcpy", one thread copying 1 GiB between buffers already touched (the
//                    bandwidth the target is a fraction of), and "floor_fresh_copy", the items
//                    copied once into freshly allocated vectors, page faults included
//   big              one 200 MiB std::vector<char> as an argument and as a result, the same
//                    bytes as a read-only mproc::SharedArray, an apply of an int, memcpy of the
//                    200 MiB between touched buffers, and a map over 300 items of 1 MiB (its
//                    time for 200 MiB moved, in and out together); the same 300 MiB as floats
//                    through map_into from a SharedArray into a SharedArray and from a vector
//                    into a vector (the same measure), on a Pool of 2 (ms); also two one-copy
//                    floors, "floor_cross_memory_result" and "floor_cross_memory_map": the
//                    200 MiB, and the map's items and results, read on the calling thread from a
//                    forked process's memory (process_vm_readv) into fresh vectors, the least a
//                    result crossing between processes costs without shared memory
//   cancel           a task of a Pool of 1 that runs for a minute is cancelled, then an apply of
//                    an int runs: the time from cancel() to that apply's result, which the
//                    replacement worker gives (ms); also impl "floor_kill_fork": a forked
//                    process is killed and reaped, and a fresh one forked and heard from over a
//                    pipe, the least a replaced worker costs
//   timeline_map     the map row's map on a Pool(2) that records a timeline, beside the same
//                    map on one that does not (items/s)
//   timeline_chunk   a ThreadPool(2) map of 10^5 tiny items in chunks of one, with and without
//                    a timeline (ns a chunk): what recording costs a chunk
//   journal          map of 10^5 tasks that spin 100 us each on a Pool(2), plain and through
//                    mproc::resumable with a fresh journal (s): what journaling every result
//                    costs a map
//   huge_shared      a 1 GiB read-only SharedArray passed to each of 1,000 applies, against an
//                    apply of an int (ms a call); and "huge_shared_rss": a worker's resident
//                    memory after those calls less before them (MiB)
//
// f is `x * x + 1` on int64: the cost measured is the pool's own. Output: JSON lines (harness.hpp);
// the contenders of a workload take turns (A B C, C B A, ...). Run through scripts/bench_all.sh.
//
// Usage: process_bench [--quick] [--repetitions N] [--only workload,workload] [--impl pool|thread]

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "mproc/detail/huge_pages.hpp"
#include "mproc/mproc.hpp"
#include "mproc/resumable.hpp"
#include "workloads.hpp"

namespace {

using bench::Clock;
using bench::Contender;
using bench::run_workload;

using bench::burn;
using bench::seconds_since;
using bench::SeedTask;
using bench::square_plus_one;

// ---- the floor under a round trip through another process

/// fork(2), or the program ends with the reason: a floor that cannot start its partner process
/// has nothing to measure.
pid_t fork_or_exit() {
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(1);
    }
    return pid;
}

/// In a forked child: moves `fd` to 3 and closes every other descriptor above stderr, so that the
/// child holds no copy of another channel's end (which would keep that channel from ever seeing
/// its end of stream). Returns 3.
int keep_only(int fd) {
    if (fd != 3 && dup2(fd, 3) < 0) {
        _exit(1);
    }
    close_range(4, ~0U, 0);
    return 3;
}

/// A forked process that echoes 24-byte frames (a frame header and an int64, the size of an
/// apply's request) over a socketpair, until the caller closes its end.
class EchoProcess {
  public:
    static constexpr std::size_t frame = 24;

    EchoProcess() {
        int ends[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
            std::perror("socketpair");
            std::exit(1);
        }
        pid_ = fork_or_exit();
        if (pid_ == 0) { // only system calls from here: the parent has other threads
            const int fd = keep_only(ends[1]);
            char buffer[frame];
            while (read_exactly(fd, buffer) && write(fd, buffer, frame) == frame) {
            }
            _exit(0);
        }
        close(ends[1]);
        fd_ = ends[0];
    }

    ~EchoProcess() {
        close(fd_);
        waitpid(pid_, nullptr, 0);
    }

    EchoProcess(const EchoProcess&) = delete;
    EchoProcess& operator=(const EchoProcess&) = delete;

    std::int64_t round_trip(std::int64_t x) {
        char buffer[frame] = {};
        std::memcpy(buffer + 16, &x, sizeof(x));
        if (write(fd_, buffer, frame) != frame || !read_exactly(fd_, buffer)) {
            std::abort();
        }
        std::memcpy(&x, buffer + 16, sizeof(x));
        return x;
    }

  private:
    static bool read_exactly(int fd, char (&buffer)[frame]) {
        std::size_t done = 0;
        while (done < frame) {
            const ssize_t n = read(fd, buffer + done, frame - done);
            if (n <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(n);
        }
        return true;
    }

    pid_t pid_ = -1;
    int fd_ = -1;
};

/// A forked process that answers through a word of shared memory: the caller stores a request
/// (an odd number) and wakes it with futex(2); it stores the answer (the next even number) and
/// wakes the caller. Zero ends it.
class FutexPartner {
  public:
    FutexPartner() {
        void* memory = mmap(nullptr, sizeof(std::atomic<std::uint32_t>), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            std::perror("mmap");
            std::exit(1);
        }
        word_ = new (memory) std::atomic<std::uint32_t>(2);
        pid_ = fork_or_exit();
        if (pid_ == 0) { // only atomics and system calls from here: the parent has other threads
            std::uint32_t last = 2;
            for (;;) {
                const std::uint32_t request = wait_while(last);
                if (request == 0) {
                    _exit(0);
                }
                last = request + 1;
                word_->store(last, std::memory_order_release);
                wake();
            }
        }
    }

    ~FutexPartner() {
        word_->store(0, std::memory_order_release);
        wake();
        waitpid(pid_, nullptr, 0);
        munmap(word_, sizeof(*word_));
    }

    FutexPartner(const FutexPartner&) = delete;
    FutexPartner& operator=(const FutexPartner&) = delete;

    void round_trip() {
        const std::uint32_t request = word_->load(std::memory_order_relaxed) + 1; // odd
        word_->store(request, std::memory_order_release);
        wake();
        wait_while(request);
    }

  private:
    /// Sleeps until the word is no longer `value`; returns the new value.
    std::uint32_t wait_while(std::uint32_t value) {
        for (;;) {
            const std::uint32_t now = word_->load(std::memory_order_acquire);
            if (now != value) {
                return now;
            }
            syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAIT, value, nullptr,
                    nullptr, 0);
        }
    }

    void wake() {
        syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAKE, 1, nullptr, nullptr,
                0);
    }

    std::atomic<std::uint32_t>* word_ = nullptr;
    pid_t pid_ = -1;
};

/// Reads or writes exactly `size` bytes; false at end of stream or on an error.
bool transfer_exactly(int fd, void* data, std::size_t size, bool receive) {
    auto* at = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t n = receive ? read(fd, at, size) : write(fd, at, size);
        if (n <= 0) {
            return false;
        }
        at += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

/// Forked processes that map `x * x + 1` over blocks of int64: the caller sends a count and the
/// items as raw bytes, the process answers with the results as raw bytes. A count of 0 ends it.
class BlockMapProcesses {
  public:
    explicit BlockMapProcesses(std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) {
            int ends[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
                std::perror("socketpair");
                std::exit(1);
            }
            const pid_t pid = fork_or_exit();
            if (pid == 0) { // the parent has other threads: no allocation after the first block
                serve(keep_only(ends[1]));
            }
            close(ends[1]);
            fds_.push_back(ends[0]);
            pids_.push_back(pid);
        }
    }

    ~BlockMapProcesses() {
        for (std::size_t k = 0; k < fds_.size(); ++k) {
            const std::uint64_t stop = 0;
            transfer_exactly(fds_[k], const_cast<std::uint64_t*>(&stop), sizeof(stop), false);
            close(fds_[k]);
            waitpid(pids_[k], nullptr, 0);
        }
    }

    BlockMapProcesses(const BlockMapProcesses&) = delete;
    BlockMapProcesses& operator=(const BlockMapProcesses&) = delete;

    /// map with Python's chunk rule; chunk i goes to process i % n, one caller thread each.
    std::vector<std::int64_t> map(const std::vector<std::int64_t>& items) {
        std::vector<std::int64_t> results(items.size());
        const std::size_t n = fds_.size();
        const std::size_t chunk = (items.size() + 4 * n - 1) / (4 * n);
        std::vector<std::thread> threads;
        for (std::size_t k = 0; k < n; ++k) {
            threads.emplace_back([&, k] {
                for (std::size_t first = k * chunk; first < items.size(); first += n * chunk) {
                    const std::uint64_t count = std::min(chunk, items.size() - first);
                    const std::size_t bytes = count * sizeof(std::int64_t);
                    if (!transfer_exactly(fds_[k], const_cast<std::uint64_t*>(&count),
                                          sizeof(count), false) ||
                        !transfer_exactly(fds_[k], const_cast<std::int64_t*>(&items[first]), bytes,
                                          false) ||
                        !transfer_exactly(fds_[k], &results[first], bytes, true)) {
                        std::abort();
                    }
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        return results;
    }

  private:
    [[noreturn]] static void serve(int fd) {
        std::int64_t* block = nullptr;
        std::size_t capacity = 0;
        std::uint64_t count = 0;
        while (transfer_exactly(fd, &count, sizeof(count), true) && count != 0) {
            if (count > capacity) {
                void* memory = mmap(nullptr, count * sizeof(std::int64_t), PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (memory == MAP_FAILED) {
                    _exit(1);
                }
                block = static_cast<std::int64_t*>(memory); // the old one is left: a bench
                capacity = count;
            }
            if (!transfer_exactly(fd, block, count * sizeof(std::int64_t), true)) {
                break;
            }
            for (std::uint64_t i = 0; i < count; ++i) {
                block[i] = square_plus_one(block[i]);
            }
            if (!transfer_exactly(fd, block, count * sizeof(std::int64_t), false)) {
                break;
            }
        }
        _exit(0);
    }

    std::vector<int> fds_;
    std::vector<pid_t> pids_;
};

// ---- sizes and the harness

struct Sizes {
    int repetitions_fast = 15; // apply, imap_unordered, lifecycle
    int repetitions_map = 11;
    int repetitions_seed = 5;
    std::size_t applies = 2000; // per repetition
    std::size_t map_items = 1'000'000;
    std::size_t imap_items = 5000;   // per repetition
    std::size_t medium_tasks = 2000; // per repetition
    std::int64_t medium_task_us = 100;
    std::size_t lifecycles = 10; // per repetition
    std::size_t seed_tasks = 12;
    std::uint64_t seed_iterations = 175'000'000;
    std::ptrdiff_t seed_workers = 10;
    std::ptrdiff_t seed_chunksize = 4;
    int repetitions_payload = 3;
    std::size_t payload_items = 1000;
    std::size_t payload_doubles = (std::size_t{1} << 20) / sizeof(double); // 1 MiB an item
    int repetitions_big = 5;
    std::size_t big_bytes = std::size_t{200} << 20; // one argument or result
    std::size_t big_calls = 20;                     // per repetition, for the no-copy contenders
    std::size_t big_map_items = 300;                // of 1 MiB each, through map
    std::size_t big_map_item_bytes = std::size_t{1} << 20;
    std::size_t huge_shared_bytes = std::size_t{1} << 30; // one read-only SharedArray...
    std::size_t huge_shared_calls = 1000;                 // ...passed to this many applies
    std::size_t cancels = 10;                             // per repetition
    int repetitions_journal = 3;
    std::size_t journal_items = 100'000; // of 100 us each, one map per repetition
};

/// A smoke run: every workload, tiny.
Sizes quick_sizes() {
    Sizes s;
    s.repetitions_fast = s.repetitions_map = s.repetitions_seed = 3;
    s.applies = 50;
    s.map_items = 10'000;
    s.imap_items = 100;
    s.medium_tasks = 20;
    s.lifecycles = 2;
    s.seed_iterations = 1'000'000;
    s.repetitions_payload = 2;
    s.payload_items = 20;
    s.payload_doubles = 8192;
    s.repetitions_big = 2;
    s.big_bytes = std::size_t{8} << 20;
    s.big_calls = 3;
    s.big_map_items = 8;
    s.huge_shared_bytes = std::size_t{16} << 20;
    s.huge_shared_calls = 20;
    s.cancels = 2;
    s.repetitions_journal = 2;
    s.journal_items = 200;
    return s;
}

// ---- the workloads, for any pool class

template <class PoolClass>
Contender apply_contender(std::string_view impl, PoolClass& pool, const Sizes& s) {
    return {impl, [&pool, &s] {
                std::int64_t sum = 0;
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < s.applies; ++i) {
                    sum += pool.apply(square_plus_one, static_cast<std::int64_t>(i));
                }
                const double elapsed = seconds_since(t0);
                if (sum == 0) {
                    std::abort(); // never: keeps the results alive
                }
                return elapsed / static_cast<double>(s.applies) * 1e6;
            }};
}

Contender floor_contender(EchoProcess& echo, const Sizes& s) {
    return {"floor_socketpair", [&echo, &s] {
                std::int64_t sum = 0;
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < s.applies; ++i) {
                    sum += echo.round_trip(static_cast<std::int64_t>(i) + 1);
                }
                const double elapsed = seconds_since(t0);
                if (sum == 0) {
                    std::abort();
                }
                return elapsed / static_cast<double>(s.applies) * 1e6;
            }};
}

Contender futex_floor_contender(FutexPartner& partner, const Sizes& s) {
    return {"floor_futex_shm", [&partner, &s] {
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < s.applies; ++i) {
                    partner.round_trip();
                }
                return seconds_since(t0) / static_cast<double>(s.applies) * 1e6;
            }};
}

template <class PoolClass>
Contender map_contender(std::string_view impl, PoolClass& pool,
                        const std::vector<std::int64_t>& items) {
    return {impl, [&pool, &items] {
                const auto t0 = Clock::now();
                const std::vector<std::int64_t> results = pool.map(square_plus_one, items);
                const double elapsed = seconds_since(t0);
                if (results.size() != items.size() ||
                    results.back() != square_plus_one(items.back())) {
                    std::abort();
                }
                return static_cast<double>(items.size()) / elapsed;
            }};
}

Contender block_map_contender(BlockMapProcesses& processes,
                              const std::vector<std::int64_t>& items) {
    return {"floor_socket_blocks", [&processes, &items] {
                const auto t0 = Clock::now();
                const std::vector<std::int64_t> results = processes.map(items);
                const double elapsed = seconds_since(t0);
                if (results.back() != square_plus_one(items.back())) {
                    std::abort();
                }
                return static_cast<double>(items.size()) / elapsed;
            }};
}

template <class PoolClass>
Contender imap_contender(std::string_view impl, PoolClass& pool, const Sizes& s) {
    return {impl, [&pool, &s] {
                return bench::imap_unordered_us_per_item(pool, square_plus_one, s.imap_items);
            }};
}

/// The journal workload's task: spins 100 us of the steady clock, then returns x.
std::int64_t spin_100us_then_return(std::int64_t x) {
    bench::spin_for_us(100);
    return x;
}

/// The medium workload's task: spins `us` microseconds of the steady clock, then returns x.
std::int64_t spin_then_return(std::int64_t x, std::int64_t us) {
    bench::spin_for_us(us);
    return x;
}

template <class PoolClass>
Contender medium_contender(std::string_view impl, PoolClass& pool, const Sizes& s) {
    return {impl, [&pool, &s] {
                std::vector<std::pair<std::int64_t, std::int64_t>> tasks;
                for (std::size_t i = 0; i < s.medium_tasks; ++i) {
                    tasks.emplace_back(static_cast<std::int64_t>(i), s.medium_task_us);
                }
                const auto t0 = Clock::now();
                const std::vector<std::int64_t> results = pool.starmap(spin_then_return, tasks, 1);
                const double elapsed = seconds_since(t0);
                if (results.size() != tasks.size() || results.back() != tasks.back().first) {
                    std::abort();
                }
                return elapsed / static_cast<double>(tasks.size()) * 1e6;
            }};
}

template <class PoolClass>
Contender lifecycle_contender(std::string_view impl, const Sizes& s) {
    return {impl, [&s] {
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < s.lifecycles; ++i) {
                    PoolClass pool(2);
                    if (pool.apply(square_plus_one, 7) != 50) {
                        std::abort();
                    }
                } // destroyed: terminate, then join, as Python's `with` block plus a join
                return seconds_since(t0) / static_cast<double>(s.lifecycles) * 1e3;
            }};
}

/// What any pool of 2 worker processes pays at the least to start and end: two fork(2)s of this
/// program, each child exiting at once, and both reaped.
Contender fork_floor_contender(const Sizes& s) {
    return {"floor_fork", [&s] {
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < s.lifecycles; ++i) {
                    pid_t children[2];
                    for (pid_t& child : children) {
                        child = fork();
                        if (child == 0) {
                            _exit(0);
                        }
                        if (child < 0) {
                            std::abort();
                        }
                    }
                    for (const pid_t child : children) {
                        int status = 0;
                        if (waitpid(child, &status, 0) != child || status != 0) {
                            std::abort();
                        }
                    }
                }
                return seconds_since(t0) / static_cast<double>(s.lifecycles) * 1e3;
            }};
}

std::vector<SeedTask> seed_tasks(const Sizes& s) {
    return bench::seed_tasks(s.seed_tasks, s.seed_iterations);
}

template <class PoolClass>
Contender seed_chunk4_contender(std::string_view impl, const Sizes& s) {
    return {impl, [&s] {
                const std::vector<SeedTask> tasks = seed_tasks(s);
                std::uint64_t sum = 0;
                const auto t0 = Clock::now();
                {
                    PoolClass pool(s.seed_workers);
                    for (std::uint64_t cycles :
                         pool.imap_unordered(burn, tasks, s.seed_chunksize)) {
                        sum += cycles;
                    }
                }
                const double elapsed = seconds_since(t0);
                if (sum == 0) {
                    std::abort();
                }
                return elapsed;
            }};
}

template <class PoolClass>
Contender seed_auto_contender(std::string_view impl, const Sizes& s) {
    return {impl, [&s] {
                const std::vector<SeedTask> tasks = seed_tasks(s);
                const auto t0 = Clock::now();
                std::vector<std::uint64_t> results;
                {
                    PoolClass pool(s.seed_workers);
                    results = pool.map(burn, tasks);
                }
                const double elapsed = seconds_since(t0);
                if (results.size() != tasks.size()) {
                    std::abort();
                }
                return elapsed;
            }};
}

/// The seed workload on the calling thread alone: what the pools' speed-up is measured against.
Contender seed_sequential_contender(const Sizes& s) {
    return {"sequential", [&s] {
                const std::vector<SeedTask> tasks = seed_tasks(s);
                std::uint64_t sum = 0;
                const auto t0 = Clock::now();
                for (const SeedTask& task : tasks) {
                    sum += burn(task);
                }
                const double elapsed = seconds_since(t0);
                if (sum == 0) {
                    std::abort();
                }
                return elapsed;
            }};
}

/// The payload workload's task: a copy of its 1 MiB item, changed in one place so that the copy
/// cannot be elided (the result has to be sent back anyway).
std::vector<double> touch_payload(const std::vector<double>& item) {
    std::vector<double> result(item);
    result[0] += 1;
    return result;
}

std::vector<std::vector<double>> payload_items(const Sizes& s) {
    std::vector<std::vector<double>> items(s.payload_items);
    for (std::size_t i = 0; i < items.size(); ++i) {
        items[i].assign(s.payload_doubles, static_cast<double>(i));
    }
    return items;
}

/// map over the payload items: GiB of input per second.
template <class PoolClass>
Contender payload_contender(std::string_view impl, PoolClass& pool,
                            const std::vector<std::vector<double>>& items) {
    return {impl, [&pool, &items] {
                const auto t0 = Clock::now();
                const std::vector<std::vector<double>> results = pool.map(touch_payload, items);
                const double elapsed = seconds_since(t0);
                if (results.size() != items.size() || results.back()[0] != items.back()[0] + 1) {
                    std::abort();
                }
                return static_cast<double>(items.size() * items[0].size() * sizeof(double)) /
                       elapsed / (1 << 30);
            }};
}

/// One thread copying the same number of bytes between two buffers already touched: the memory
/// bandwidth the payload target is a fraction of (GiB/s).
Contender memcpy_contender(const Sizes& s) {
    const std::size_t bytes = s.payload_items * s.payload_doubles * sizeof(double);
    auto from = std::make_shared<std::vector<char>>(bytes, 'x');
    auto to = std::make_shared<std::vector<char>>(bytes, 'y');
    return {"memcpy", [from, to, bytes] {
                const auto t0 = Clock::now();
                std::memcpy(to->data(), from->data(), bytes);
                bench::keep(*to);
                return static_cast<double>(bytes) / seconds_since(t0) / (1 << 30);
            }};
}

/// The copy every payload result needs at least once, on one thread: the items copied into
/// freshly allocated vectors, page faults included (GiB/s). A pool's results land in fresh
/// memory too, so this, not memcpy between touched buffers, bounds what a caller can receive.
Contender fresh_copy_floor_contender(const std::vector<std::vector<double>>& items) {
    return {"floor_fresh_copy", [&items] {
                const auto t0 = Clock::now();
                std::vector<std::vector<double>> copies(items.begin(), items.end());
                bench::keep(copies);
                const double elapsed = seconds_since(t0);
                if (copies.back()[0] != items.back()[0]) {
                    std::abort();
                }
                return static_cast<double>(items.size() * items[0].size() * sizeof(double)) /
                       elapsed / (1 << 30);
            }};
}

// ---- one big value: 200 MiB as a std::vector<char> (copied through the socket), as a
// mproc::SharedArray (a handle to the caller's pages), against an apply of an int and memcpy

/// What a task does with the big argument: looks at both ends, so that the value must be there.
/// Tells the caller it has started (the array's element becomes 1), then runs far longer than
/// any repetition waits: the cancel workload's running task.
std::int64_t signal_then_sleep(mproc::SharedArray<std::int64_t> started) {
    std::atomic_ref(started[0]).store(1, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::minutes(1));
    return 0;
}

/// Cancels a running task of a Pool of one and times how long until the next apply's result.
Contender cancel_contender(mproc::Pool& pool, const Sizes& s) {
    return {"mproc_pool_cancel_running", [&pool, &s] {
                mproc::SharedArray<std::int64_t> started(1);
                double total = 0;
                for (std::size_t i = 0; i < s.cancels; ++i) {
                    started[0] = 0;
                    auto running = pool.apply_async(signal_then_sleep, started);
                    while (std::atomic_ref(started[0]).load(std::memory_order_acquire) == 0) {
                        std::this_thread::sleep_for(std::chrono::microseconds(100));
                    }
                    const auto t0 = Clock::now();
                    if (!running.cancel() || pool.apply(square_plus_one, 7) != 50) {
                        std::abort();
                    }
                    total += seconds_since(t0);
                }
                return total / static_cast<double>(s.cancels) * 1e3;
            }};
}

/// The least a replaced worker costs: kill a forked process and reap it, fork a fresh one and
/// read its first byte.
Contender kill_fork_floor_contender(const Sizes& s) {
    return {"floor_kill_fork", [&s] {
                double total = 0;
                for (std::size_t i = 0; i < s.cancels; ++i) {
                    const pid_t sleeper = fork();
                    if (sleeper == 0) {
                        pause();
                        _exit(0);
                    }
                    int ends[2];
                    if (sleeper < 0 || pipe(ends) != 0) {
                        std::abort();
                    }
                    const auto t0 = Clock::now();
                    kill(sleeper, SIGKILL);
                    waitpid(sleeper, nullptr, 0);
                    const pid_t fresh = fork();
                    if (fresh == 0) {
                        const char byte = 1;
                        _exit(write(ends[1], &byte, 1) == 1 ? 0 : 1);
                    }
                    char byte = 0;
                    if (fresh < 0 || read(ends[0], &byte, 1) != 1) {
                        std::abort();
                    }
                    total += seconds_since(t0);
                    waitpid(fresh, nullptr, 0);
                    close(ends[0]);
                    close(ends[1]);
                }
                return total / static_cast<double>(s.cancels) * 1e3;
            }};
}

std::int64_t ends_of(const std::vector<char>& bytes) { return bytes.front() + bytes.back(); }
std::int64_t shared_ends_of(mproc::SharedArray<const char> bytes) {
    return bytes[0] + bytes[bytes.size() - 1];
}
std::vector<char> big_result(std::int64_t bytes) {
    return std::vector<char>(static_cast<std::size_t>(bytes), 'r');
}
/// The map item's task: a copy of the item, changed in one place.
std::vector<char> changed_copy(const std::vector<char>& item) {
    std::vector<char> copy = item;
    copy[0] = 'c';
    return copy;
}
/// The map_into workload's task.
float doubled_float(float x) { return 2 * x; }

/// This process's resident memory (anonymous and shared pages), in MiB.
double resident_mib(int) {
    std::ifstream status("/proc/self/status");
    double kib = 0;
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("RssAnon:", 0) == 0 || line.rfind("RssShmem:", 0) == 0) {
            kib += std::stod(line.substr(line.find(':') + 1));
        }
    }
    return kib / 1024;
}

/// A forked process that holds what the caller held when it forked (copy-on-write: the same
/// touched pages) and waits until it is destroyed: another process's memory to read with
/// process_vm_readv(2), the one copy that a worker's answer would cost if the caller read it
/// from the worker's memory instead of through the socket (four copies: encode, socket in,
/// socket out, decode).
class CrossMemoryPartner {
  public:
    CrossMemoryPartner() {
        if (pipe2(ends_, O_CLOEXEC) != 0) {
            std::perror("pipe2");
            std::exit(1);
        }
        pid_ = fork_or_exit();
        if (pid_ == 0) {
            // Only system calls from here: the parent has other threads. The write end closed,
            // so that the parent's close is the end of the stream.
            close(ends_[1]);
            char byte = 0;
            while (read(ends_[0], &byte, 1) < 0 && errno == EINTR) {
            }
            _exit(0);
        }
        close(ends_[0]);
    }
    ~CrossMemoryPartner() {
        close(ends_[1]); // its read ends
        waitpid(pid_, nullptr, 0);
    }
    CrossMemoryPartner(const CrossMemoryPartner&) = delete;
    CrossMemoryPartner& operator=(const CrossMemoryPartner&) = delete;

    /// Copies `size` bytes at `there` in the partner (the same address as in this process) to
    /// `here`; false if the system refuses (a ptrace policy such as Yama's may forbid it).
    bool copy_from(void* here, const void* there, std::size_t size) const {
        iovec local{here, size};
        iovec remote{const_cast<void*>(there), size};
        return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
    }

  private:
    int ends_[2] = {-1, -1};
    pid_t pid_ = -1;
};

/// A fresh vector of `size` bytes read from the partner's copy of `there`, its storage advised
/// to take huge pages first, as mproc's decoder does for large blocks.
std::vector<char> fresh_from_partner(const CrossMemoryPartner& partner, const char* there,
                                     std::size_t size) {
    std::vector<char> fresh;
    fresh.reserve(size);
    mproc::detail::advise_huge_pages(fresh.data(), size);
    fresh.resize(size); // value-initialised: a std::vector<char> cannot be had otherwise
    if (!partner.copy_from(fresh.data(), there, size)) {
        std::abort(); // checked once before this contender was added
    }
    return fresh;
}

/// ms for each of `calls` calls of `call`, which returns what the task computed.
template <class Call>
Contender big_contender(std::string_view impl, std::size_t calls, Call call) {
    return {impl, [calls, call] {
                std::int64_t sum = 0;
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < calls; ++i) {
                    sum += call();
                }
                const double elapsed = seconds_since(t0);
                if (sum == 0) {
                    std::abort();
                }
                return elapsed / static_cast<double>(calls) * 1e3;
            }};
}

std::vector<Contender> big_contenders(mproc::Pool& pool, const std::vector<char>& bytes,
                                      const mproc::SharedArray<const char>& shared,
                                      const Sizes& s) {
    std::vector<Contender> list;
    list.push_back(
        big_contender("mproc_pool_vector_argument", 1, [&] { return pool.apply(ends_of, bytes); }));
    list.push_back(big_contender("mproc_pool_vector_result", 1, [&] {
        return static_cast<std::int64_t>(
            pool.apply(big_result, static_cast<std::int64_t>(s.big_bytes)).size());
    }));
    list.push_back(big_contender("mproc_pool_shared_array", s.big_calls,
                                 [&] { return pool.apply(shared_ends_of, shared); }));
    list.push_back(big_contender("mproc_pool_int", s.big_calls,
                                 [&] { return pool.apply(square_plus_one, std::int64_t{3}); }));
    // map over items of a megabyte: the figure is its time for big_bytes moved (in and out
    // together), to compare with memcpy of big_bytes.
    auto items = std::make_shared<std::vector<std::vector<char>>>(
        s.big_map_items, std::vector<char>(s.big_map_item_bytes, 'm'));
    const double moved = 2.0 * static_cast<double>(s.big_map_items * s.big_map_item_bytes);
    const double per_big = static_cast<double>(s.big_bytes) / moved;
    list.push_back({"mproc_pool_map_vectors", [&pool, items, per_big] {
                        const auto t0 = Clock::now();
                        const auto results = pool.map(changed_copy, *items);
                        const double elapsed = seconds_since(t0);
                        if (results.size() != items->size() || results.back()[0] != 'c') {
                            std::abort();
                        }
                        return elapsed * 1e3 * per_big;
                    }});
    // The same bytes as floats, map_into from one SharedArray into another (the workers read
    // and write the caller's memory), and from one vector into another (through the sockets).
    const std::size_t floats = s.big_map_items * s.big_map_item_bytes / sizeof(float);
    auto shared_in = std::make_shared<mproc::SharedArray<float>>(floats);
    auto shared_out = std::make_shared<mproc::SharedArray<float>>(floats);
    std::fill(shared_in->begin(), shared_in->end(), 1.5f);
    auto vector_in = std::make_shared<std::vector<float>>(floats, 1.5f);
    auto vector_out = std::make_shared<std::vector<float>>(floats);
    list.push_back({"mproc_pool_map_into_shared", [&pool, shared_in, shared_out, per_big] {
                        const mproc::SharedArray<const float> in = *shared_in;
                        const auto t0 = Clock::now();
                        pool.map_into(doubled_float, in, shared_out->span());
                        const double elapsed = seconds_since(t0);
                        if ((*shared_out)[shared_out->size() - 1] != 3.0f) {
                            std::abort();
                        }
                        return elapsed * 1e3 * per_big;
                    }});
    list.push_back({"mproc_pool_map_into_vector", [&pool, vector_in, vector_out, per_big] {
                        const auto t0 = Clock::now();
                        pool.map_into(doubled_float, *vector_in, *vector_out);
                        const double elapsed = seconds_since(t0);
                        if (vector_out->back() != 3.0f) {
                            std::abort();
                        }
                        return elapsed * 1e3 * per_big;
                    }});
    // The one-copy floors: what the result and the map would cost if each side read the
    // other's memory (process_vm_readv) instead of the bytes crossing a socket. The partner
    // holds the caller's pages as they were at its fork, so `bytes` and the items are there.
    auto partner = std::make_shared<CrossMemoryPartner>();
    char probe = 0;
    if (partner->copy_from(&probe, bytes.data(), 1)) {
        list.push_back(big_contender("floor_cross_memory_result", 1, [partner, &bytes] {
            return static_cast<std::int64_t>(
                fresh_from_partner(*partner, bytes.data(), bytes.size()).size());
        }));
        // Each item read into one buffer (what a worker decoding it would touch, warm), each
        // result into a fresh vector (what the caller keeps), both on this thread.
        list.push_back({"floor_cross_memory_map", [partner, items, per_big] {
                            std::vector<char> item((*items)[0].size());
                            std::vector<std::vector<char>> results;
                            results.reserve(items->size());
                            const auto t0 = Clock::now();
                            for (const std::vector<char>& there : *items) {
                                if (!partner->copy_from(item.data(), there.data(), item.size())) {
                                    std::abort();
                                }
                                results.push_back(
                                    fresh_from_partner(*partner, there.data(), there.size()));
                            }
                            const double elapsed = seconds_since(t0);
                            bench::keep(item);
                            if (results.back()[0] != 'm') {
                                std::abort();
                            }
                            return elapsed * 1e3 * per_big;
                        }});
    } else {
        std::fprintf(stderr, "process_bench: process_vm_readv refused (%s): no one-copy floors\n",
                     std::strerror(errno));
    }
    // The result's task alone, in the caller: what a fresh 200 MiB vector costs to make,
    // wherever it is made (the floor under the result contender, with memcpy).
    list.push_back(big_contender("task_alone_result", 1, [&s] {
        return static_cast<std::int64_t>(big_result(static_cast<std::int64_t>(s.big_bytes)).size());
    }));
    auto to = std::make_shared<std::vector<char>>(s.big_bytes, 'y');
    list.push_back(big_contender("memcpy", 1, [&bytes, to] {
        std::memcpy(to->data(), bytes.data(), bytes.size());
        bench::keep(*to);
        return std::int64_t{1};
    }));
    for (Contender& contender : list) {
        contender.workers = contender.impl.starts_with("mproc_pool") ? 2 : 1;
    }
    return list;
}

constexpr const char* usage =
    "process_bench [--quick] [--repetitions N] [--only apply,map,imap_unordered,medium,lifecycle,"
    "seed_chunk4,seed_auto,payload,big,huge_shared,cancel,timeline,journal] [--impl pool|thread]";

struct Options {
    Sizes sizes;
    bench::CommonOptions common;
    bool pool = true;
    bool thread = true;
};

Options parse(int argc, char** argv) {
    Options o;
    o.common =
        bench::parse_options(argc, argv, usage, [&o](std::string_view arg, std::string_view value) {
            if (arg != "--impl") {
                return false;
            }
            o.pool = value == "pool";
            o.thread = value == "thread";
            if (!o.pool && !o.thread) {
                bench::usage_error(usage, "--impl is pool or thread");
            }
            return true;
        });
    if (o.common.quick) {
        o.sizes = quick_sizes();
    }
    if (o.common.repetitions) {
        o.sizes.repetitions_fast = o.sizes.repetitions_map = o.sizes.repetitions_seed =
            o.sizes.repetitions_payload = o.sizes.repetitions_big = *o.common.repetitions;
    }
    return o;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const Sizes& s = o.sizes;

    auto contenders = [&o](auto make_pool, auto make_thread) {
        std::vector<Contender> list;
        if (o.pool) {
            list.push_back(make_pool());
        }
        if (o.thread) {
            list.push_back(make_thread());
        }
        return list;
    };
    auto with_workers = [](std::size_t workers, std::vector<Contender> list) {
        for (Contender& contender : list) {
            contender.workers = workers;
        }
        return list;
    };

    {
        // Pools made once for the steady-state workloads, outside every timed region.
        mproc::Pool pool(2);
        mproc::ThreadPool threads(2);
        if (o.common.wanted("apply")) {
            EchoProcess echo;
            FutexPartner partner;
            auto list = with_workers(
                2, contenders([&] { return apply_contender("mproc_pool", pool, s); },
                              [&] { return apply_contender("mproc_thread", threads, s); }));
            if (o.pool) {
                list.push_back(floor_contender(echo, s));
                list.push_back(futex_floor_contender(partner, s));
            }
            run_workload("apply", "us", "lower", 1, s.repetitions_fast, std::move(list));
        }
        if (o.common.wanted("map")) {
            std::vector<std::int64_t> items(s.map_items);
            std::iota(items.begin(), items.end(), std::int64_t{0});
            BlockMapProcesses processes(2);
            auto list = with_workers(
                2, contenders([&] { return map_contender("mproc_pool", pool, items); },
                              [&] { return map_contender("mproc_thread", threads, items); }));
            if (o.pool) {
                list.push_back(block_map_contender(processes, items));
            }
            run_workload("map", "items/s", "higher", s.map_items, s.repetitions_map,
                         std::move(list));
        }
        if (o.common.wanted("timeline")) {
            // The recorder's cost: the map row's map of 10^6 ints on a Pool(2) recording a
            // timeline, beside the same pool without; and a ThreadPool(2) map of tiny items in
            // chunks of one, per chunk, with and without (statistics are kept in both).
            std::vector<std::int64_t> items(s.map_items);
            std::iota(items.begin(), items.end(), std::int64_t{0});
            mproc::Pool recording({.workers = 2, .timeline = true});
            mproc::ThreadPool threads_recording({.workers = 2, .timeline = true});
            const std::vector<std::int64_t> chunks(s.map_items / 10, 3);
            auto per_chunk = [&chunks](mproc::ThreadPool& on) {
                return [&on, &chunks] {
                    const auto t0 = Clock::now();
                    bench::keep(on.map(square_plus_one, chunks, 1));
                    return seconds_since(t0) / static_cast<double>(chunks.size()) * 1e9;
                };
            };
            std::vector<Contender> list;
            list.push_back(map_contender("mproc_pool_timeline_off", pool, items));
            list.push_back(map_contender("mproc_pool_timeline_on", recording, items));
            run_workload("timeline_map", "items/s", "higher", s.map_items, s.repetitions_map,
                         with_workers(2, std::move(list)));
            std::vector<Contender> per;
            per.push_back({"mproc_thread_timeline_off", per_chunk(threads), 2});
            per.push_back({"mproc_thread_timeline_on", per_chunk(threads_recording), 2});
            run_workload("timeline_chunk", "ns", "lower", chunks.size(), s.repetitions_map,
                         std::move(per));
        }
        if (o.common.wanted("journal")) {
            // What a journal costs a map of 100 us tasks: the same map plain and resumable
            // (every result encoded, checksummed, written and fdatasync'd in batches).
            std::vector<std::int64_t> items(s.journal_items);
            std::iota(items.begin(), items.end(), std::int64_t{0});
            const auto spin = spin_100us_then_return;
            const std::string journal =
                "/tmp/mproc-bench-" + std::to_string(::getpid()) + ".journal";
            std::vector<Contender> list;
            list.push_back({"mproc_pool_plain", [&] {
                                const auto t0 = Clock::now();
                                bench::keep(pool.map(spin, items));
                                return seconds_since(t0);
                            }});
            list.push_back({"mproc_pool_journal", [&] {
                                std::filesystem::remove(journal);
                                const auto t0 = Clock::now();
                                bench::keep(mproc::resumable(pool, journal).map(spin, items));
                                return seconds_since(t0);
                            }});
            run_workload("journal", "s", "lower", s.journal_items, s.repetitions_journal,
                         with_workers(2, std::move(list)));
            std::filesystem::remove(journal);
        }
        if (o.common.wanted("imap_unordered")) {
            run_workload(
                "imap_unordered", "us", "lower", s.imap_items, s.repetitions_fast,
                with_workers(
                    2, contenders([&] { return imap_contender("mproc_pool", pool, s); },
                                  [&] { return imap_contender("mproc_thread", threads, s); })));
        }
        if (o.common.wanted("medium")) {
            run_workload(
                "medium", "us", "lower", s.medium_tasks, s.repetitions_fast,
                with_workers(
                    2, contenders([&] { return medium_contender("mproc_pool", pool, s); },
                                  [&] { return medium_contender("mproc_thread", threads, s); })));
        }
    }
    if (o.common.wanted("lifecycle")) {
        auto list = with_workers(
            2,
            contenders([&] { return lifecycle_contender<mproc::Pool>("mproc_pool", s); },
                       [&] { return lifecycle_contender<mproc::ThreadPool>("mproc_thread", s); }));
        if (o.pool) {
            list.push_back(fork_floor_contender(s));
        }
        run_workload("lifecycle", "ms", "lower", 2, s.repetitions_fast, std::move(list));
    }
    if (o.common.wanted("cancel") && o.pool) {
        mproc::Pool pool(1);
        std::vector<Contender> list;
        list.push_back(cancel_contender(pool, s));
        list.push_back(kill_fork_floor_contender(s));
        run_workload("cancel", "ms", "lower", 1, s.repetitions_fast, std::move(list));
    }
    if (o.common.wanted("seed_chunk4")) {
        run_workload(
            "seed_chunk4", "s", "lower", s.seed_tasks, s.repetitions_seed,
            with_workers(
                10, contenders([&] { return seed_chunk4_contender<mproc::Pool>("mproc_pool", s); },
                               [&] {
                                   return seed_chunk4_contender<mproc::ThreadPool>("mproc_thread",
                                                                                   s);
                               })));
    }
    if (o.common.wanted("seed_auto")) {
        auto list = with_workers(
            static_cast<std::size_t>(s.seed_workers),
            contenders([&] { return seed_auto_contender<mproc::Pool>("mproc_pool", s); },
                       [&] { return seed_auto_contender<mproc::ThreadPool>("mproc_thread", s); }));
        list.push_back(seed_sequential_contender(s));
        run_workload("seed_auto", "s", "lower", s.seed_tasks, s.repetitions_seed, std::move(list));
    }
    if (o.common.wanted("payload")) {
        const std::vector<std::vector<double>> items = payload_items(s);
        mproc::Pool pool(2);
        mproc::ThreadPool threads(2);
        auto list = with_workers(
            2, contenders([&] { return payload_contender("mproc_pool", pool, items); },
                          [&] { return payload_contender("mproc_thread", threads, items); }));
        list.push_back(memcpy_contender(s));
        list.push_back(fresh_copy_floor_contender(items));
        run_workload("payload", "GiB/s", "higher", s.payload_items, s.repetitions_payload,
                     std::move(list));
    }
    if (o.common.wanted("big") && o.pool) {
        const std::vector<char> bytes(s.big_bytes, 'x');
        mproc::SharedArray<char> shared(s.big_bytes);
        std::memset(shared.data(), 'x', shared.size());
        const mproc::SharedArray<const char> read_only = shared;
        mproc::Pool pool(2);
        run_workload("big", "ms", "lower", 1, s.repetitions_big,
                     big_contenders(pool, bytes, read_only, s));
    }
    if (o.common.wanted("huge_shared") && o.pool) {
        // One large read-only array passed to many applies: each call must cost about what an
        // apply of an int does, and no worker may keep (or copy) the array between calls.
        mproc::SharedArray<char> shared(s.huge_shared_bytes);
        std::memset(shared.data(), 'x', shared.size());
        const mproc::SharedArray<const char> read_only = shared;
        mproc::Pool pool(2);
        std::vector<Contender> list;
        list.push_back(big_contender("mproc_pool_shared_array", s.huge_shared_calls,
                                     [&] { return pool.apply(shared_ends_of, read_only); }));
        list.push_back(big_contender("mproc_pool_int", s.huge_shared_calls,
                                     [&] { return pool.apply(square_plus_one, std::int64_t{3}); }));
        for (Contender& contender : list) {
            contender.workers = 2;
        }
        run_workload("huge_shared", "ms", "lower", 1, s.repetitions_big, std::move(list));
        // Resident memory of a worker (of a pool of one, so that it is the one that ran them)
        // after the calls, less before them.
        mproc::Pool single(1);
        std::vector<Contender> growth;
        growth.push_back({"mproc_pool_worker_growth", [&, calls = s.huge_shared_calls] {
                              const double before = single.apply(resident_mib, 0);
                              for (std::size_t i = 0; i < calls; ++i) {
                                  single.apply(shared_ends_of, read_only);
                              }
                              return single.apply(resident_mib, 0) - before;
                          }});
        run_workload("huge_shared_rss", "MiB", "lower", 1, s.repetitions_big, std::move(growth));
    }
}
