// SPDX-License-Identifier: MIT
// mproc::SharedArray between a caller and its worker processes, on every start method: no copy
// of the elements, a read-only array that a task cannot write, nothing left mapped or open
// after the array and the pool are gone, and sizes no mapping can have. Own main: spawned
// workers are fresh runs of this program (mproc::serve_if_worker first).

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

#include "process_table.hpp"
#include "start_method_name.hpp"

namespace {

using mproc::StartMethod;

/// Lines of this process's memory map that are a SharedArray's memory.
int shared_array_mappings() {
    std::ifstream maps("/proc/self/maps");
    int found = 0;
    for (std::string line; std::getline(maps, line);) {
        found += line.find("mproc-shared-array") != std::string::npos ? 1 : 0;
    }
    return found;
}

int shared_array_mappings_in_worker(int) { return shared_array_mappings(); }

/// The address the worker sees the elements at, and their sum.
std::pair<std::uintptr_t, long> address_and_sum(mproc::SharedArray<const int> values) {
    long sum = 0;
    for (int v : values) {
        sum += v;
    }
    return {reinterpret_cast<std::uintptr_t>(values.data()), sum};
}

/// Writes through a read-only view: the page is mapped without write permission.
int write_through_read_only(mproc::SharedArray<const int> values) {
    const_cast<int&>(values[0]) = 99;
    return 0;
}

/// Fills the array with `value` and returns what a second read sees.
int fill(std::pair<mproc::SharedArray<int>, int> target) {
    for (int& v : target.first) {
        v = target.second;
    }
    return target.first[target.first.size() - 1];
}

constexpr std::size_t tile_elements = 1 << 18; // 1 MiB of ints
constexpr int dying_tile = 3;

/// Writes `tile` + 1 into its tile of the array; the task of `dying_tile` is killed half-way
/// through (SIGKILL: no handler runs, nothing is flushed).
int write_tile(std::pair<mproc::SharedArray<int>, int> job) {
    auto& [array, tile] = job;
    int* first = array.data() + static_cast<std::size_t>(tile) * tile_elements;
    for (std::size_t i = 0; i < tile_elements; ++i) {
        if (tile == dying_tile && i == tile_elements / 2) {
            ::raise(SIGKILL);
        }
        first[i] = tile + 1;
    }
    return tile;
}

/// Item `i` of a map: `i` + 1, and the worker dies (SIGKILL) at item 600.
int one_more_or_die(int i) {
    if (i == 600) {
        ::raise(SIGKILL);
    }
    return i + 1;
}

/// Descriptors of this process that are a SharedArray's memory.
int shared_array_fds() {
    int found = 0;
    for (int fd : process_table::open_fds()) {
        char target[256] = {};
        const std::string link = "/proc/self/fd/" + std::to_string(fd);
        if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
            std::string(target).find("mproc-shared-array") != std::string::npos) {
            ++found;
        }
    }
    return found;
}

class SharedArrayProcess : public ::testing::TestWithParam<StartMethod> {};

INSTANTIATE_TEST_SUITE_P(All, SharedArrayProcess,
                         ::testing::Values(StartMethod::fork, StartMethod::forkserver,
                                           StartMethod::spawn),
                         start_method_name::of);

TEST_P(SharedArrayProcess, AWorkerMapsTheCallersPagesAndWritesReachTheCaller) {
    mproc::Pool pool({.workers = 2, .start_method = GetParam()});
    mproc::SharedArray<int> values(1 << 20); // 4 MiB
    for (std::size_t i = 0; i < values.size(); ++i) {
        values[i] = static_cast<int>(i % 7);
    }
    long expected = 0;
    for (int v : values) {
        expected += v;
    }
    const auto [worker_address, sum] = pool.apply(address_and_sum, values);
    EXPECT_EQ(sum, expected);
    EXPECT_NE(worker_address, 0u);

    EXPECT_EQ(pool.apply(fill, std::pair{values, 5}), 5);
    EXPECT_EQ(values[0], 5);
    EXPECT_EQ(values[values.size() - 1], 5);
}

TEST_P(SharedArrayProcess, ATaskThatWritesIntoAReadOnlyArrayCostsOnlyThatTask) {
    mproc::Pool pool({.workers = 1, .start_method = GetParam()});
    mproc::SharedArray<int> values(1000);
    values[0] = 1;
    EXPECT_THROW(pool.apply(write_through_read_only, mproc::SharedArray<const int>(values)),
                 mproc::WorkerLost);
    EXPECT_EQ(values[0], 1);
    EXPECT_EQ(pool.apply(address_and_sum, values).second, 1); // the pool goes on
}

TEST_P(SharedArrayProcess, NothingStaysMappedOrOpenAfterTheArrayAndThePoolAreGone) {
    const int fds_before = shared_array_fds();
    ASSERT_EQ(shared_array_mappings(), 0);
    {
        mproc::Pool pool({.workers = 2, .start_method = GetParam()});
        for (int round = 0; round < 20; ++round) {
            mproc::SharedArray<int> values(4096);
            values[0] = round;
            ASSERT_EQ(pool.apply(address_and_sum, values).second, round);
            // A worker keeps the mappings of its recent tasks while requests keep coming, and
            // lets them go once it waits for work: it never holds an idle caller's memory.
            int kept = -1;
            for (int look = 0; look < 50 && kept != 0; ++look) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                kept = pool.apply(shared_array_mappings_in_worker, 0);
            }
            ASSERT_EQ(kept, 0) << "round " << round;
        }
        EXPECT_EQ(shared_array_mappings(), 0);
        EXPECT_EQ(shared_array_fds(), fds_before);
    }
    EXPECT_EQ(shared_array_mappings(), 0);
    EXPECT_EQ(shared_array_fds(), fds_before);
}

// A worker killed in the middle of writing into an array costs its own task only: the other
// tasks' tiles are whole, and the array, the pool and the tiles after the dead one go on. What
// the dead task wrote before it died stays written (shared memory has no undo).
TEST_P(SharedArrayProcess, AWorkerKilledWhileWritingCostsOnlyItsOwnTile) {
    constexpr int tiles = 8;
    mproc::Pool pool({.workers = 2, .start_method = GetParam()});
    mproc::SharedArray<int> array(tiles * tile_elements);
    std::vector<std::pair<mproc::SharedArray<int>, int>> jobs;
    for (int tile = 0; tile < tiles; ++tile) {
        jobs.emplace_back(array, tile);
    }
    const auto outcomes = pool.map_outcomes(write_tile, jobs, 1);
    ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(tiles));
    for (int tile = 0; tile < tiles; ++tile) {
        const int* first = array.data() + static_cast<std::size_t>(tile) * tile_elements;
        if (tile == dying_tile) {
            EXPECT_FALSE(outcomes[tile].has_value());
            EXPECT_THROW(std::rethrow_exception(outcomes[tile].error()), mproc::WorkerLost);
            EXPECT_EQ(first[tile_elements / 2 - 1], tile + 1);
            EXPECT_EQ(first[tile_elements / 2], 0) << "written after the task died";
            continue;
        }
        ASSERT_TRUE(outcomes[tile].has_value()) << "tile " << tile;
        EXPECT_EQ(outcomes[tile].value(), tile);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < tile_elements; ++i) {
            wrong += first[i] != tile + 1 ? 1 : 0;
        }
        EXPECT_EQ(wrong, 0u) << "tile " << tile;
    }
    EXPECT_EQ(pool.apply(fill, std::pair{array, 7}), 7); // the pool and the array go on
}

// map_into a SharedArray: the workers write the results into the caller's memory themselves,
// as they compute them, so a chunk whose worker dies leaves the results it had computed there
// (through the frame, a chunk's results arrive only with its answer). The other chunks'
// results are whole.
TEST_P(SharedArrayProcess, MapIntoASharedArrayIsWrittenInPlaceByTheWorkers) {
    mproc::Pool pool({.workers = 2, .start_method = GetParam()});
    constexpr int n = 4000;
    mproc::SharedArray<int> in(n);
    for (int i = 0; i < n; ++i) {
        in[static_cast<std::size_t>(i)] = i;
    }
    mproc::SharedArray<int> out(n);
    EXPECT_THROW(
        pool.map_into(one_more_or_die, mproc::SharedArray<const int>(in), out.span(), 1000),
        mproc::WorkerLost);
    for (int i = 0; i < n; ++i) {
        const bool computed = i < 600 || i >= 1000; // the dying chunk is items 0-999
        ASSERT_EQ(out[static_cast<std::size_t>(i)], computed ? i + 1 : 0) << "item " << i;
    }
}

// Threads of the caller, each with arrays of its own, share one pool at once: every task sees
// its own thread's array, and every write reaches the right one.
TEST(SharedArrayThreads, ThreadsWithArraysOfTheirOwnShareOnePool) {
    mproc::Pool pool(2);
    constexpr int threads = 6;
    constexpr int rounds = 15;
    std::vector<int> failures(threads, 0);
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&pool, &failures, t] {
            for (int round = 0; round < rounds; ++round) {
                mproc::SharedArray<int> values(1000 + static_cast<std::size_t>(t) * 100);
                values[0] = t;
                const int mark = t * 1000 + round;
                const bool read = pool.apply(address_and_sum, values).second == t;
                const bool written =
                    pool.apply(fill, std::pair{values, mark}) == mark && values[0] == mark;
                failures[t] += read && written ? 0 : 1;
            }
        });
    }
    for (std::thread& caller : callers) {
        caller.join();
    }
    for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(failures[t], 0) << "thread " << t;
    }
    EXPECT_EQ(shared_array_mappings(), 0);
}

// A worker keeps the mappings of its recent tasks; an array the caller made after dropping
// another usually gets the dropped one's descriptor number, and must never be taken for it.
TEST(SharedArrayKeptMappings, ANewArrayUnderAReusedDescriptorIsNeverTakenForTheOldOne) {
    mproc::Pool pool(1);
    for (int round = 1; round <= 300; ++round) {
        mproc::SharedArray<int> values(1024); // the previous round's was dropped just before
        values[0] = round;
        ASSERT_EQ(pool.apply(address_and_sum, values).second, round) << "round " << round;
    }
}

/// Many short pools, each handed an array: nothing of any array outlives its pool, in the
/// caller or anywhere else (the workers, which mapped them, are gone with their pools).
TEST(SharedArrayLifecycles, FiveHundredPoolsLeaveNoSharedMemoryBehind) {
    const int fds_before = shared_array_fds();
    for (int round = 0; round < 500; ++round) {
        mproc::Pool pool(1);
        mproc::SharedArray<int> values(1024);
        values[1023] = round;
        ASSERT_EQ(pool.apply(address_and_sum, values).second, round) << "round " << round;
    }
    EXPECT_EQ(shared_array_mappings(), 0);
    EXPECT_EQ(shared_array_fds(), fds_before);
    EXPECT_TRUE(process_table::child_processes().empty());
}

TEST(SharedArraySizes, SizesNoMappingCanHaveAreRefused) {
    EXPECT_THROW((void)mproc::SharedArray<double>(std::size_t{1} << 61), std::length_error);
    EXPECT_THROW((void)mproc::SharedArray<char>(std::numeric_limits<std::size_t>::max()),
                 std::length_error);
    // Within the arithmetic but past what the kernel maps.
    EXPECT_THROW((void)mproc::SharedArray<char>(
                     static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max())),
                 std::bad_alloc);
    EXPECT_EQ(shared_array_mappings(), 0);
    EXPECT_EQ(shared_array_fds(), 0);
    const mproc::SharedArray<char> empty(0);
    EXPECT_TRUE(empty.empty());
    EXPECT_EQ(empty.data(), nullptr);
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // spawned workers and fork servers stop here
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
