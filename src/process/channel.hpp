// SPDX-License-Identifier: MIT
#pragma once
// Frames between the caller and a worker process over a stream socket: a fixed header (kind,
// payload size) and the payload. Both sides treat the other as untrusted: sizes are checked and
// an unknown kind is an error.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

enum class FrameKind : std::uint32_t {
    hello = 1,  // worker -> caller, once: program id, pid, lend_probe_address()
    run = 2,    // caller -> worker: entry address, entry payload
    stop = 3,   // caller -> worker: exit now
    done = 4,   // worker -> caller: the entry's response (per-item outcomes)
    failed = 5, // worker -> caller: the whole chunk failed (one encoded exception)
    crashed =
        6, // worker -> caller, from its fatal-signal handler: a crash report (crash_report.hpp)
    // worker -> caller, at most once, before it first holds an answer back: no payload, and a
    // file descriptor (SCM_RIGHTS) of the shared memory it holds answers in (held_answers.hpp)
    held_answers = 7,
    // Lent results (mproc/detail/wire/lent_memory.hpp):
    done_lent = 8, // worker -> caller: as done, with blocks to read from the worker's memory
    lend = 9,      // caller -> worker, at most once: it can read the worker's memory
    release = 10,  // caller -> worker: the oldest done_lent answer has been read
    // The fast lane (fast_lane.hpp):
    lane_posted = 11, // either way: look in the lane, something was posted while you slept
    // worker -> caller, once, after its hello: no payload, and a file descriptor (SCM_RIGHTS) of
    // the shared memory of its lane
    fast_lane = 12,
};

/// Whether a frame of `kind` answers a request (done, done_lent, failed).
constexpr bool is_answer(FrameKind kind) noexcept {
    return kind == FrameKind::done || kind == FrameKind::done_lent || kind == FrameKind::failed;
}

/// Frames larger than this are refused. Below it, a garbled size still costs no more memory
/// than the bytes that really arrive: the payload grows as they do.
inline constexpr std::uint64_t max_frame_payload = std::uint64_t{1} << 36; // 64 GiB

/// The fixed part of every frame, as it travels.
struct FrameHeader {
    std::uint32_t kind;
    // In done and failed frames: how long the chunk ran in the worker, in nanoseconds
    // (saturated); what the caller sizes its pipelined windows by. 0 elsewhere. Only a hint:
    // a garbled one costs speed, never correctness.
    std::uint32_t run_ns;
    std::uint64_t size;
};

/// A run time as it fits in FrameHeader::run_ns.
constexpr std::uint32_t saturated_run_ns(std::uint64_t ns) noexcept {
    return ns > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(ns);
}

/// Checks a received header: a known kind and a size within max_frame_payload; throws
/// WireError otherwise. Returns the kind.
FrameKind checked_frame_kind(const FrameHeader& header);

/// Opens the socket pair of a worker's channel (close-on-exec), as socketpair(2): 0, or -1 and
/// errno. Its buffers are widened to `channel_buffer_bytes` where the system allows: a chunk of
/// a megabyte then crosses in one or two wake-ups of the reader instead of one per default
/// buffer's worth (about 200 KiB), which made a map of 10^6 trivial items twice as slow.
int open_channel(int (&fds)[2]) noexcept;

/// The channel buffer size open_channel asks for (the kernel caps it at net.core.wmem_max and
/// rmem_max; memory is taken only as bytes wait in them).
inline constexpr int channel_buffer_bytes = 4 << 20;

/// Writes one frame (with `run_ns` in its header); throws std::system_error("sendmsg") when
/// the peer is gone. Never raises SIGPIPE.
void send_frame(int fd, FrameKind kind, const std::byte* payload, std::size_t size,
                std::uint32_t run_ns = 0);

/// Room for up to two file descriptors in a message's ancillary data.
struct DescriptorControl {
    static constexpr std::size_t max_descriptors = 2;
    alignas(cmsghdr) char bytes[CMSG_SPACE(max_descriptors * sizeof(int))]{};
};

/// Attaches `fd` to `message` (SCM_RIGHTS), in `control`, which must live until it is sent.
/// Async-signal-safe.
void attach_descriptor(msghdr& message, DescriptorControl& control, int fd) noexcept;
/// Attaches the first `count` (at most two) of `fds`, in that order, as attach_descriptor does.
void attach_descriptors(msghdr& message, DescriptorControl& control, const int* fds,
                        std::size_t count) noexcept;

/// Writes a frame with no payload that carries the file descriptor `passed` (SCM_RIGHTS); throws
/// std::system_error("sendmsg") when the peer is gone. Never raises SIGPIPE.
void send_frame_with_fd(int fd, FrameKind kind, int passed);

/// Writes one frame whose payload is the concatenation of `parts`; for a fatal-signal handler:
/// async-signal-safe, allocates nothing, never throws. Returns false if the peer is gone.
bool send_frame_from_signal_handler(int fd, FrameKind kind, const iovec* parts,
                                    std::size_t count) noexcept;

/// Reads one frame into `payload` (resized). Returns false on end of stream before a header;
/// throws WireError for a truncated frame, an oversized one, or an unknown kind, and
/// std::system_error("recv") on a socket error.
bool receive_frame(int fd, FrameKind& kind, std::vector<std::byte>& payload);

/// Appends room for a frame header to `out`, for a payload the caller appends next; returns
/// where the header lies, for end_frame. Several frames in one buffer go out in one send_bytes.
std::size_t begin_frame(WireWriter& out);
/// Fills in the header at `header_at`: `kind`, and the size of the payload appended since.
void end_frame(WireWriter& out, std::size_t header_at, FrameKind kind);

/// Writes all of `bytes` (whole frames); throws std::system_error("sendmsg") when the peer is
/// gone. Never raises SIGPIPE.
void send_bytes(int fd, std::span<const std::byte> bytes);

/// Writes all of `out`'s contents, its own bytes and the blocks it refers to (gathered, no
/// copy); as send_bytes otherwise.
void send_writer(int fd, const WireWriter& out);

/// Reads frames through a buffer, so that one recv takes in every frame that has arrived (a
/// peer that pipelines its frames costs one system call per batch, not two per frame). The
/// same checks as receive_frame: known kinds, sizes within max_frame_payload, and the buffer
/// grows only as the bytes of a large frame really arrive (at most doubling).
class FrameReader {
  public:
    FrameReader() = default;
    FrameReader(const FrameReader&) = delete;
    FrameReader& operator=(const FrameReader&) = delete;
    ~FrameReader();

    /// Takes the next frame: from the buffer, or else from `fd` (blocking until a whole frame
    /// is in). `payload` points into the buffer and stays valid until the next call. Returns
    /// false on end of stream before a header; throws like receive_frame.
    bool next(int fd, FrameKind& kind, std::span<const std::byte>& payload);
    /// The run_ns of the frame next() returned last.
    std::uint32_t run_ns() const noexcept { return run_ns_; }

    /// Whether the buffer holds a whole frame: next() would return it without a system call.
    bool has_whole_frame() const noexcept;
    /// How many whole frames the buffer holds, counting at most `limit`.
    std::size_t whole_frames_buffered(std::size_t limit) const noexcept;
    /// Whether the buffer holds any byte of a frame not yet taken (a whole one, or the start of
    /// one whose rest is still on its way).
    bool has_buffered_bytes() const noexcept { return end_ > begin_; }

    /// The file descriptor the peer sent last (SCM_RIGHTS), now the caller's to close; -1 if
    /// none came since the last call. Only a held_answers frame brings one (an older one that
    /// nobody took is closed when the next arrives).
    int take_received_fd() noexcept;

  private:
    /// Reads at least once more from `fd` into the buffer, with room for `want` bytes from
    /// begin_; returns false on end of stream.
    bool fill(int fd, std::size_t want);
    /// Keeps the last descriptor that `message` (just received) carried, closing any other.
    void take_attached_fds(msghdr& message) noexcept;

    WireBytes buffer_;      // grown uninitialised: only received bytes are read
    std::size_t begin_ = 0; // first byte not yet taken
    std::size_t end_ = 0;   // one past the last byte received
    std::uint32_t run_ns_ = 0;
    int received_fd_ = -1;
};

} // namespace mproc::detail
