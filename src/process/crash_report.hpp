// SPDX-License-Identifier: MIT
#pragma once
// The `crashed` frame a worker's fatal-signal handler sends before the worker dies: which signal,
// which item of its chunk was running, the native backtrace (module + offset per frame, so the
// caller can symbolise it whatever the worker's load addresses), and the outcomes of the
// chunk's items that had already finished, so that they are not lost with the worker.
//
// Payload: int32 signal, uint64 item (RunningItem::none if between items), uint32 frame count,
// then per frame uint64 offset, uint32 module path length, the path; the rest of the payload is
// the finished items' outcomes, exactly as a `done` response would hold them.

#include <cstdint>
#include <vector>

#include "mproc/detail/wire/wire.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

inline constexpr std::uint32_t max_crash_frames = 64;
inline constexpr std::uint32_t max_module_path = 1024;

struct CrashReport {
    int signal = 0;
    std::uint64_t item = ~std::uint64_t{0}; // none
    std::vector<StackFrame> frames;
};

/// Reads a crash report's head; `in` is left at the finished outcomes. Throws WireError for
/// anything out of range (a signal number, a frame count, a path length), never trusting it.
CrashReport read_crash_report(WireReader& in);

} // namespace mproc::detail
