// SPDX-License-Identifier: MIT
#include "process/rerun.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "mproc/serve_if_worker.hpp"
#include "portable_initializer.hpp"
#include "process/fork_server.hpp"
#include "process/worker_process.hpp"
#include "worker_server_hook.hpp"

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

} // namespace mproc::detail

namespace mproc::detail {

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
