// SPDX-License-Identifier: MIT
#pragma once
// Signalling and awaiting a process through a pidfd: a handle that names one process for as long
// as it is open, where a bare pid may name a stranger once the process has been reaped. It lets
// the caller kill and await processes that are not its children (the workers of a fork server),
// so that no deadline of the pool depends on a helper process being able to act.

#include <sys/types.h>

#include <chrono>
#include <optional>

namespace mproc::detail {

/// A pidfd for `pid`, or -1 (no pidfds on this kernel, or the process is gone). Sound only
/// where `pid` cannot have been reaped yet: a child of the calling process, not waited for.
int open_pidfd(pid_t pid) noexcept;

/// SIGKILL through `pidfd`, or to `pid` where there is no pidfd (-1). A process that has ended
/// already is left alone.
void kill_process(pid_t pid, int pidfd) noexcept;

/// Waits up to `limit` for the process of `pidfd` to end; true once it has.
bool await_exit(int pidfd, std::chrono::milliseconds limit) noexcept;

/// Whether the process is stopped (SIGSTOP, SIGTSTP, a debugger): it cannot act until SIGCONT.
bool is_stopped(pid_t pid) noexcept;

/// Reaps the process of `pidfd` if it is a child of the calling process and has ended: its wait
/// status, or nothing (not our child, or not ended).
std::optional<int> reap_if_child(int pidfd) noexcept;

} // namespace mproc::detail
