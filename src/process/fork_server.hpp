#pragma once
// The fork server: a single-threaded process, made when a process pool starts, from which every
// worker of that pool is forked. Forking workers from the caller later, once it runs other
// threads, could hand a worker a lock that another thread held at that instant, locked for
// ever; the server has only one thread, so its children are always safe.
//
// The server also parents the workers: it reaps them and reports their exit status, and when the
// caller dies (its end of the control socket closes) it kills them and exits.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <mutex>

#include "mproc/pool_options.hpp"

namespace mproc::detail {

/// Where a process pool's workers come from, and who reports their exits.
class WorkerLauncher {
  public:
    /// What a launcher reports.
    struct Event {
        /// exited_unseen: it exited, and the kernel reaped it (the caller ignores SIGCHLD, and
        /// the worker is its own child): how it ended is not known and never will be.
        enum class Kind : std::uint32_t {
            spawned = 1,
            exited = 2,
            spawn_failed = 3,
            exited_unseen = 4
        };
        Kind kind;
        std::int32_t status; // exited: wait status; spawn_failed: errno
        std::uint64_t worker_id;
        std::int64_t pid;
        int channel_fd = -1; // spawned: the caller's end of the worker's channel (close-on-exec)
        std::int32_t unused = 0; // no padding: every byte sent over the socket is defined
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
};

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
    void kill_worker(pid_t pid) override;
    /// Shuts the control socket for writing: the server sees its end at once, kills its workers,
    /// reaps them and exits (no exit is reported after it), so the teardown does not wait for
    /// the caller to notice the workers' ends first.
    void terminate_workers() noexcept override;
    Event read_event() override;
    int fd() const noexcept override { return control_fd_; }
    /// Closes the control socket (the server then kills what is left of its workers, reaps them
    /// and exits) and reaps the server.
    void shut_down() noexcept override;

  private:
    pid_t pid_ = -1;
    int control_fd_ = -1; // written by shut_down() only, under fd_mutex_
    // terminate_workers() may run on another thread than shut_down(): it must never shut a
    // descriptor that shut_down() closed (its number may belong to something else by then).
    std::mutex fd_mutex_;
};

/// Makes the calling process a fork server on `control_fd`; never returns.
[[noreturn]] void serve_forks(int control_fd, const std::function<void()>& initializer);

/// Closes every file descriptor of this process except 0, 1, 2 and `keep` (-1 for none).
void close_inherited_fds(int keep) noexcept;

} // namespace mproc::detail
