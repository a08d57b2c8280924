#include "spawn.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <vector>

#include "fork_server.hpp"
#include "mproc/detail/channel.hpp"
#include "mproc/detail/worker_server_hook.hpp"
#include "mproc/serve_if_worker.hpp"
#include "process_handle.hpp"
#include "worker_process.hpp"

extern char** environ;

namespace mproc::detail {
namespace {

constexpr const char* role_variable = "MPROC_SPAWNED";
constexpr const char* initializer_variable = "MPROC_INITIALIZER";

std::string to_hex(const std::vector<std::byte>& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (const std::byte b : bytes) {
        text += digits[std::to_integer<unsigned>(b) >> 4];
        text += digits[std::to_integer<unsigned>(b) & 15];
    }
    return text;
}

std::vector<std::byte> from_hex(const char* text) {
    std::vector<std::byte> bytes;
    for (; text[0] != '\0' && text[1] != '\0'; text += 2) {
        bytes.push_back(static_cast<std::byte>(std::stoi(std::string(text, 2), nullptr, 16)));
    }
    return bytes;
}

/// This program's own argv, as the kernel recorded it.
std::vector<std::string> own_arguments() {
    std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
    std::vector<std::string> arguments;
    std::string argument;
    while (std::getline(cmdline, argument, '\0')) {
        arguments.push_back(argument);
    }
    return arguments;
}

} // namespace

std::function<void()> initializer_from_portable(std::vector<std::byte> portable) {
    if (portable.empty()) {
        return {};
    }
    WireReader in(portable.data(), portable.size());
    const auto address = in.read<CodeAddress>();
    const PortableInitializerEntry entry =
        resolve_function<std::remove_pointer_t<PortableInitializerEntry>>(address);
    if (entry == nullptr) {
        throw Error("mproc: the initializer names code this program does not have");
    }
    return [entry, bytes = std::move(portable)] {
        WireReader reader(bytes.data(), bytes.size());
        reader.read<CodeAddress>();
        entry(reader);
    };
}

void require_portable(const Initializer& initializer) {
    if (initializer && initializer.portable().empty()) {
        throw std::invalid_argument(
            "mproc: initializer cannot be sent to a re-executed worker (spawn/forkserver start "
            "methods): use a function pointer, a lambda without captures, or a serializable "
            "function object");
    }
}

pid_t spawn_this_program(int channel_fd, const std::string& role, const Initializer& initializer) {
    require_portable(initializer);
    std::vector<std::string> environment;
    for (char** variable = environ; *variable != nullptr; ++variable) {
        const std::string entry(*variable);
        if (entry.rfind(role_variable, 0) != 0 && entry.rfind(initializer_variable, 0) != 0) {
            environment.push_back(entry);
        }
    }
    environment.push_back(std::string(role_variable) + "=" + role);
    environment.push_back(std::string(initializer_variable) + "=" + to_hex(initializer.portable()));
    std::vector<std::string> arguments = own_arguments();
    std::vector<char*> argv;
    for (auto& argument : arguments)
        argv.push_back(argument.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& entry : environment)
        envp.push_back(entry.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, channel_fd, 3); // clears close-on-exec on 3
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    pid_t pid = -1;
    const int error =
        posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        throw std::system_error(error, std::generic_category(), "posix_spawn");
    }
    return pid;
}

void refuse_pool_in_unserved_worker() noexcept {
    if (std::getenv(role_variable) != nullptr) {
        std::fputs("mproc: this process was started as a pool worker (spawn/forkserver start "
                   "method) but main() did not call mproc::serve_if_worker(argc, argv) first\n",
                   stderr);
        _exit(70);
    }
}

} // namespace mproc::detail

namespace mproc {

void serve_if_worker(int& argc, char**& argv) {
    using namespace detail;
    const char* role = std::getenv(role_variable);
    if (role == nullptr) {
        // Not a spawned worker of a process pool (checked first: a process pool's spawned
        // worker inherits an MPI rank's environment); maybe an MPI rank of mproc::MpiPool.
        if (const WorkerServer server = registered_worker_server()) {
            server(argc, argv);
        }
        return;
    }
    std::istringstream fields(role);
    std::string kind;
    long parent = 0;
    std::uint64_t worker_id = 0;
    fields >> kind >> parent;
    if (kind == "worker") {
        fields >> worker_id;
    }
    std::function<void()> initializer;
    try {
        const char* portable = std::getenv(initializer_variable);
        initializer = initializer_from_portable(from_hex(portable ? portable : ""));
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        _exit(71);
    }
    unsetenv(role_variable);
    unsetenv(initializer_variable);
    if (kind == "worker") {
        // Die with the caller even while busy. (A fork server needs no such signal: it is never
        // busy, and sees the caller go as the end of its control socket.)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != static_cast<pid_t>(parent)) {
            _exit(1);
        }
        run_worker_process(3, worker_id, initializer);
    }
    if (kind == "forkserver") {
        serve_forks(3, initializer);
    }
    std::fprintf(stderr, "mproc: unknown %s role '%s'\n", role_variable, kind.c_str());
    _exit(72);
}

} // namespace mproc

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
