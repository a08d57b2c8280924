// SPDX-License-Identifier: MIT
// The fast lane (src/process/fast_lane.hpp): one small request and its answer in shared memory
// between the caller and a worker. What one side takes is exactly what the other posted, once;
// a side that sleeps is told; a lane whose counts or sizes cannot be true is refused, never
// believed; and on a pool, a worker that garbles its lane, or dies with an answer posted in it,
// costs what the promise says and no more.

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "mproc/detail/wire/wire.hpp"
#include "process/channel.hpp"
#include "process/fast_lane.hpp"

namespace {

using namespace mproc::detail;
using namespace std::chrono_literals;

/// A lane as the worker makes it, and the caller's view of it (mapped from the descriptor the
/// worker would send), in one process: each side's counts are its own.
struct LanePair {
    FastLane worker;
    FastLane caller{dup(worker.descriptor())};
};

std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    return bytes;
}

TEST(FastLane, WhatIsPostedIsTakenOnceAndWhole) {
    LanePair lane;
    FastLaneMessage message;
    EXPECT_FALSE(lane.worker.take_request(message)) << "nothing was posted";
    for (const std::size_t size :
         {std::size_t{0}, std::size_t{1}, std::size_t{1000}, fast_lane_capacity}) {
        std::vector<std::byte> request(size);
        for (std::size_t i = 0; i < size; ++i) {
            request[i] = static_cast<std::byte>(i * 7 + size);
        }
        EXPECT_FALSE(lane.caller.post_request(request.data(), request.size(), size + 3))
            << "nobody sleeps";
        EXPECT_TRUE(lane.worker.request_posted());
        ASSERT_TRUE(lane.worker.take_request(message));
        EXPECT_EQ(message.kind, FrameKind::run);
        EXPECT_EQ(message.releases_before, size + 3);
        EXPECT_EQ(message.payload, request);
        EXPECT_FALSE(lane.worker.take_request(message)) << "taken twice";

        const std::vector<std::byte> answer = bytes_of("answer " + std::to_string(size));
        lane.worker.post_answer(FrameKind::done, 1234, answer.data(), answer.size());
        EXPECT_TRUE(lane.caller.answer_posted());
        ASSERT_TRUE(lane.caller.take_answer(message));
        EXPECT_EQ(message.kind, FrameKind::done);
        EXPECT_EQ(message.run_ns, 1234u);
        EXPECT_EQ(message.payload, answer);
        EXPECT_FALSE(lane.caller.answer_posted());
    }
}

TEST(FastLane, AReaderAboutToSleepSeesAPostOrIsToldOfIt) {
    LanePair lane;
    // Asleep first: the post says the reader must be woken.
    ASSERT_TRUE(lane.caller.sleep_on_answers());
    const std::vector<std::byte> answer = bytes_of("x");
    EXPECT_TRUE(lane.worker.post_answer(FrameKind::done, 0, answer.data(), answer.size()));
    lane.caller.awake_on_answers();
    FastLaneMessage message;
    ASSERT_TRUE(lane.caller.take_answer(message));
    // Posted first: the reader does not sleep, and is not marked asleep.
    lane.worker.post_answer(FrameKind::done, 0, answer.data(), answer.size());
    EXPECT_FALSE(lane.caller.sleep_on_answers());
    ASSERT_TRUE(lane.caller.take_answer(message));
    const std::vector<std::byte> request = bytes_of("r");
    EXPECT_FALSE(lane.caller.post_request(request.data(), request.size(), 0))
        << "the worker never slept";
    EXPECT_FALSE(lane.worker.sleep_on_requests()) << "a request waits";
    ASSERT_TRUE(lane.worker.take_request(message));
    ASSERT_TRUE(lane.worker.sleep_on_requests());
    EXPECT_TRUE(lane.caller.post_request(request.data(), request.size(), 0));
}

/// The lane's memory as a writer that does not keep the rules sees it: the worker's half of
/// answers lies after the caller's half of requests.
FastLaneHalf& answers_half(FastLane& worker_side) {
    void* memory = mmap(nullptr, 2 * sizeof(FastLaneHalf), PROT_READ | PROT_WRITE, MAP_SHARED,
                        worker_side.descriptor(), 0);
    EXPECT_NE(memory, MAP_FAILED);
    return static_cast<FastLaneHalf*>(memory)[1];
}

TEST(FastLane, CountsAndSizesThatCannotBeTrueAreRefused) {
    struct Forgery {
        std::uint64_t skip; // how far past the reader's count `posted` jumps
        std::uint64_t size;
        std::uint32_t kind;
    };
    for (const Forgery forgery :
         {Forgery{1, std::uint64_t{1} << 61, 4},
          Forgery{1, static_cast<std::uint64_t>(PTRDIFF_MAX), 4},
          Forgery{1, fast_lane_capacity + 1, 4}, Forgery{1, UINT64_MAX, 4}, Forgery{5, 8, 4},
          Forgery{UINT64_MAX, 8, 4}, Forgery{1, 8, 0xdeadbeef}}) {
        LanePair lane;
        FastLaneHalf& half = answers_half(lane.worker);
        half.size = forgery.size;
        half.kind = forgery.kind;
        half.posted.store(forgery.skip, std::memory_order_release);
        FastLaneMessage message;
        EXPECT_THROW(lane.caller.take_answer(message), WireError)
            << "skip " << forgery.skip << ", size " << forgery.size;
        munmap(&half - 1, 2 * sizeof(FastLaneHalf));
    }
}

TEST(FastLane, ADescriptorThatIsNotALaneIsRefused) {
    const int small = memfd_create("not-a-lane", MFD_CLOEXEC);
    ASSERT_GE(small, 0);
    ASSERT_EQ(ftruncate(small, 4096), 0);
    EXPECT_THROW(FastLane{small}, WireError);
    int pipe_ends[2];
    ASSERT_EQ(pipe(pipe_ends), 0);
    ::close(pipe_ends[1]);
    EXPECT_THROW(FastLane{pipe_ends[0]}, WireError);
}

// ---- on a pool ------------------------------------------------------------------------------

/// Where this worker's lane lies in its memory: the mapping /proc/self/maps names after it.
FastLaneHalf* own_answers_half() {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        if (line.find("mproc-fast-lane") != std::string::npos) {
            std::uintptr_t start = 0;
            std::istringstream(line) >> std::hex >> start;
            return reinterpret_cast<FastLaneHalf*>(start) + 1;
        }
    }
    return nullptr;
}

/// A task that writes an answer into its worker's lane behind the worker's back, with a count
/// `skip` past the last one and a payload of `size` bytes, then ends its worker: the caller
/// looks in the lane before it blames the running call for the end.
int forge_lane_answer(std::uint64_t skip, std::uint64_t size) {
    FastLaneHalf* half = own_answers_half();
    if (half == nullptr) {
        return -1; // no lane: the test fails on this answer
    }
    half->size = size;
    half->kind = static_cast<std::uint32_t>(FrameKind::done);
    half->posted.fetch_add(skip, std::memory_order_release);
    std::fflush(nullptr);
    _exit(3);
}

int twice(int value) { return 2 * value; }

TEST(FastLaneOnAPool, AWorkerThatGarblesItsLaneCostsItsCallOnly) {
    mproc::Pool pool(2);
    // Both workers past their first task: their lanes are known, and an apply goes there.
    ASSERT_EQ(pool.map(twice, std::vector<int>{1, 2, 3, 4}, 1), (std::vector<int>{2, 4, 6, 8}));
    for (const auto& [skip, size] :
         {std::pair<std::uint64_t, std::uint64_t>{1, std::uint64_t{1} << 61},
          {1, static_cast<std::uint64_t>(PTRDIFF_MAX)},
          {7, 8}}) {
        try {
            const int answer = pool.apply(forge_lane_answer, skip, size);
            ADD_FAILURE() << "the forged lane was believed: " << answer;
        } catch (const mproc::WorkerLost& lost) {
            EXPECT_NE(std::string(lost.what()).find("cannot be true"), std::string::npos)
                << lost.what();
        }
        EXPECT_EQ(pool.apply(twice, 21), 42);
    }
    EXPECT_EQ(pool.map(twice, std::vector<int>(100, 1)), std::vector<int>(100, 2));
}

int answer_then_die_in(int value) {
    std::this_thread::sleep_for(600ms);
    std::thread([] {
        std::this_thread::sleep_for(100ms);
        kill(getpid(), SIGKILL);
    }).detach();
    return value;
}

int nap_then(int value) {
    std::this_thread::sleep_for(100ms);
    return value;
}

TEST(FastLaneOnAPool, AnAnswerPostedInTheLaneOutlivesItsWorker) {
    mproc::Pool pool(2);
    ASSERT_EQ(pool.map(twice, std::vector<int>{1, 2, 3, 4}, 1), (std::vector<int>{2, 4, 6, 8}));
    // The first call's callback holds the pool's I/O thread for 2 s, from 100 ms on; the
    // second call's worker posts its answer in its lane at 600 ms and is dead at 700 ms, long
    // before the I/O thread looks (margins for a loaded machine).
    auto slow = pool.apply_async(mproc::on_success([](int) { std::this_thread::sleep_for(2s); }),
                                 nap_then, 1);
    auto posted = pool.apply_async(answer_then_die_in, 77);
    EXPECT_EQ(slow.get(), 1);
    EXPECT_EQ(posted.get(), 77);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(pool.apply(twice, i), 2 * i);
    }
}

} // namespace
