// SPDX-License-Identifier: MIT
#include "process_handle.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mproc::detail {

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    return -1;
#endif
}

void kill_process(pid_t pid, int pidfd) noexcept {
#ifdef SYS_pidfd_send_signal
    if (pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
        return;
    }
#endif
    (void)pidfd;
    kill(pid, SIGKILL);
}

bool await_exit(int pidfd, std::chrono::milliseconds limit) noexcept {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        pollfd process{pidfd, POLLIN, 0}; // a pidfd turns readable when its process ends
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready =
            ::poll(&process, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
        if (ready > 0) {
            return true;
        }
        if (ready == 0 || errno != EINTR) {
            return false;
        }
    }
}

bool is_stopped(pid_t pid) noexcept {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
    FILE* file = std::fopen(path, "re");
    if (file == nullptr) {
        return false;
    }
    char line[512] = {};
    const std::size_t n = std::fread(line, 1, sizeof(line) - 1, file);
    std::fclose(file);
    // "pid (comm) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
    const char* end = std::strrchr(line, ')');
    if (n == 0 || end == nullptr || end[1] != ' ') {
        return false;
    }
    return end[2] == 'T' || end[2] == 't';
}

std::optional<int> reap_if_child(int pidfd) noexcept {
    siginfo_t info{};
    int result;
    while ((result = waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG)) < 0 &&
           errno == EINTR) {
    }
    if (result != 0 || info.si_pid == 0) {
        return std::nullopt;
    }
    switch (info.si_code) {
    case CLD_EXITED:
        return info.si_status << 8;
    case CLD_KILLED:
        return info.si_status;
    case CLD_DUMPED:
        return info.si_status | 0x80;
    default:
        return std::nullopt;
    }
}

} // namespace mproc::detail
