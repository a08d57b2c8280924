// SPDX-License-Identifier: MIT
#pragma once
// Starting a process pool (process_backend.cpp): its launcher, the first events and hellos of
// its first workers, and the limits a worker gets before its first task.

#include <sys/types.h>

#include <cstddef>
#include <memory>

#include "fork_server.hpp"
#include "mproc/pool_options.hpp"
#include "worker_state.hpp"

namespace mproc::detail {

/// The launcher of the pool's workers: a fork server, or a spawner (StartMethod::spawn).
std::unique_ptr<WorkerLauncher> make_launcher(const ValidatedOptions& options);

/// The launcher's next event while the first workers start: a re-executed server that never
/// served (forkserver) is refused with what the program lacks.
WorkerLauncher::Event read_first_event(WorkerLauncher& launcher, StartMethod start_method);

/// A re-executed worker proves it runs the worker loop by saying hello; one that runs the
/// program's own main instead never will (Error, with what the program lacks).
void await_hello(WorkerProcess& worker);

/// Limits the worker's address space to `bytes`, no higher than the hard limit it inherited
/// (raising that takes a privilege, and a limit above it would allow no more than it already
/// does). 0, or the errno of the refusal.
int limit_address_space(pid_t pid, std::size_t bytes) noexcept;

} // namespace mproc::detail
