// SPDX-License-Identifier: MIT
#pragma once
// What a test needs to know about processes and descriptors: children, descendants, whether a
// pid still runs, which descriptors are open. Read from /proc, so it sees zombies too.

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace process_table {

/// The fields of /proc/<pid>/stat after "pid (name) ", from the state on; empty if there is no
/// such process (the name may hold spaces and parentheses: the last ')' ends it).
inline std::string stat_fields(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close_paren = line.rfind(')');
    return close_paren == std::string::npos || line.size() < close_paren + 2
               ? std::string()
               : line.substr(close_paren + 2);
}

/// Descriptors open in this process, other than the one used to list them.
inline std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* dir = opendir("/proc/self/fd");
    while (dirent* entry = readdir(dir)) {
        const int fd = std::atoi(entry->d_name);
        if (entry->d_name[0] != '.' && fd != dirfd(dir)) {
            fds.push_back(fd);
        }
    }
    closedir(dir);
    return fds;
}

/// (pid, parent pid) of every process (from /proc/*/stat), zombies included.
inline std::vector<std::pair<long, long>> all_processes() {
    std::vector<std::pair<long, long>> table;
    DIR* proc = opendir("/proc");
    while (dirent* entry = readdir(proc)) {
        const long pid = std::atol(entry->d_name);
        if (pid <= 0) continue;
        const std::string fields = stat_fields(entry->d_name);
        char state = 0;
        long parent = 0;
        if (std::sscanf(fields.c_str(), "%c %ld", &state, &parent) == 2) {
            table.emplace_back(pid, parent);
        }
    }
    closedir(proc);
    return table;
}

/// The threads (tids) of process `pid`.
inline std::vector<long> threads_of(long pid) {
    std::vector<long> tids;
    const std::string path = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* tasks = opendir(path.c_str())) {
        while (const dirent* entry = readdir(tasks)) {
            if (entry->d_name[0] != '.') {
                tids.push_back(std::atol(entry->d_name));
            }
        }
        closedir(tasks);
    }
    return tids;
}

/// Direct children of this process, zombies included.
inline std::vector<long> child_processes() {
    std::vector<long> children;
    for (const auto& [pid, parent] : all_processes()) {
        if (parent == getpid()) children.push_back(pid);
    }
    return children;
}

/// Every process below `root` (children, their children, ...).
inline std::vector<long> descendant_processes(long root = static_cast<long>(getpid())) {
    const auto table = all_processes();
    std::vector<long> found{root};
    for (std::size_t i = 0; i < found.size(); ++i) {
        for (const auto& [pid, parent] : table) {
            if (parent == found[i]) found.push_back(pid);
        }
    }
    found.erase(found.begin());
    return found;
}

/// Whether `pid` is a live process (a zombie has exited: it only waits to be reaped, and an
/// orphan is reaped by whatever adopted it, possibly later).
inline bool process_exists(long pid) {
    const std::string fields = stat_fields(std::to_string(pid));
    return !fields.empty() && fields[0] != 'Z' && fields[0] != 'X';
}

/// The live children of `parent` (zombies left out).
inline std::vector<long> live_children_of(long parent) {
    std::vector<long> children;
    for (const auto& [pid, its_parent] : all_processes()) {
        if (its_parent == parent && process_exists(pid)) children.push_back(pid);
    }
    return children;
}

/// Waits until `parent` has `count` live children and returns them; returns what it has after
/// `limit`. A pool's fork server has one per worker, and its standby once made.
inline std::vector<long> await_live_children(long parent, std::size_t count,
                                             std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        std::vector<long> children = live_children_of(parent);
        if (children.size() >= count || std::chrono::steady_clock::now() > deadline) {
            return children;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

/// CPU time `pid` has used, user and system (clock-tick resolution).
inline std::chrono::milliseconds cpu_time(long pid) {
    std::istringstream fields(stat_fields(std::to_string(pid)));
    std::string field;
    long long ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) { // numbered as in proc(5)
        if (i == 14 || i == 15) {                      // utime, stime
            ticks += std::stoll(field);
        }
    }
    return std::chrono::milliseconds(ticks * 1000 / sysconf(_SC_CLK_TCK));
}

/// Waits until none of `pids` is a live process; false if some still is after `limit`.
inline bool wait_until_gone(const std::vector<long>& pids, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        bool any = false;
        for (const long pid : pids) {
            any = any || process_exists(pid);
        }
        if (!any) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

/// Reaps our child `child` and returns its wait status, or kills and reaps it and returns
/// nothing if it has not ended within `limit` (a hang).
inline std::optional<int> wait_for_child(pid_t child, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    pid_t ended = 0;
    while ((ended = waitpid(child, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (ended == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        return std::nullopt;
    }
    return status;
}

} // namespace process_table
