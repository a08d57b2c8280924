#pragma once
// A worker's last words: on a fatal signal it can catch, the worker sends a crash report
// (crash_report.hpp) on its channel, then dies of the same signal, so the caller sees both the
// report and the real cause of death.

namespace mproc::detail {

/// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT (abort, std::terminate),
/// SIGTRAP and SIGSYS, on an alternate stack (a stack overflow is a crash too). Everything the
/// handler needs that is not async-signal-safe to get is got here: the table of loaded modules
/// (a module loaded later shows as a raw address), the unwinder (loaded by a first backtrace()).
void install_crash_handler(int channel_fd) noexcept;

} // namespace mproc::detail
