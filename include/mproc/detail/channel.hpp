#pragma once
// Frames between the caller and a worker process over a stream socket: a fixed header (kind,
// payload size) and the payload. Both sides treat the other as untrusted: sizes are checked and
// an unknown kind is an error.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mproc::detail {

enum class FrameKind : std::uint32_t {
    hello = 1,  // worker -> caller, once: program id, pid
    run = 2,    // caller -> worker: entry address, entry payload
    stop = 3,   // caller -> worker: exit now
    done = 4,   // worker -> caller: the entry's response (per-item outcomes)
    failed = 5, // worker -> caller: the whole chunk failed (one encoded exception)
    crashed =
        6 // worker -> caller, from its fatal-signal handler: a crash report (crash_report.hpp)
};

/// Frames larger than this are refused. Below it, a garbled size still costs no more memory
/// than the bytes that really arrive: the payload grows as they do.
inline constexpr std::uint64_t max_frame_payload = std::uint64_t{1} << 36; // 64 GiB

/// The fixed part of every frame, as it travels.
struct FrameHeader {
    std::uint32_t kind;
    std::uint32_t reserved;
    std::uint64_t size;
};

/// Checks a received header: a known kind and a size within max_frame_payload; throws
/// WireError otherwise. Returns the kind.
FrameKind checked_frame_kind(const FrameHeader& header);

/// Writes one frame; throws std::system_error("sendmsg") when the peer is gone. Never raises
/// SIGPIPE.
void send_frame(int fd, FrameKind kind, const std::byte* payload, std::size_t size);

/// Writes one frame whose payload is the concatenation of `parts`; for a fatal-signal handler:
/// async-signal-safe, allocates nothing, never throws. Returns false if the peer is gone.
bool send_frame_from_signal_handler(int fd, FrameKind kind, const iovec* parts,
                                    std::size_t count) noexcept;

/// Reads one frame into `payload` (resized). Returns false on end of stream before a header;
/// throws WireError for a truncated frame, an oversized one, or an unknown kind, and
/// std::system_error("recv") on a socket error.
bool receive_frame(int fd, FrameKind& kind, std::vector<std::byte>& payload);

} // namespace mproc::detail
