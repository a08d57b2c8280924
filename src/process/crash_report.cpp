// SPDX-License-Identifier: MIT
#include "crash_report.hpp"

#include <csignal>
#include <string>

namespace mproc::detail {

CrashReport read_crash_report(WireReader& in) {
    CrashReport report;
    report.signal = in.read<std::int32_t>();
    if (report.signal <= 0 || report.signal >= NSIG) {
        throw WireError("mproc: crash report names no signal");
    }
    report.item = in.read<std::uint64_t>();
    const auto count = in.read<std::uint32_t>();
    if (count > max_crash_frames) {
        throw WireError("mproc: crash report with too many frames");
    }
    report.frames.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        StackFrame frame;
        frame.offset = static_cast<std::uintptr_t>(in.read<std::uint64_t>());
        const auto length = in.read<std::uint32_t>();
        if (length > max_module_path) {
            throw WireError("mproc: crash report with an overlong module path");
        }
        const std::byte* path = in.take(length);
        frame.module.assign(reinterpret_cast<const char*>(path), length);
        report.frames.push_back(std::move(frame));
    }
    return report;
}

} // namespace mproc::detail
