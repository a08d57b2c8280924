// SPDX-License-Identifier: MIT
#include "channel.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {
namespace {

/// Reads exactly `size` bytes; returns the count read before end of stream.
std::size_t receive_exactly(int fd, std::byte* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::recv(fd, out + done, size - done, 0);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n == 0) {
            return done;
        } else if (errno != EINTR) {
            if (errno == ECONNRESET) {
                return done; // the peer died: same as end of stream
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // The receive timeout (SO_RCVTIMEO) passed in the middle of a frame: a peer
                // that stops half-way through a frame is not trusted to finish it.
                throw WireError("mproc: truncated frame (the sender stalled in the middle)");
            }
            throw std::system_error(errno, std::generic_category(), "recv");
        }
    }
    return done;
}

/// Sends every byte of `parts` (which it modifies); returns 0 or the errno that stopped it.
/// Async-signal-safe.
int send_all(int fd, iovec* parts, std::size_t count) noexcept {
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = count;
    std::size_t left = 0;
    for (std::size_t i = 0; i < count; ++i) {
        left += parts[i].iov_len;
    }
    while (left > 0) {
        const ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        left -= static_cast<std::size_t>(n);
        // Partial write: skip what went out and send the rest.
        std::size_t sent = static_cast<std::size_t>(n);
        while (message.msg_iovlen > 0 && sent >= message.msg_iov[0].iov_len) {
            sent -= message.msg_iov[0].iov_len;
            ++message.msg_iov;
            --message.msg_iovlen;
        }
        if (message.msg_iovlen > 0) {
            message.msg_iov[0].iov_base = static_cast<char*>(message.msg_iov[0].iov_base) + sent;
            message.msg_iov[0].iov_len -= sent;
        }
    }
    return 0;
}

} // namespace

int open_channel(int (&fds)[2]) noexcept {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return -1;
    }
    for (const int fd : fds) {
        // Best effort: a smaller buffer is slower, never wrong.
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &channel_buffer_bytes,
                     sizeof(channel_buffer_bytes));
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &channel_buffer_bytes,
                     sizeof(channel_buffer_bytes));
    }
    return 0;
}

void send_frame(int fd, FrameKind kind, const std::byte* payload, std::size_t size,
                std::uint32_t run_ns) {
    FrameHeader header{static_cast<std::uint32_t>(kind), run_ns, size};
    iovec parts[2] = {{&header, sizeof(header)}, {const_cast<std::byte*>(payload), size}};
    if (const int error = send_all(fd, parts, size == 0 ? 1 : 2)) {
        throw std::system_error(error, std::generic_category(), "sendmsg");
    }
}

void attach_descriptor(msghdr& message, DescriptorControl& control, int fd) noexcept {
    attach_descriptors(message, control, &fd, 1);
}

void attach_descriptors(msghdr& message, DescriptorControl& control, const int* fds,
                        std::size_t count) noexcept {
    message.msg_control = control.bytes;
    message.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* attached = CMSG_FIRSTHDR(&message);
    attached->cmsg_level = SOL_SOCKET;
    attached->cmsg_type = SCM_RIGHTS;
    attached->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(attached), fds, count * sizeof(int));
}

void send_frame_with_fd(int fd, FrameKind kind, int passed) {
    FrameHeader header{static_cast<std::uint32_t>(kind), 0, 0};
    iovec part{&header, sizeof(header)};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    DescriptorControl control;
    attach_descriptor(message, control, passed);
    ssize_t n;
    do {
        n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        throw std::system_error(errno, std::generic_category(), "sendmsg");
    }
    if (static_cast<std::size_t>(n) < sizeof(header)) {
        // The descriptor went with the first byte; the rest of the header follows plainly.
        send_bytes(fd, {reinterpret_cast<const std::byte*>(&header) + n, sizeof(header) - n});
    }
}

bool send_frame_from_signal_handler(int fd, FrameKind kind, const iovec* parts,
                                    std::size_t count) noexcept {
    constexpr std::size_t max_parts = 8;
    if (count + 1 > max_parts) {
        return false;
    }
    FrameHeader header{static_cast<std::uint32_t>(kind), 0, 0};
    iovec all[max_parts];
    all[0] = {&header, sizeof(header)};
    for (std::size_t i = 0; i < count; ++i) {
        header.size += parts[i].iov_len;
        all[i + 1] = parts[i];
    }
    return send_all(fd, all, count + 1) == 0;
}

FrameKind checked_frame_kind(const FrameHeader& header) {
    if (header.kind < static_cast<std::uint32_t>(FrameKind::hello) ||
        header.kind > static_cast<std::uint32_t>(FrameKind::fast_lane)) {
        throw WireError("mproc: unknown frame kind " + std::to_string(header.kind));
    }
    if (header.size > max_frame_payload) {
        throw WireError("mproc: frame of " + std::to_string(header.size) + " bytes refused");
    }
    return static_cast<FrameKind>(header.kind);
}

bool receive_frame(int fd, FrameKind& kind, std::vector<std::byte>& payload) {
    FrameHeader header{};
    const std::size_t got =
        receive_exactly(fd, reinterpret_cast<std::byte*>(&header), sizeof(header));
    if (got == 0) {
        return false;
    }
    if (got < sizeof(header)) {
        throw WireError("mproc: truncated frame header");
    }
    kind = checked_frame_kind(header);
    // Grow with what arrives (at most doubling), so a garbled size costs no more memory than
    // the bytes actually sent.
    constexpr std::size_t first_step = std::size_t{1} << 20;
    std::size_t have = 0;
    if (header.size == 0) {
        payload.clear();
    }
    while (have < header.size) {
        const std::size_t want =
            std::min<std::uint64_t>(header.size, std::max(first_step, 2 * have));
        payload.resize(want);
        if (receive_exactly(fd, payload.data() + have, want - have) < want - have) {
            throw WireError("mproc: truncated frame payload");
        }
        have = want;
    }
    return true;
}

std::size_t begin_frame(WireWriter& out) {
    const std::size_t at = out.size();
    out.write(FrameHeader{});
    return at;
}

void end_frame(WireWriter& out, std::size_t header_at, FrameKind kind) {
    const std::uint64_t size = out.size() - header_at - sizeof(FrameHeader);
    out.patch(header_at, FrameHeader{static_cast<std::uint32_t>(kind), 0, size});
}

void send_bytes(int fd, std::span<const std::byte> bytes) {
    iovec part{const_cast<std::byte*>(bytes.data()), bytes.size()};
    if (const int error = send_all(fd, &part, 1)) {
        throw std::system_error(error, std::generic_category(), "sendmsg");
    }
}

void send_writer(int fd, const WireWriter& out) {
    constexpr std::size_t max_parts = 64; // per sendmsg; a window's frames are a few parts each
    iovec parts[max_parts];
    std::size_t count = 0;
    auto send_parts = [&] {
        if (const int error = send_all(fd, parts, count)) {
            throw std::system_error(error, std::generic_category(), "sendmsg");
        }
        count = 0;
    };
    out.for_each_part([&](const std::byte* data, std::size_t size) {
        if (count == max_parts) {
            send_parts();
        }
        parts[count++] = {const_cast<std::byte*>(data), size};
    });
    if (count != 0) {
        send_parts();
    }
}

FrameReader::~FrameReader() {
    if (received_fd_ >= 0) {
        ::close(received_fd_);
    }
}

void FrameReader::take_attached_fds(msghdr& message) noexcept {
    for (cmsghdr* attached = CMSG_FIRSTHDR(&message); attached != nullptr;
         attached = CMSG_NXTHDR(&message, attached)) {
        if (attached->cmsg_level != SOL_SOCKET || attached->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const std::size_t count = (attached->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int passed;
            std::memcpy(&passed, CMSG_DATA(attached) + i * sizeof(int), sizeof(int));
            if (received_fd_ >= 0) {
                ::close(received_fd_); // an untrusted peer's extra descriptors are not kept
            }
            received_fd_ = passed;
        }
    }
}

int FrameReader::take_received_fd() noexcept { return std::exchange(received_fd_, -1); }

std::size_t FrameReader::whole_frames_buffered(std::size_t limit) const noexcept {
    std::size_t count = 0;
    for (std::size_t at = begin_; count < limit && end_ - at >= sizeof(FrameHeader); ++count) {
        FrameHeader header{};
        std::memcpy(&header, buffer_.data() + at, sizeof(header));
        if (header.size > end_ - at - sizeof(FrameHeader)) {
            break;
        }
        at += sizeof(FrameHeader) + header.size;
    }
    return count;
}

bool FrameReader::next(int fd, FrameKind& kind, std::span<const std::byte>& payload) {
    while (end_ - begin_ < sizeof(FrameHeader)) {
        if (!fill(fd, sizeof(FrameHeader))) {
            if (end_ == begin_) {
                return false;
            }
            throw WireError("mproc: truncated frame header");
        }
    }
    FrameHeader header{};
    std::memcpy(&header, buffer_.data() + begin_, sizeof(header));
    kind = checked_frame_kind(header);
    run_ns_ = header.run_ns;
    const std::size_t whole = sizeof(FrameHeader) + header.size;
    while (end_ - begin_ < whole) {
        if (!fill(fd, whole)) {
            throw WireError("mproc: truncated frame payload");
        }
    }
    payload = {buffer_.data() + begin_ + sizeof(FrameHeader), header.size};
    begin_ += whole;
    if (begin_ == end_) {
        begin_ = end_ = 0; // the next fill starts at the front (payload stays valid till then)
    }
    return true;
}

bool FrameReader::has_whole_frame() const noexcept {
    if (end_ - begin_ < sizeof(FrameHeader)) {
        return false;
    }
    FrameHeader header{};
    std::memcpy(&header, buffer_.data() + begin_, sizeof(header));
    return header.size <= end_ - begin_ - sizeof(FrameHeader);
}

bool FrameReader::fill(int fd, std::size_t want) {
    // Room for many small frames from the start (a hundred or so: a pipelined window's worth);
    // beyond it, grow only as bytes arrive. Not more at first: every pool start pays for this
    // buffer's pages, in the caller and in each worker (64 KiB made Pool(2) + apply + destroy
    // about 10% slower than 4 KiB, with no gain for imap_unordered chunksize 1).
    constexpr std::size_t min_capacity = std::size_t{4} << 10;
    const std::size_t have = end_ - begin_;
    if (begin_ + want > buffer_.size()) {
        if (begin_ != 0) {
            std::memmove(buffer_.data(), buffer_.data() + begin_, have);
            begin_ = 0;
            end_ = have;
        }
        if (want > buffer_.size()) {
            // Toward a large frame, at most double what is here, so that a garbled size costs
            // no more memory than the bytes actually sent.
            resize_bytes(buffer_,
                         std::max({buffer_.size(), min_capacity, std::min(want, 2 * have)}));
        }
    }
    for (;;) {
        // recvmsg, not recv: a descriptor the peer attached (SCM_RIGHTS) would be dropped by a
        // plain recv.
        iovec into{buffer_.data() + end_, buffer_.size() - end_};
        DescriptorControl control;
        msghdr message{};
        message.msg_iov = &into;
        message.msg_iovlen = 1;
        message.msg_control = control.bytes;
        message.msg_controllen = sizeof(control.bytes);
        const ssize_t n = ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
        if (n >= 0) {
            take_attached_fds(message);
        }
        if (n > 0) {
            end_ += static_cast<std::size_t>(n);
            return true;
        }
        if (n == 0 || errno == ECONNRESET) {
            return false; // end of stream; a dead peer is the same
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            // The receive timeout (SO_RCVTIMEO) passed in the middle of a frame: a peer that
            // stops half-way through a frame is not trusted to finish it.
            throw WireError("mproc: truncated frame (the sender stalled in the middle)");
        }
        if (errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "recv");
        }
    }
}

} // namespace mproc::detail
