// SPDX-License-Identifier: MIT
#include "mproc/detail/trace.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mproc::detail {

bool trace_enabled() noexcept {
    static const bool enabled = [] {
        const char* value = std::getenv("MPROC_TRACE");
        return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
    }();
    return enabled;
}

void trace_line(const char* format, ...) noexcept {
    // One write() per line so that lines from concurrent workers do not interleave.
    char line[512];
    int used = std::snprintf(line, sizeof(line), "[mproc %d %ld] ", static_cast<int>(getpid()),
                             static_cast<long>(syscall(SYS_gettid)));
    va_list args;
    va_start(args, format);
    used += std::vsnprintf(line + used, sizeof(line) - static_cast<std::size_t>(used) - 1, format,
                           args);
    va_end(args);
    if (used > static_cast<int>(sizeof(line)) - 2) {
        used = static_cast<int>(sizeof(line)) - 2;
    }
    line[used++] = '\n';
    [[maybe_unused]] const ssize_t written =
        ::write(STDERR_FILENO, line, static_cast<std::size_t>(used));
}

} // namespace mproc::detail
