// SPDX-License-Identifier: MIT
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

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <system_error>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "crash_handler.hpp"
#include "mproc/detail/trace.hpp"
#include "process/rerun.hpp"
#include "process_handle.hpp"
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

/// Sends one event, with its descriptors attached (the channel's, then the pidfd), then closes
/// them here.
void send_event(int control_fd, const WorkerLauncher::Event& event) noexcept {
    iovec part{const_cast<WorkerLauncher::Event*>(&event), sizeof(event)};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    DescriptorControl control;
    const int fds[2] = {event.channel_fd, event.pidfd};
    if (event.channel_fd >= 0) {
        attach_descriptors(message, control, fds, event.pidfd >= 0 ? 2 : 1);
    }
    while (::sendmsg(control_fd, &message, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
    for (const int fd : fds) {
        if (fd >= 0) {
            close(fd);
        }
    }
}

/// A pool's first server makes its standby only once it has served this long: a short-lived pool
/// (a fork-join of a few tasks) never pays for a process it would not use, and a server lost in
/// its first moments is rare (SIGKILL or the OOM killer; the group signals are ignored).
constexpr std::chrono::milliseconds standby_delay{50};

/// The signals a terminal (Ctrl-C, Ctrl-\, Ctrl-Z, a hang-up) or a supervisor (SIGTERM to a
/// whole control group) sends to every process of a group at once. A caller may survive them
/// (it handles them, to end cleanly), and its pool must survive with it: the server ignores
/// them. It needs no signal to end: it ends when the caller's end of its socket closes.
constexpr int group_signals[] = {SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};

/// What the caller had for them: every worker gets it back, as a copy of the caller would.
struct CallerDispositions {
    struct sigaction actions[std::size(group_signals)];

    static CallerDispositions ignore_group_signals() noexcept {
        CallerDispositions saved{};
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        for (std::size_t i = 0; i < std::size(group_signals); ++i) {
            sigaction(group_signals[i], &ignore, &saved.actions[i]);
        }
        return saved;
    }
    void restore() const noexcept {
        for (std::size_t i = 0; i < std::size(group_signals); ++i) {
            sigaction(group_signals[i], &actions[i], nullptr);
        }
    }
};

/// In the new worker, right after fork: cut every tie to the server but the channel.
[[noreturn]] void become_worker_process(int channel_fd, pid_t server_pid, std::uint64_t worker_id,
                                        const std::function<void()>& initializer,
                                        const CallerDispositions& dispositions) {
    dispositions.restore();
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

/// One fork server: the loop of the process, and the state it keeps.
class Server {
  public:
    /// `standby_delay`: how long to serve before the standby is made.
    Server(int control_fd, const std::function<void()>& initializer,
           const CallerDispositions& dispositions, std::chrono::milliseconds standby_delay)
        : control_fd_(control_fd), initializer_(initializer), dispositions_(dispositions),
          standby_due_(std::chrono::steady_clock::now() + standby_delay) {
        // A caller may ignore SIGCHLD (SIG_IGN, or SA_NOCLDWAIT: daemons do, so that no child
        // of theirs lingers as a zombie), and this copy inherits it: the kernel would then reap
        // the workers itself, their wait statuses (how they died) would be lost, and a pid
        // listed in `children_` could be reused by a stranger before we kill it. The server's
        // signals are its own: back to the default, under which every worker waits to be
        // reaped here.
        struct sigaction default_action {};
        default_action.sa_handler = SIG_DFL;
        sigemptyset(&default_action.sa_mask);
        sigaction(SIGCHLD, &default_action, nullptr);
        sigset_t child_signals;
        sigemptyset(&child_signals);
        sigaddset(&child_signals, SIGCHLD);
        sigprocmask(SIG_BLOCK, &child_signals, nullptr);
        child_events_ = signalfd(-1, &child_signals, SFD_CLOEXEC);
    }

    [[noreturn]] void run() {
        for (;;) {
            int timeout_ms = -1;
            if (standby_ < 0) {
                const auto now = std::chrono::steady_clock::now();
                if (now >= standby_due_) {
                    make_standby();
                } else {
                    timeout_ms = static_cast<int>(
                        std::chrono::ceil<std::chrono::milliseconds>(standby_due_ - now).count());
                }
            }
            pollfd watched[2] = {{control_fd_, POLLIN, 0}, {child_events_, POLLIN, 0}};
            if (poll(watched, 2, timeout_ms) < 0) {
                continue; // EINTR
            }
            if (watched[1].revents != 0) {
                signalfd_siginfo info;
                while (read(child_events_, &info, sizeof(info)) < 0 && errno == EINTR) {
                }
                reap(WNOHANG);
            }
            if (watched[0].revents != 0) {
                serve_request();
            }
        }
    }

  private:
    void serve_request() {
        SpawnRequest request{};
        const ssize_t n = recv(control_fd_, &request, sizeof(request), 0);
        if (n <= 0) {
            shut_down_and_exit();
        }
        if (request.worker_id == 0) {
            // The fallback where the caller has no pidfds: kill one worker (overdue, or
            // untrusted) or, for terminate(), all of them now; they are reaped and reported as
            // usual. Only unreaped children: their pids are ours.
            for (const pid_t child : children_) {
                if (request.kill_pid == 0 || request.kill_pid == child) {
                    kill(child, SIGKILL);
                }
            }
            return;
        }
        int channel[2];
        if (open_channel(channel) != 0) {
            send_event(control_fd_, {WorkerLauncher::Event::Kind::spawn_failed, errno,
                                     request.worker_id, 0, -1});
            return;
        }
        const pid_t pid = fork();
        if (pid == 0) {
            close(channel[0]);
            become_worker_process(channel[1], self_, request.worker_id, initializer_,
                                  dispositions_);
        }
        close(channel[1]);
        if (pid < 0) {
            close(channel[0]);
            send_event(control_fd_, {WorkerLauncher::Event::Kind::spawn_failed, errno,
                                     request.worker_id, 0, -1});
            return;
        }
        children_.push_back(pid);
        // Opened before the child can be reaped (only here), so it names that child alone.
        send_event(control_fd_, {WorkerLauncher::Event::Kind::spawned, 0, request.worker_id, pid,
                                 channel[0], open_pidfd(pid)});
    }

    /// Forks the standby: a copy of this server, idle until the caller promotes it by sending
    /// it a request (the server died) or closes its socket (the pool ended). On failure the
    /// pool has no standby until the next try, a delay later.
    void make_standby() {
        standby_due_ = std::chrono::steady_clock::now() + standby_delay;
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
            return;
        }
        const pid_t pid = fork();
        if (pid == 0) {
            close(pair[0]);
            stand_by(pair[1]);
        }
        close(pair[1]);
        if (pid < 0) {
            close(pair[0]);
            return;
        }
        standby_ = pid;
        send_event(control_fd_, {WorkerLauncher::Event::Kind::standby_ready, 0, 0, pid, pair[0],
                                 open_pidfd(pid)});
    }

    /// The standby's life: no parent-death signal (it must outlive a server that dies), no
    /// descriptor but its socket; a request makes it the server, an end of stream ends it.
    [[noreturn]] void stand_by(int socket) {
        if (socket != 3) {
            dup2(socket, 3);
        }
        close_inherited_fds(3);
        for (;;) {
            char first;
            const ssize_t n = recv(3, &first, 1, MSG_PEEK);
            if (n > 0) {
                break;
            }
            if (n == 0 || errno != EINTR) {
                _exit(0);
            }
        }
        MPROC_TRACE_EVENT("fork server standby %d promoted", static_cast<int>(getpid()));
        // Its own standby at once: this pool has lost a server already.
        Server(3, initializer_, dispositions_, std::chrono::milliseconds(0)).run();
    }

    void reap(int options) {
        for (;;) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, options);
            if (pid <= 0) {
                return;
            }
            if (pid == standby_) {
                standby_ = -1; // killed from outside: a new one is made at once
                standby_due_ = std::chrono::steady_clock::now();
                continue;
            }
            std::erase(children_, pid);
            send_event(control_fd_, {WorkerLauncher::Event::Kind::exited, status, 0, pid, -1});
        }
    }

    /// The caller shut us down (terminate_workers, shut_down) or died: no worker may outlive
    /// it, nor the standby.
    [[noreturn]] void shut_down_and_exit() {
        if (standby_ > 0) {
            children_.push_back(standby_);
        }
        for (const pid_t child : children_) {
            kill(child, SIGKILL);
        }
        while (!children_.empty()) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0 && errno != EINTR) {
                break;
            }
            std::erase(children_, pid);
        }
        _exit(0);
    }

    const int control_fd_;
    const std::function<void()>& initializer_;
    const CallerDispositions& dispositions_;
    int child_events_ = -1;
    const pid_t self_ = getpid();
    std::vector<pid_t> children_; // the workers, not reaped yet
    pid_t standby_ = -1;
    std::chrono::steady_clock::time_point standby_due_;
};

} // namespace

void serve_forks(int control_fd, const std::function<void()>& initializer) {
    // Once here, not in each worker (a no-op when this server was forked from a caller that
    // prepared it already).
    prepare_crash_handler();
    const CallerDispositions dispositions = CallerDispositions::ignore_group_signals();
    Server(control_fd, initializer, dispositions, standby_delay).run();
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
    pid_t pid;
    if (method == StartMethod::forkserver) {
        try {
            pid = spawn_this_program(control[1], "forkserver " + std::to_string(getpid()),
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
        pid = fork();
        if (pid < 0) {
            const int error = errno;
            close(control[0]);
            close(control[1]);
            throw std::system_error(error, std::generic_category(), "fork");
        }
        if (pid == 0) {
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
    server_ = Helper{pid, open_pidfd(pid), control[0], true}; // our child, not reaped yet
    control_fd_ = control[0];
    MPROC_TRACE_EVENT("fork server %d started", static_cast<int>(pid));
}

ForkServer::~ForkServer() { shut_down(); }

void ForkServer::request_worker(std::uint64_t worker_id) {
    send_request(control_fd_, SpawnRequest{worker_id});
}

void ForkServer::kill_worker(pid_t pid) {
    {
        std::lock_guard lock(mutex_);
        const auto worker = worker_pidfds_.find(pid);
        if (worker == worker_pidfds_.end()) {
            return; // its exit was reported: the pid is no longer ours
        }
        if (worker->second >= 0) {
            kill_process(pid, worker->second);
            return;
        }
    }
    send_request(control_fd_, SpawnRequest{0, pid}); // no pidfds: the server kills it
}

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
    int fds[DescriptorControl::max_descriptors] = {-1, -1};
    if (cmsghdr* header = CMSG_FIRSTHDR(&message);
        header != nullptr && header->cmsg_type == SCM_RIGHTS) {
        const std::size_t count = std::min<std::size_t>(
            (header->cmsg_len - CMSG_LEN(0)) / sizeof(int), DescriptorControl::max_descriptors);
        std::memcpy(fds, CMSG_DATA(header), count * sizeof(int));
    }
    event.channel_fd = fds[0];
    event.pidfd = -1; // kept here
    const auto pid = static_cast<pid_t>(event.pid);
    std::lock_guard lock(mutex_);
    switch (event.kind) {
    case Event::Kind::spawned:
        worker_pidfds_[pid] = fds[1];
        break;
    case Event::Kind::exited:
    case Event::Kind::exited_unseen:
        if (const auto worker = worker_pidfds_.find(pid); worker != worker_pidfds_.end()) {
            if (worker->second >= 0) {
                close(worker->second);
            }
            worker_pidfds_.erase(worker);
        }
        break;
    case Event::Kind::standby_ready:
        close_helper(standby_); // one that was killed: this one replaces it
        standby_ = Helper{pid, fds[1], fds[0], false};
        event.channel_fd = -1;
        break;
    case Event::Kind::spawn_failed:
        break;
    }
    return event;
}

void ForkServer::close_helper(Helper& helper) noexcept {
    for (int* fd : {&helper.pidfd, &helper.socket}) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
    }
    helper.pid = -1;
}

void ForkServer::kill_workers_locked() noexcept {
    for (const auto& [pid, pidfd] : worker_pidfds_) {
        if (pidfd >= 0) {
            kill_process(pid, pidfd);
            close(pidfd);
        }
    }
    worker_pidfds_.clear();
}

void ForkServer::terminate_workers() noexcept {
    std::lock_guard lock(mutex_);
    if (control_fd_ >= 0) {
        ::shutdown(control_fd_, SHUT_WR);
    }
    // Their exits may not be reported any more (the server ends): the pidfds go with them.
    kill_workers_locked();
}

std::optional<WorkerLauncher::LostServer> ForkServer::replace_lost_server() noexcept {
    std::lock_guard lock(mutex_);
    LostServer lost{server_.pid, std::nullopt};
    // Its socket closed as it exited: its end comes within moments (a bound all the same).
    if (server_.pidfd >= 0 && !await_exit(server_.pidfd, server_exit_grace)) {
        kill_process(server_.pid, server_.pidfd);
        await_exit(server_.pidfd, server_exit_grace);
    }
    if (server_.child && server_.pidfd >= 0) {
        lost.status = reap_if_child(server_.pidfd);
    }
    MPROC_TRACE_EVENT("fork server %d lost", static_cast<int>(server_.pid));
    // They died with it (their parent-death signal); their exits will never be reported.
    kill_workers_locked();
    close_helper(server_);
    control_fd_ = -1;
    if (standby_.socket < 0) {
        return std::nullopt;
    }
    server_ = std::exchange(standby_, Helper{});
    control_fd_ = server_.socket;
    MPROC_TRACE_EVENT("fork server standby %d takes over", static_cast<int>(server_.pid));
    return lost;
}

void ForkServer::shut_down() noexcept {
    {
        std::lock_guard lock(mutex_);
        kill_workers_locked(); // gone already, unless the pool never started
        close_helper(standby_);
        if (server_.socket >= 0) {
            close(server_.socket);
            server_.socket = -1;
        }
        control_fd_ = -1;
    }
    if (server_.pid <= 0) {
        return;
    }
    if (server_.pidfd < 0) {
        // No pidfds on this kernel: the server is our child, awaited without a bound.
        int status = 0;
        while (server_.child && waitpid(server_.pid, &status, 0) < 0 && errno == EINTR) {
        }
    } else {
        // It ends as soon as it has reaped its workers; a stopped one never would.
        const bool ended =
            await_exit(server_.pidfd, std::chrono::milliseconds(20)) ||
            (!is_stopped(server_.pid) && await_exit(server_.pidfd, server_exit_grace));
        if (!ended) {
            MPROC_TRACE_EVENT("fork server %d did not end: killed", static_cast<int>(server_.pid));
            kill_process(server_.pid, server_.pidfd);
            await_exit(server_.pidfd, server_exit_grace);
        }
        (void)reap_if_child(server_.pidfd); // a server promoted from a standby is not our child
    }
    MPROC_TRACE_EVENT("fork server %d reaped", static_cast<int>(server_.pid));
    close_helper(server_);
}

} // namespace mproc::detail
