// SPDX-License-Identifier: MIT
#pragma once
// A worker process's fast lane: shared memory in which the caller posts one small request and
// the worker posts its answer, with no system call on either side while the other is awake.
//
// On the socket alone, an apply round trip costs four system calls (a send and a receive each
// way) and the wake-ups of a worker and of the pool's I/O thread asleep in them; on a virtual
// machine that is about three times a round trip through shared memory between two processes.
// Both sides already look for work for a while before they sleep (worker_process.cpp,
// process_backend.cpp); in the lane, what they look at is a word of memory, not a socket.
//
// The rules, which keep the lane and the socket one ordered stream of requests and of answers:
//  - The caller posts a request in the lane only to a worker with no other request unanswered,
//    so at most one is in the lane at a time, and it is the one the worker runs next. Requests
//    the caller sends on the socket after it come after it: the worker takes the lane's request
//    before any `run` frame it reads. The releases of lent results sent before it come first:
//    the request counts them, and the worker reads them from the socket before it runs it.
//  - The worker answers a request from the lane in the lane when the answer fits, and on the
//    socket otherwise. Either way it is the first answer the caller takes after the request.
//  - A side about to sleep (the worker in recv, the I/O thread in poll) says so in the lane
//    first; a side that posts to a sleeper also sends a lane_posted frame on the socket to wake
//    it. The two stores and loads are sequentially consistent (the Dekker pattern), so either the
//    sleeper sees the post or the poster sees the sleeper.
//  - The socket stays the channel's life: a worker's death is its end of stream, as before. An
//    answer it posted before dying is taken then, as held answers are.
//
// Both sides treat the memory as the other's: what is read from it is copied out, and its
// counts and sizes are checked, before anything is believed.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "channel.hpp"

namespace mproc::detail {

/// The largest payload the lane carries each way; larger ones go on the socket.
inline constexpr std::size_t fast_lane_capacity = (std::size_t{16} << 10) - 64;

/// One direction of the lane, as it lies in the shared memory.
struct FastLaneHalf {
    // How many messages the writer has posted in all: the reader has one to take while it has
    // taken fewer.
    std::atomic<std::uint64_t> posted;
    // Non-zero while the reader sleeps on the socket: a writer then sends lane_posted.
    std::atomic<std::uint32_t> reader_asleep;
    std::uint32_t kind;
    std::uint32_t run_ns;
    std::uint64_t size;
    // In a request: how many release frames the caller had sent the worker before it.
    std::uint64_t releases_before;
    alignas(64) std::byte payload[fast_lane_capacity];
};

/// A message taken out of the lane: copied, so the other side cannot change it any more.
struct FastLaneMessage {
    FrameKind kind{};
    std::uint32_t run_ns = 0;
    std::uint64_t releases_before = 0;
    std::vector<std::byte> payload;
};

/// One side's view of a lane. The worker makes it (and sends its descriptor in a fast_lane
/// frame); the caller maps what it receives.
class FastLane {
  public:
    /// Makes a lane in fresh shared memory; the descriptor is then `descriptor()`, for the
    /// caller, until close_descriptor(). Throws std::system_error if the system refuses.
    FastLane();
    /// Maps the lane behind `fd` (a descriptor the worker sent; this takes and closes it).
    /// Throws WireError if it is not a lane.
    explicit FastLane(int fd);
    FastLane(const FastLane&) = delete;
    FastLane& operator=(const FastLane&) = delete;
    ~FastLane();

    int descriptor() const noexcept { return fd_; }
    void close_descriptor() noexcept;

    // The caller's side: it writes requests and reads answers.

    /// Posts a request (a run frame's payload; at most fast_lane_capacity bytes), after
    /// `releases_before` release frames in all on the socket. True when the worker sleeps on its
    /// socket and must be sent lane_posted.
    bool post_request(const std::byte* payload, std::size_t size,
                      std::uint64_t releases_before) noexcept {
        return post(memory_->requests, requests_posted_, FrameKind::run, 0, releases_before,
                    payload, size);
    }
    /// Whether the worker has posted an answer not taken yet (a look, no copy).
    bool answer_posted() const noexcept { return posted(memory_->answers, answers_taken_); }
    /// Takes the posted answer, if there is one, into `message`; throws WireError when the
    /// lane's counts or size cannot be true.
    bool take_answer(FastLaneMessage& message) {
        return take(memory_->answers, answers_taken_, message);
    }
    /// The I/O thread is about to sleep in poll: false (and nothing changes) if an answer was
    /// posted meanwhile.
    bool sleep_on_answers() noexcept { return sleep(memory_->answers, answers_taken_); }
    /// The I/O thread woke: a posted answer need not be announced on the socket any more.
    void awake_on_answers() noexcept {
        memory_->answers.reader_asleep.store(0, std::memory_order_relaxed);
    }

    // The worker's side: it reads requests and writes answers.

    /// As post_request, for an answer, with how long its request ran.
    bool post_answer(FrameKind kind, std::uint32_t run_ns, const std::byte* payload,
                     std::size_t size) noexcept {
        return post(memory_->answers, answers_posted_, kind, run_ns, 0, payload, size);
    }
    bool request_posted() const noexcept { return posted(memory_->requests, requests_taken_); }
    bool take_request(FastLaneMessage& message) {
        return take(memory_->requests, requests_taken_, message);
    }
    bool sleep_on_requests() noexcept { return sleep(memory_->requests, requests_taken_); }
    void awake_on_requests() noexcept {
        memory_->requests.reader_asleep.store(0, std::memory_order_relaxed);
    }

  private:
    struct Memory {
        FastLaneHalf requests;
        FastLaneHalf answers;
    };

    static bool post(FastLaneHalf& half, std::uint64_t& count, FrameKind kind, std::uint32_t run_ns,
                     std::uint64_t releases_before, const std::byte* payload,
                     std::size_t size) noexcept;
    static bool posted(const FastLaneHalf& half, std::uint64_t taken) noexcept {
        return half.posted.load(std::memory_order_acquire) != taken;
    }
    static bool take(FastLaneHalf& half, std::uint64_t& taken, FastLaneMessage& message);
    static bool sleep(FastLaneHalf& half, std::uint64_t taken) noexcept;

    Memory* memory_ = nullptr;
    int fd_ = -1;
    // Each side's own counts, kept in its own memory: the other side cannot change them.
    std::uint64_t requests_posted_ = 0;
    std::uint64_t requests_taken_ = 0;
    std::uint64_t answers_posted_ = 0;
    std::uint64_t answers_taken_ = 0;
};

} // namespace mproc::detail
