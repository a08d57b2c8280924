// SPDX-License-Identifier: MIT
#include "process/spawn.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include "portable_initializer.hpp"
#include "process/channel.hpp"
#include "process/process_handle.hpp"
#include "process/rerun.hpp"

namespace mproc::detail {

SpawnLauncher::SpawnLauncher(Initializer initializer)
    : initializer_(std::move(initializer)), events_ready_(eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE)) {
    if (events_ready_ < 0) {
        throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    try {
        require_portable(initializer_); // here, so the pool's constructor throws it
    } catch (...) {
        ::close(events_ready_);
        throw;
    }
    spawner_ = std::thread(&SpawnLauncher::run_spawner, this);
}

SpawnLauncher::~SpawnLauncher() {
    shut_down();
    for (const Event& event : events_) {
        if (event.channel_fd >= 0) {
            ::close(event.channel_fd);
        }
    }
    ::close(events_ready_);
}

void SpawnLauncher::report(const Event& event) {
    {
        std::lock_guard lock(mutex_);
        events_.push_back(event);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(events_ready_, &one, sizeof(one));
}

void SpawnLauncher::request_worker(std::uint64_t worker_id) {
    {
        std::lock_guard lock(mutex_);
        requests_.push_back(worker_id);
    }
    requested_.notify_one();
}

void SpawnLauncher::run_spawner() {
    for (;;) {
        std::uint64_t worker_id;
        {
            std::unique_lock lock(mutex_);
            requested_.wait(lock, [&] { return stopping_ || !requests_.empty(); });
            if (stopping_) {
                return;
            }
            worker_id = requests_.front();
            requests_.pop_front();
            if (worker_id == 0) {
                for (const LiveWorker& worker : live_) {
                    kill_process(worker.pid, worker.pidfd);
                }
                continue;
            }
        }
        spawn_worker(worker_id);
    }
}

void SpawnLauncher::spawn_worker(std::uint64_t worker_id) {
    int channel[2];
    if (open_channel(channel) != 0) {
        report({Event::Kind::spawn_failed, errno, worker_id, 0, -1});
        return;
    }
    try {
        const pid_t pid = spawn_this_program(
            channel[1], "worker " + std::to_string(getpid()) + " " + std::to_string(worker_id),
            initializer_);
        ::close(channel[1]);
        {
            std::lock_guard lock(mutex_);
            // Right after posix_spawn: only a child that already exited, was reaped by the
            // kernel (the caller ignores SIGCHLD) and whose pid went to another process in
            // those microseconds could be missed.
            live_.push_back({pid, open_pidfd(pid)});
        }
        report({Event::Kind::spawned, 0, worker_id, pid, channel[0]});
    } catch (const std::system_error& error) {
        ::close(channel[0]);
        ::close(channel[1]);
        report({Event::Kind::spawn_failed, error.code().value(), worker_id, 0, -1});
    }
}

WorkerLauncher::Event SpawnLauncher::read_event() {
    std::uint64_t count;
    while (::read(events_ready_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mutex_);
    Event event = events_.front();
    events_.pop_front();
    return event;
}

std::vector<SpawnLauncher::LiveWorker>::iterator SpawnLauncher::find_live(pid_t pid) {
    return std::find_if(live_.begin(), live_.end(),
                        [&](const LiveWorker& live) { return live.pid == pid; });
}

void SpawnLauncher::kill_worker(pid_t pid) {
    std::lock_guard lock(mutex_);
    const auto worker = find_live(pid);
    if (worker != live_.end()) {
        kill_process(worker->pid, worker->pidfd);
    }
}

void SpawnLauncher::channel_closed(pid_t pid) noexcept {
    int pidfd = -1;
    {
        std::lock_guard lock(mutex_);
        const auto worker = find_live(pid);
        if (worker == live_.end()) {
            return;
        }
        pidfd = worker->pidfd;
        live_.erase(worker);
    }
    // A worker closes its channel as it exits: give it a moment, then make sure.
    int status = 0;
    bool reaped = false;
    for (int attempt = 0; attempt < 100 && !reaped; ++attempt) {
        const pid_t ended = waitpid(pid, &status, WNOHANG);
        if (ended == pid) {
            report({Event::Kind::exited, status, 0, pid, -1});
            reaped = true;
        } else if (ended < 0 && errno == ECHILD) {
            report({Event::Kind::exited_unseen, 0, 0, pid, -1}); // the kernel reaped it
            reaped = true;
        } else {
            usleep(1000);
        }
    }
    if (!reaped) {
        kill_process(pid, pidfd);
        pid_t ended;
        while ((ended = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        if (ended == pid) {
            report({Event::Kind::exited, status, 0, pid, -1});
        }
    }
    if (pidfd >= 0) {
        ::close(pidfd);
    }
}

void SpawnLauncher::shut_down() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    requested_.notify_one();
    if (spawner_.joinable()) {
        spawner_.join();
    }
    std::vector<LiveWorker> left;
    {
        std::lock_guard lock(mutex_);
        left.swap(live_);
    }
    for (const LiveWorker& worker : left) {
        kill_process(worker.pid, worker.pidfd);
    }
    for (const LiveWorker& worker : left) {
        // With SIGCHLD ignored this still waits for the end, then fails with ECHILD.
        while (waitpid(worker.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        if (worker.pidfd >= 0) {
            ::close(worker.pidfd);
        }
    }
}

} // namespace mproc::detail
