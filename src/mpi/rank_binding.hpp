// SPDX-License-Identifier: MIT
#pragma once
// Open MPI's default binding, undone where it would starve a rank's worker processes.
//
// mpirun binds each rank to a core (two ranks or fewer) or a socket (more), by default: right
// for programs with one process per rank, wrong for a worker rank of MpiPool, whose worker
// processes inherit the binding. `mpirun -n 2 app` with `MpiPool(16)` would run its 16 worker
// processes on one core. A binding the user chose (`--bind-to ...`, which mpirun passes to the
// ranks as OMPI_MCA_hwloc_base_binding_policy) is kept.

#include <cstddef>

namespace mproc::detail {

/// On a worker rank about to run `worker_processes` worker processes in all: when the user chose
/// no binding and the calling thread is bound to fewer CPUs than that (mproc::cpu_count()), lets it
/// run on every CPU the system allows it, so that the processes it forks from now on (the fork
/// server, and the worker processes it forks) inherit that. Returns whether it widened the binding.
bool widen_default_binding(std::size_t worker_processes) noexcept;

} // namespace mproc::detail
