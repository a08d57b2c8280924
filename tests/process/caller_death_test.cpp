// SPDX-License-Identifier: MIT
// When the program using a process pool dies (SIGKILL, or SIGINT with its default action, as
// Ctrl-C in a terminal), no worker or fork server outlives it by more than a second. The caller
// is a real separate program (pool_caller), started here.

#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process_table.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;

struct Caller {
    pid_t pid = -1;
    std::vector<long> pool_pids; // its fork server, the standby and the workers
};

/// Starts pool_caller in a process group of its own and waits until its map is running.
Caller start_caller() {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0); // a group of its own, like a shell job
    char path[] = MPROC_POOL_CALLER_PATH;
    char* argv[] = {path, nullptr};
    Caller caller;
    EXPECT_EQ(posix_spawn(&caller.pid, path, &actions, &attributes, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(out[1]);
    FILE* lines = fdopen(out[0], "r");
    char line[4096];
    while (std::fgets(line, sizeof(line), lines) != nullptr) {
        const std::string text(line);
        if (text.rfind("pids", 0) == 0) {
            std::istringstream pids(text.substr(4));
            for (long pid; pids >> pid;) {
                caller.pool_pids.push_back(pid);
            }
        }
        if (text == "mapping\n") {
            break;
        }
    }
    std::fclose(lines);
    return caller;
}

void expect_nothing_outlives(const Caller& caller, int signal, bool to_group) {
    ASSERT_GT(caller.pid, 0);
    ASSERT_EQ(caller.pool_pids.size(), 4u) << "a fork server, its standby and two workers";
    std::this_thread::sleep_for(50ms); // the map is under way
    ASSERT_EQ(to_group ? killpg(caller.pid, signal) : kill(caller.pid, signal), 0);
    int status = 0;
    ASSERT_EQ(waitpid(caller.pid, &status, 0), caller.pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signal) << "status " << status;
    EXPECT_TRUE(process_table::wait_until_gone(caller.pool_pids, 1s))
        << "a worker or the fork server outlived its caller by more than a second";
}

TEST(CallerDeath, SigkillLeavesNoWorkerBehind) {
    expect_nothing_outlives(start_caller(), SIGKILL, false);
}

TEST(CallerDeath, SigintToTheCallerDuringMapLeavesNoOrphan) {
    expect_nothing_outlives(start_caller(), SIGINT, false);
}

TEST(CallerDeath, SigintToTheWholeJobAsFromATerminalLeavesNoOrphan) {
    expect_nothing_outlives(start_caller(), SIGINT, true);
}

} // namespace
