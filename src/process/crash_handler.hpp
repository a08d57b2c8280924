// SPDX-License-Identifier: MIT
#pragma once
// A worker's last words: on a fatal signal it can catch, the worker sends a crash report
// (crash_report.hpp) on its channel, then dies of the same signal, so the caller sees both the
// report and the real cause of death.

namespace mproc::detail {

/// Gets everything the handler needs that is not async-signal-safe to get: the unwinder (started
/// by a first backtrace()) and the table of loaded modules (a module loaded later shows as a
/// raw address). Called in the caller before it forks a fork server, so that every worker forked
/// from there inherits them (a worker's start is on the path of every pool's first task);
/// cheap when nothing changed since the last call (the loader's counters say so). Thread-safe.
void prepare_crash_handler() noexcept;

/// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT (abort, std::terminate),
/// SIGTRAP and SIGSYS, on an alternate stack (a stack overflow is a crash too), after
/// prepare_crash_handler() (which finds the preparation inherited, if it is current).
void install_crash_handler(int channel_fd) noexcept;

} // namespace mproc::detail
