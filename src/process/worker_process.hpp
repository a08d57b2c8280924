// SPDX-License-Identifier: MIT
#pragma once
// The loop a worker process runs: the same for every start method, and for the worker processes
// of an MpiPool's ranks (each rank runs a process pool of its own).

#include <cstdint>
#include <functional>

namespace mproc::detail {

/// Serves run requests on `channel_fd` until told to stop or the caller goes away, then exits
/// the process with _exit (the caller's atexit handlers and static destructors are not ours to
/// run). Runs `initializer` first; if it throws, every chunk is answered with its exception.
///
/// Wire contract: send `hello` (program id, pid) once; then for each `run` frame answer exactly
/// one `done` (the entry's per-item outcomes) or `failed` (one exception for the whole chunk);
/// exit on `stop` or end of stream.
[[noreturn]] void run_worker_process(int channel_fd, std::uint64_t worker_id,
                                     const std::function<void()>& initializer) noexcept;

} // namespace mproc::detail
