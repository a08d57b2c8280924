// SPDX-License-Identifier: MIT
#pragma once
// The fork server: a single-threaded process, made when a process pool starts, from which every
// worker of that pool is forked. Forking workers from the caller later, once it runs other
// threads, could hand a worker a lock that another thread held at that instant, locked for
// ever; the server has only one thread, so its children are always safe.
//
// The server also parents the workers: it reaps them and reports their exit status, and when the
// caller dies (its end of the control socket closes) it kills them and exits.
//
// A pool must outlive its server. The server ignores the signals a terminal or a supervisor
// sends to a whole process group (Ctrl-C in a program that handles it must not cost the pool),
// and it keeps a standby: an idle copy of itself, forked once it has served for a moment
// (standby_delay, so that a short-lived pool pays nothing for it), that the caller promotes
// when the server dies anyway (SIGKILL, the OOM killer). Forking a new server from the caller
// instead is not sound: the caller has other threads by then, and a `fork` pool's workers must
// be copies of the caller as it was when the pool started. The caller also holds a pidfd of
// every worker and of the server, so that it kills overdue workers, terminates and shuts down
// by itself, never waiting on a server that is stopped or gone.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "mproc/pool_options.hpp"
#include "process/worker_launcher.hpp"

namespace mproc::detail {

/// How long shut_down and replace_lost_server wait for a server to end by itself.
inline constexpr std::chrono::milliseconds server_exit_grace{2000};

class ForkServer final : public WorkerLauncher {
  public:
    /// Starts the server now: forked from this process (`fork`: it and its workers are copies
    /// of the caller as it is at this moment) or as a fresh run of the program (`forkserver`).
    /// Throws std::system_error on failure.
    ForkServer(StartMethod method, const Initializer& initializer);
    /// Shuts the server down (its workers are killed if still alive) and reaps it.
    ~ForkServer() override;

    ForkServer(const ForkServer&) = delete;
    ForkServer& operator=(const ForkServer&) = delete;

    void request_worker(std::uint64_t worker_id) override;
    /// Through the worker's pidfd, from this process: a stopped server cannot delay it.
    void kill_worker(pid_t pid) override;
    /// Kills every worker through its pidfd and shuts the control socket for writing: the server
    /// sees its end at once, kills the workers it was still starting, reaps them and exits (no
    /// exit is reported after it).
    void terminate_workers() noexcept override;
    Event read_event() override;
    int fd() const noexcept override { return control_fd_; }
    /// Closes the control socket (the server then kills what is left of its workers, reaps them
    /// and exits) and waits for the server, for a bounded time: a server that is stopped, or
    /// that does not end within server_exit_grace, is killed.
    void shut_down() noexcept override;
    /// Promotes the standby, if there is one.
    std::optional<LostServer> replace_lost_server() noexcept override;

  private:
    /// A process of ours: the server, or its standby.
    struct Helper {
        pid_t pid = -1;
        int pidfd = -1;     // -1 where the kernel has no pidfds
        int socket = -1;    // its control socket (the standby's: its future one)
        bool child = false; // a child of this process (the first server), reaped here
    };
    static void close_helper(Helper& helper) noexcept;
    /// Kills every worker through its pidfd and forgets them. Caller holds mutex_.
    void kill_workers_locked() noexcept;

    Helper server_;
    // The server's control socket, for the I/O thread to poll without the mutex: changed under
    // mutex_, by the I/O thread (replace_lost_server) or once no other thread uses it.
    int control_fd_ = -1;

    // terminate_workers() may run on another thread than the I/O thread: it must never use a
    // descriptor that is being closed (its number may belong to something else by then).
    std::mutex mutex_; // guards what follows, and server_'s descriptors
    Helper standby_;
    std::unordered_map<pid_t, int> worker_pidfds_; // live workers, -1 where there is no pidfd
};

/// Makes the calling process a fork server on `control_fd`; never returns.
[[noreturn]] void serve_forks(int control_fd, const std::function<void()>& initializer);

/// Closes every file descriptor of this process except 0, 1, 2 and `keep` (-1 for none).
void close_inherited_fds(int keep) noexcept;

} // namespace mproc::detail
