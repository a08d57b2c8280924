#include "fork_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include "crash_handler.hpp"
#include "mproc/detail/channel.hpp"
#include "mproc/detail/trace.hpp"
#include "spawn.hpp"
#include "worker_process.hpp"

namespace mproc::detail {
namespace {

/// Worker id 0 is not a worker to start: it asks to kill `kill_pid`, or every worker if 0.
struct SpawnRequest {
    std::uint64_t worker_id;
    std::int64_t kill_pid = 0;
};

[[noreturn]] void throw_errno(const char* call) {
    throw std::system_error(errno, std::generic_category(), call);
}

void send_request(int control_fd, const SpawnRequest& request) {
    while (send(control_fd, &request, sizeof(request), MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) {
            throw_errno("send");
        }
    }
}

/// Sends one event, with the channel fd attached for `spawned`.
void send_event(int control_fd, const WorkerLauncher::Event& event) noexcept {
    iovec part{const_cast<WorkerLauncher::Event*>(&event), sizeof(event)};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    DescriptorControl control;
    if (event.channel_fd >= 0) {
        attach_descriptor(message, control, event.channel_fd);
    }
    while (::sendmsg(control_fd, &message, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

/// In the new worker, right after fork: cut every tie to the server but the channel.
[[noreturn]] void become_worker_process(int channel_fd, pid_t server_pid, std::uint64_t worker_id,
                                        const std::function<void()>& initializer) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr); // SIGCHLD's default comes from the server
    // The server is single-threaded, so "parent died" really means the server died.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server_pid) {
        _exit(1); // the server died before we could ask to be told
    }
    // Channel on fd 3, everything else the server (and so the caller) had open is closed.
    if (channel_fd != 3) {
        dup2(channel_fd, 3);
    }
    close_inherited_fds(3);
    run_worker_process(3, worker_id, initializer);
}

/// The server's loop; never returns.
} // namespace

void serve_forks(int control_fd, const std::function<void()>& initializer) {
    // Once here, not in each worker (a no-op when this server was forked from a caller that
    // prepared it already).
    prepare_crash_handler();
    // A caller may ignore SIGCHLD (SIG_IGN, or SA_NOCLDWAIT: daemons do, so that no child of
    // theirs lingers as a zombie), and this copy inherits it: the kernel would then reap the
    // workers itself, their wait statuses (how they died) would be lost, and a pid listed in
    // `children` could be reused by a stranger before we kill it. The server's signals are its
    // own: back to the default, under which every worker waits to be reaped here.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(SIGCHLD, &default_action, nullptr);
    sigset_t child_signals;
    sigemptyset(&child_signals);
    sigaddset(&child_signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child_signals, nullptr);
    const int child_events = signalfd(-1, &child_signals, SFD_CLOEXEC);
    const pid_t self = getpid();
    std::vector<pid_t> children;

    auto reap = [&](int options) {
        for (;;) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, options);
            if (pid <= 0) {
                return;
            }
            std::erase(children, pid);
            send_event(control_fd, {WorkerLauncher::Event::Kind::exited, status, 0, pid, -1});
        }
    };

    for (;;) {
        pollfd watched[2] = {{control_fd, POLLIN, 0}, {child_events, POLLIN, 0}};
        if (poll(watched, 2, -1) < 0) {
            continue; // EINTR
        }
        if (watched[1].revents != 0) {
            signalfd_siginfo info;
            while (read(child_events, &info, sizeof(info)) < 0 && errno == EINTR) {
            }
            reap(WNOHANG);
        }
        if (watched[0].revents == 0) {
            continue;
        }
        SpawnRequest request{};
        const ssize_t n = recv(control_fd, &request, sizeof(request), 0);
        if (n > 0 && request.worker_id == 0) {
            // Kill one worker (overdue, or untrusted) or, for terminate(), all of them now; they
            // are reaped and reported as usual. Only unreaped children: their pids are ours.
            for (const pid_t child : children) {
                if (request.kill_pid == 0 || request.kill_pid == child) {
                    kill(child, SIGKILL);
                }
            }
            continue;
        }
        if (n <= 0) {
            // The caller shut us down (terminate_workers, shut_down) or died: no worker may
            // outlive it.
            for (const pid_t child : children) {
                kill(child, SIGKILL);
            }
            while (!children.empty()) {
                int status = 0;
                const pid_t pid = waitpid(-1, &status, 0);
                if (pid < 0 && errno != EINTR) {
                    break;
                }
                std::erase(children, pid);
            }
            _exit(0);
        }
        int channel[2];
        if (open_channel(channel) != 0) {
            send_event(control_fd, {WorkerLauncher::Event::Kind::spawn_failed, errno,
                                    request.worker_id, 0, -1});
            continue;
        }
        const pid_t pid = fork();
        if (pid == 0) {
            close(channel[0]);
            become_worker_process(channel[1], self, request.worker_id, initializer);
        }
        close(channel[1]);
        if (pid < 0) {
            send_event(control_fd, {WorkerLauncher::Event::Kind::spawn_failed, errno,
                                    request.worker_id, 0, -1});
        } else {
            children.push_back(pid);
            send_event(control_fd, {WorkerLauncher::Event::Kind::spawned, 0, request.worker_id, pid,
                                    channel[0]});
        }
        close(channel[0]);
    }
}

void close_inherited_fds(int keep) noexcept {
    // close_range(2) where the kernel has it; otherwise walk /proc/self/fd.
    bool closed = keep <= 3 || close_range(3, static_cast<unsigned>(keep) - 1, 0) == 0;
    closed = closed && close_range(static_cast<unsigned>(keep < 3 ? 3 : keep + 1), ~0U, 0) == 0;
    if (closed) {
        return;
    }
    if (DIR* fds = opendir("/proc/self/fd")) {
        std::vector<int> open_fds;
        while (dirent* entry = readdir(fds)) {
            const int fd = std::atoi(entry->d_name);
            if (fd > 2 && fd != keep && fd != dirfd(fds)) {
                open_fds.push_back(fd);
            }
        }
        closedir(fds);
        for (const int fd : open_fds) {
            close(fd);
        }
    }
}

ForkServer::ForkServer(StartMethod method, const Initializer& initializer) {
    int control[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) != 0) {
        throw_errno("socketpair");
    }
    if (method == StartMethod::forkserver) {
        try {
            pid_ = spawn_this_program(control[1], "forkserver " + std::to_string(getpid()),
                                      initializer);
        } catch (...) {
            close(control[0]);
            close(control[1]);
            throw;
        }
    } else {
        // The server and every worker forked from it inherit it, and the caller prepares it
        // only once for all of its pools.
        prepare_crash_handler();
        std::fflush(nullptr); // or buffered output would be printed again by every copy
        pid_ = fork();
        if (pid_ < 0) {
            const int error = errno;
            close(control[0]);
            close(control[1]);
            throw std::system_error(error, std::generic_category(), "fork");
        }
        if (pid_ == 0) {
            close(control[0]);
            if (control[1] != 3) {
                dup2(control[1], 3);
            }
            close_inherited_fds(3);
            try {
                // An empty Initializer must stay empty: a std::function wrapping it would not be.
                serve_forks(3, initializer ? std::function<void()>(initializer)
                                           : std::function<void()>());
            } catch (...) {
            }
            _exit(1);
        }
    }
    close(control[1]);
    control_fd_ = control[0];
    MPROC_TRACE_EVENT("fork server %d started", static_cast<int>(pid_));
}

ForkServer::~ForkServer() { shut_down(); }

void ForkServer::request_worker(std::uint64_t worker_id) {
    send_request(control_fd_, SpawnRequest{worker_id});
}

void ForkServer::kill_worker(pid_t pid) { send_request(control_fd_, SpawnRequest{0, pid}); }

WorkerLauncher::Event ForkServer::read_event() {
    Event event{};
    iovec part{&event, sizeof(event)};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    DescriptorControl control;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof(control.bytes);
    ssize_t n;
    while ((n = recvmsg(control_fd_, &message, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    if (n < 0) {
        throw_errno("recvmsg");
    }
    if (n != static_cast<ssize_t>(sizeof(event))) {
        throw std::system_error(ECONNRESET, std::generic_category(), "fork server");
    }
    event.channel_fd = -1;
    if (cmsghdr* header = CMSG_FIRSTHDR(&message);
        header != nullptr && header->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&event.channel_fd, CMSG_DATA(header), sizeof(int));
    }
    return event;
}

void ForkServer::terminate_workers() noexcept {
    std::lock_guard lock(fd_mutex_);
    if (control_fd_ >= 0) {
        ::shutdown(control_fd_, SHUT_WR);
    }
}

void ForkServer::shut_down() noexcept {
    {
        std::lock_guard lock(fd_mutex_);
        if (control_fd_ >= 0) {
            close(control_fd_);
            control_fd_ = -1;
        }
    }
    if (pid_ > 0) {
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        MPROC_TRACE_EVENT("fork server %d reaped", static_cast<int>(pid_));
        pid_ = -1;
    }
}

} // namespace mproc::detail
