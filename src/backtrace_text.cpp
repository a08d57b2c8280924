// SPDX-License-Identifier: MIT
#include "backtrace_text.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <sstream>

extern char** environ;

namespace mproc::detail {
namespace {

/// Runs `addr2line -C -f -p -e module offsets...`; one output line per offset, or an empty
/// vector if it could not run (not installed, module gone).
std::vector<std::string> addr2line(const std::string& module,
                                   const std::vector<std::uintptr_t>& offsets) {
    std::vector<std::string> arguments{"addr2line", "-C", "-f", "-p", "-e", module};
    for (const std::uintptr_t offset : offsets) {
        char hex[32];
        std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(offset));
        arguments.emplace_back(hex);
    }
    std::vector<char*> argv;
    for (auto& argument : arguments) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        return {};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int failed = posix_spawnp(&pid, "addr2line", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string text;
    if (failed == 0) {
        char buffer[4096];
        ssize_t n;
        while ((n = read(out[0], buffer, sizeof(buffer))) != 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
    }
    close(out[0]);
    int status = 0;
    if (failed != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        return {};
    }
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    if (lines.size() != offsets.size()) {
        return {}; // not one line per address: do not guess which is which
    }
    return lines;
}

} // namespace

std::string backtrace_text(const std::vector<StackFrame>& frames) {
    // Every frame but the innermost holds a return address, which points just past its call:
    // looking up the byte before names the call's own line.
    std::map<std::string, std::vector<std::size_t>> frames_of_module;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (!frames[i].module.empty()) {
            frames_of_module[frames[i].module].push_back(i);
        }
    }
    std::vector<std::string> symbol(frames.size());
    for (const auto& [module, indices] : frames_of_module) {
        std::vector<std::uintptr_t> offsets;
        for (const std::size_t i : indices) {
            offsets.push_back(i == 0 ? frames[i].offset : frames[i].offset - 1);
        }
        const std::vector<std::string> lines = addr2line(module, offsets);
        for (std::size_t k = 0; k < lines.size(); ++k) {
            if (lines[k].rfind("??", 0) != 0) { // "?? ??:0": addr2line knows nothing
                symbol[indices[k]] = lines[k];
            }
        }
    }
    std::string text;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        char location[64];
        std::snprintf(location, sizeof(location), "+0x%llx",
                      static_cast<unsigned long long>(frames[i].offset));
        // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on chains of
        // operator+ over temporary strings (GCC bug 105329).
        std::string where = frames[i].module.empty() ? std::string("?") : frames[i].module;
        where += location;
        text += '#';
        text += std::to_string(i);
        text += ' ';
        if (symbol[i].empty()) {
            text += where;
        } else {
            text += symbol[i];
            text += " (";
            text += where;
            text += ')';
        }
        text += '\n';
    }
    return text;
}

} // namespace mproc::detail
