// SPDX-License-Identifier: MIT
#pragma once
// Debug trace of pool and worker lifecycles: set MPROC_TRACE=1 to have every step (start,
// retire, close, terminate, join) logged on stderr. Hangs are the hardest bugs in this field;
// the trace shows which step never happened.

namespace mproc::detail {

/// True when MPROC_TRACE is set to something other than "" or "0" (read once).
bool trace_enabled() noexcept;

/// printf-style line on stderr, prefixed with "[mproc pid tid]"; use through MPROC_TRACE_EVENT.
void trace_line(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

} // namespace mproc::detail

// A macro so that the arguments are not evaluated when tracing is off.
#define MPROC_TRACE_EVENT(...)                                                                     \
    do {                                                                                           \
        if (::mproc::detail::trace_enabled()) {                                                    \
            ::mproc::detail::trace_line(__VA_ARGS__);                                              \
        }                                                                                          \
    } while (false)
