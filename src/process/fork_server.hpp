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

namespace mproc::detail {

class ForkServer {
  public:
    /// What the server reports.
    struct Event {
        enum class Kind : std::uint32_t { spawned = 1, exited = 2, spawn_failed = 3 };
        Kind kind;
        std::int32_t status; // exited: wait status; spawn_failed: errno
        std::uint64_t worker_id;
        std::int64_t pid;
        int channel_fd = -1; // spawned: the caller's end of the worker's channel (close-on-exec)
    };

    /// Forks the server from this process now (fork start method): it and its workers are
    /// copies of the caller as it is at this moment. Throws std::system_error on failure.
    explicit ForkServer(const std::function<void()>& initializer);
    /// Shuts the server down (its workers are killed if still alive) and reaps it.
    ~ForkServer();

    ForkServer(const ForkServer&) = delete;
    ForkServer& operator=(const ForkServer&) = delete;

    /// Asks for one more worker; the answer comes later as a `spawned` or `spawn_failed` event.
    /// Worker id 0 asks instead to kill every worker now (terminate).
    void request_worker(std::uint64_t worker_id);
    /// Reads one event (blocks). Throws std::system_error if the server is gone.
    Event read_event();
    /// The control socket, to poll for events.
    int fd() const noexcept { return control_fd_; }
    pid_t pid() const noexcept { return pid_; }
    /// Closes the control socket (the server then kills what is left of its workers, reaps them
    /// and exits) and reaps the server. Idempotent.
    void shut_down() noexcept;

  private:
    pid_t pid_ = -1;
    int control_fd_ = -1;
};

/// Closes every file descriptor of this process except 0, 1, 2 and `keep` (-1 for none).
void close_inherited_fds(int keep) noexcept;

} // namespace mproc::detail
