// SPDX-License-Identifier: MIT
#pragma once
// How serve_if_worker also serves workers of an optional component (the MPI ranks of
// mproc::MpiPool) without the core library depending on it: the component registers its server
// during static initialisation, and serve_if_worker runs it when the process is no spawned
// worker of a process pool.

namespace mproc::detail {

/// Serves this process as a worker of the component if it is one (and then does not return);
/// returns at once otherwise.
using WorkerServer = void (*)(int& argc, char**& argv);

/// Registers `server` for serve_if_worker to run. Called once, by the component's static
/// initialiser (mproc_mpi does it in the translation unit that defines MpiPool's backend, so it
/// is linked in whenever a program uses MpiPool).
void register_worker_server(WorkerServer server) noexcept;

/// The registered server, or null.
WorkerServer registered_worker_server() noexcept;

} // namespace mproc::detail
