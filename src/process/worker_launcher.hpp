// SPDX-License-Identifier: MIT
#pragma once
// What a process pool asks of whoever starts its workers: the fork server (fork_server.hpp) or
// the spawn launcher (spawn.hpp). The I/O thread talks to it through events it polls.

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace mproc::detail {

/// Where a process pool's workers come from, and who reports their exits.
class WorkerLauncher {
  public:
    /// What a launcher reports.
    struct Event {
        /// exited_unseen: it exited, and the kernel reaped it (the caller ignores SIGCHLD, and
        /// the worker is its own child): how it ended is not known and never will be.
        /// standby_ready: the launcher's own business (ForkServer), nothing for the pool.
        enum class Kind : std::uint32_t {
            spawned = 1,
            exited = 2,
            spawn_failed = 3,
            exited_unseen = 4,
            standby_ready = 5
        };
        Kind kind;
        std::int32_t status; // exited: wait status; spawn_failed: errno
        std::uint64_t worker_id;
        std::int64_t pid;
        int channel_fd = -1; // spawned: the caller's end of the worker's channel (close-on-exec)
        // Between the server and ForkServer only: the process's pidfd (spawned, standby_ready).
        int pidfd = -1;
    };
    static_assert(sizeof(Event) == 32);

    virtual ~WorkerLauncher() = default;
    /// Asks for one more worker; the answer comes later as a `spawned` or `spawn_failed` event.
    /// Worker id 0 asks instead to kill every worker now (see terminate_workers).
    virtual void request_worker(std::uint64_t worker_id) = 0;
    /// terminate(): kills every worker now; no worker is asked for after it. Callable from any
    /// thread (the pool's terminate() calls it at once, before its I/O thread wakes up).
    virtual void terminate_workers() noexcept {
        try {
            request_worker(0);
        } catch (...) {
            // The launcher is gone, and its workers with it.
        }
    }
    /// Reads one event (blocks). Throws std::system_error if the launcher is gone.
    virtual Event read_event() = 0;
    /// Readable when an event is waiting.
    virtual int fd() const noexcept = 0;
    /// Kills one worker now (SIGKILL), if it is still one of ours: a task past its time limit,
    /// or a worker that sent garbage. Its exit is reported as usual.
    virtual void kill_worker(pid_t pid) = 0;
    /// A worker's channel closed: make sure its exit gets reported (and the process reaped).
    virtual void channel_closed(pid_t /*pid*/) noexcept {}
    /// Kills what is left of the workers and reaps everything. Idempotent.
    virtual void shut_down() noexcept = 0;

    /// How a lost server ended: its pid, and its wait status where it could be had.
    struct LostServer {
        pid_t pid;
        std::optional<int> status;
    };
    /// The launcher's process is gone (read_event or request_worker threw), and every worker it
    /// had with it. Puts a new one in its place and says how the lost one ended; nothing when
    /// no new one can be had. Requests sent to the lost one are not answered: ask again.
    virtual std::optional<LostServer> replace_lost_server() noexcept { return std::nullopt; }
};

} // namespace mproc::detail
