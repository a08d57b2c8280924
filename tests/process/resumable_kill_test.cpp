// SPDX-License-Identifier: MIT
// A resumable map survives SIGKILL of the program running it: the program (resumable_caller)
// is killed, with its whole process group, half-way through a map; run again with the same
// journal it prints the right result and computes only the items the first run did not
// journal, each once. On a Pool, and on an MpiPool under mpirun (where the whole job is
// killed: mpirun, its ranks and their worker processes).

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process_table.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;

constexpr int items = 400;
constexpr std::uintmax_t header_bytes = 32;
constexpr std::uintmax_t record_bytes = 24 + 8 + 8; // head, a long long, checksum

/// The command that runs the caller: the program, or mpirun and its arguments before it.
using Launcher = std::vector<std::string>;

/// Starts `launcher` + journal, log, item count in a process group of its own, its output into
/// `out`.
pid_t start_caller(const Launcher& launcher, const std::string& journal, const std::string& log,
                   const std::string& out) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    std::vector<std::string> words = launcher;
    words.insert(words.end(), {journal, log, std::to_string(items)});
    std::vector<char*> argv;
    for (std::string& word : words) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return pid;
}

std::multiset<int> logged_items(const std::string& log) {
    std::multiset<int> logged;
    std::ifstream in(log);
    for (int x; in >> x;) {
        logged.insert(x);
    }
    return logged;
}

void kill_and_rerun(const Launcher& launcher) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mproc-resumable-kill-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string journal = dir / "map.journal", first_log = dir / "first.log",
                      second_log = dir / "second.log", out = dir / "out.txt";

    const pid_t first = start_caller(launcher, journal, first_log, out);
    ASSERT_GT(first, 0);
    // Half-way: wait until about half the items are journaled (records reach the file every
    // 100 ms), then kill the program and its workers, as a node failure or `kill -9` would.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    const auto journaled_bytes = [&journal] {
        std::error_code missing; // not created yet
        const std::uintmax_t size = std::filesystem::file_size(journal, missing);
        return missing ? 0 : size;
    };
    while (journaled_bytes() < header_bytes + items / 2 * record_bytes &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    // Every process of the run: mpirun puts its ranks in process groups of their own, so the
    // group alone is not the job. Stopped first, so that none forks while the tree is read.
    std::vector<long> tree;
    for (int round = 0; round < 3; ++round) {
        tree = process_table::descendant_processes(first);
        tree.push_back(first);
        for (const long pid : tree) {
            kill(static_cast<pid_t>(pid), SIGSTOP);
        }
    }
    for (const long pid : tree) {
        kill(static_cast<pid_t>(pid), SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(waitpid(first, &status, 0), first);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the first run finished before it was killed";
    ASSERT_TRUE(process_table::wait_until_gone(tree, 10s)) << "a process of the first run lives";
    const std::multiset<int> before = logged_items(first_log);
    std::fprintf(stderr, "journal %ju bytes, %zu logged\n",
                 static_cast<std::uintmax_t>(std::filesystem::file_size(journal)), before.size());
    ASSERT_LT(before.size(), static_cast<std::size_t>(items));

    const pid_t second = start_caller(launcher, journal, second_log, out);
    ASSERT_GT(second, 0);
    ASSERT_EQ(waitpid(second, &status, 0), second);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    std::ifstream result(out);
    std::string resumed_word, computed_word, sum_word;
    std::size_t resumed = 0, computed = 0;
    long long sum = 0;
    result >> resumed_word >> resumed >> computed_word >> computed >> sum_word >> sum;
    long long expected = 0;
    for (long long x = 0; x < items; ++x) {
        expected += x * x;
    }
    EXPECT_EQ(sum, expected) << resumed_word << " " << computed_word;
    EXPECT_GE(resumed, static_cast<std::size_t>(items / 2));
    EXPECT_EQ(resumed + computed, static_cast<std::size_t>(items));

    // The second run computed exactly the items the journal lacked, each once, and every item
    // it read back had been computed by the first.
    const std::multiset<int> after = logged_items(second_log);
    EXPECT_EQ(after.size(), computed);
    EXPECT_EQ(std::set<int>(after.begin(), after.end()).size(), after.size());
    std::set<int> every(before.begin(), before.end());
    every.insert(after.begin(), after.end());
    EXPECT_EQ(every.size(), static_cast<std::size_t>(items));
    EXPECT_LE(resumed, std::set<int>(before.begin(), before.end()).size());
    std::filesystem::remove_all(dir);
}

TEST(ResumableKill, ARerunAfterSigkillComputesOnlyWhatTheJournalLacks) {
    kill_and_rerun({MPROC_RESUMABLE_CALLER_PATH});
}

#ifdef MPROC_RESUMABLE_CALLER_MPI_PATH
TEST(ResumableKill, ARerunOfAnMpiJobAfterSigkillComputesOnlyWhatTheJournalLacks) {
    // One machine, shared memory only: as the other MPI tests (CMakeLists.txt).
    ::setenv("OMPI_MCA_btl", "self,vader", 1);
    ::setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    // Open MPI keeps allocations of its own until exit: LeakSanitizer is told (ASan builds).
    ::setenv("LSAN_OPTIONS", MPROC_MPI_LSAN_OPTIONS, 1);
    kill_and_rerun({MPROC_MPIEXEC, "--oversubscribe", "--allow-run-as-root", "-n", "3",
                    MPROC_RESUMABLE_CALLER_MPI_PATH});
}
#endif

} // namespace
