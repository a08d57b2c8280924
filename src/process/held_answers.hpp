// SPDX-License-Identifier: MIT
#pragma once
// Answers a worker process holds back, in memory it shares with the caller.
//
// A worker whose window holds several short chunks (the pipelined window, process_backend.cpp)
// would pay a system call per answer, and wake the caller's I/O thread once per answer, if it
// sent each as it finished. It sends them a few at a time instead: an answer is held while
// enough chunks are queued behind it. Held answers stay exact on every failure because they
// are held in shared memory, not in the worker's own: a worker that dies with answers held (a
// crash, SIGKILL, _exit in a task) leaves them where the caller reads them after its end of
// stream, before it blames the chunk that was running (the next unanswered one) for the death.
//
// The layout: a header, then the held frames back to back, exactly as they would have gone on
// the socket. The worker publishes what it holds with one release store; the caller reads only
// after the worker's end of stream, when nothing changes any more, and copies before it parses
// (the bytes come from an untrusted process).

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "channel.hpp"

namespace mproc::detail {

/// The shared memory's header.
struct HeldAnswersHeader {
    // The held frames: (count << 32) | bytes; 0 when none are held.
    std::atomic<std::uint64_t> published;
    // How many answers the worker had sent on the socket before the held ones: the caller
    // counts the answers it read, so that a held answer already sent (the worker died between
    // sending and forgetting) is never taken twice.
    std::atomic<std::uint64_t> sent_before;
};

/// The whole shared memory: a header and room for the held frames.
inline constexpr std::size_t held_answers_size = std::size_t{64} << 10;
inline constexpr std::size_t held_answers_offset = 64; // the frames start here
inline constexpr std::size_t held_answers_capacity = held_answers_size - held_answers_offset;

/// The worker's side. Holds nothing until it has told the caller where (the first hold sends
/// the shared memory's descriptor in a held_answers frame); if the system refuses the memory,
/// it holds nothing at all and the worker answers every chunk at once, as without it.
class HeldAnswers {
  public:
    HeldAnswers() = default;
    HeldAnswers(const HeldAnswers&) = delete;
    HeldAnswers& operator=(const HeldAnswers&) = delete;
    ~HeldAnswers();

    /// Appends an answer (a done or failed frame) to those held, if it fits; false otherwise
    /// (nothing held then changes). `channel_fd` is where the descriptor goes the first time.
    bool hold(int channel_fd, FrameKind kind, std::uint32_t run_ns, const std::byte* payload,
              std::size_t size);
    /// How many answers are held.
    std::size_t count() const noexcept { return count_; }
    /// Sends every held answer in one system call, then forgets them.
    void send(int channel_fd);
    /// Counts an answer that went on the socket without being held.
    void sent_one() noexcept { ++sent_; }

  private:
    bool attach(int channel_fd);

    std::byte* memory_ = nullptr; // the mapping, once attached
    bool refused_ = false;        // the system refused it: never hold
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;
    std::uint64_t sent_ = 0; // answers sent on the socket, in all
};

/// The caller's side: a worker's shared memory, mapped read-only.
class HeldAnswersView {
  public:
    /// Maps the memory behind `fd` (a descriptor the worker sent; this takes and closes it).
    /// Throws WireError if it is not such memory.
    explicit HeldAnswersView(int fd);
    HeldAnswersView(const HeldAnswersView&) = delete;
    HeldAnswersView& operator=(const HeldAnswersView&) = delete;
    ~HeldAnswersView();

    /// The frames the worker held when it ended that the caller has not read yet (it has read
    /// `answers_read` answers on the socket), copied out, back to back; empty if none. Only
    /// once the worker's end of stream has been read: the memory is still then. Throws
    /// WireError for a header that cannot be true.
    std::vector<std::byte> unread_frames(std::uint64_t answers_read) const;

  private:
    const std::byte* memory_ = nullptr;
};

} // namespace mproc::detail
