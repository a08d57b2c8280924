// SPDX-License-Identifier: MIT
#pragma once
// The `spawn` start method's launcher: every worker a fresh run of the program (rerun.hpp).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "mproc/initializer.hpp"
#include "process/worker_launcher.hpp"

namespace mproc::detail {

/// The `spawn` start method: every worker is a fresh run of the program, a direct child of the
/// caller, reaped here when its channel closes.
///
/// Workers are started by a thread of the launcher's own that lives as long as the pool: a
/// worker's PR_SET_PDEATHSIG fires when the *thread* that started it ends, so starting them
/// from the thread that happened to construct the pool would kill them if that thread ended
/// first.
class SpawnLauncher final : public WorkerLauncher {
  public:
    explicit SpawnLauncher(Initializer initializer);
    ~SpawnLauncher() override;

    void request_worker(std::uint64_t worker_id) override;
    void kill_worker(pid_t pid) override;
    Event read_event() override;
    int fd() const noexcept override { return events_ready_; }
    void channel_closed(pid_t pid) noexcept override;
    void shut_down() noexcept override;

  private:
    /// A started worker not yet reaped here. Signals go through its pidfd: a program that
    /// ignores SIGCHLD has its children reaped by the kernel as they exit, so a bare pid could
    /// name a stranger by the time it is signalled; a pidfd names only that process.
    struct LiveWorker {
        pid_t pid;
        int pidfd; // -1 where the kernel has no pidfds (before Linux 5.3): signalled by pid
    };

    void run_spawner();
    void spawn_worker(std::uint64_t worker_id);
    void report(const Event& event);
    /// The entry of live_ for `pid`, or live_.end(). Caller holds mutex_.
    std::vector<LiveWorker>::iterator find_live(pid_t pid);

    const Initializer initializer_;
    const int events_ready_; // eventfd in semaphore mode: one count per queued event

    std::mutex mutex_; // guards everything below
    std::condition_variable requested_;
    std::deque<std::uint64_t> requests_; // worker ids to start; 0 = kill every worker
    bool stopping_ = false;
    std::deque<Event> events_;
    std::vector<LiveWorker> live_;
    std::thread spawner_;
};

} // namespace mproc::detail
