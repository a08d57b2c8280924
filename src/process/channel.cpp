#include "mproc/detail/channel.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "mproc/detail/wire.hpp"

namespace mproc::detail {
namespace {

struct FrameHeader {
    std::uint32_t kind;
    std::uint32_t reserved;
    std::uint64_t size;
};

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
            throw std::system_error(errno, std::generic_category(), "recv");
        }
    }
    return done;
}

} // namespace

void send_frame(int fd, FrameKind kind, const std::byte* payload, std::size_t size) {
    FrameHeader header{static_cast<std::uint32_t>(kind), 0, size};
    iovec parts[2] = {{&header, sizeof(header)}, {const_cast<std::byte*>(payload), size}};
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = size == 0 ? 1 : 2;
    std::size_t left = sizeof(header) + size;
    while (left > 0) {
        const ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "sendmsg");
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
    if (header.kind < static_cast<std::uint32_t>(FrameKind::hello) ||
        header.kind > static_cast<std::uint32_t>(FrameKind::failed)) {
        throw WireError("mproc: unknown frame kind " + std::to_string(header.kind));
    }
    if (header.size > max_frame_payload) {
        throw WireError("mproc: frame of " + std::to_string(header.size) + " bytes refused");
    }
    kind = static_cast<FrameKind>(header.kind);
    payload.resize(header.size);
    if (receive_exactly(fd, payload.data(), header.size) < header.size) {
        throw WireError("mproc: truncated frame payload");
    }
    return true;
}

} // namespace mproc::detail
