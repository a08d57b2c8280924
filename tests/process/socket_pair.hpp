// SPDX-License-Identifier: MIT
#pragma once
// A connected pair of unix stream sockets for channel tests: fd[0] writes, fd[1] reads (either
// way works; the tests use them so).

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0) {
            throw std::system_error(errno, std::generic_category(), "socketpair");
        }
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    ~SocketPair() {
        for (const int end : fd) {
            if (end >= 0) {
                ::close(end);
            }
        }
    }
    void close_writer() {
        ::close(fd[0]);
        fd[0] = -1;
    }
};
