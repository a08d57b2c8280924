// SPDX-License-Identifier: MIT
#pragma once
/// @file serve_if_worker.hpp
/// The one line the `spawn` and `forkserver` start methods need at the top of `main`.

namespace mproc {

/// If this process was started by mproc as a pool worker (or fork server) of a `spawn` or
/// `forkserver` pool, serves the pool and exits without returning; otherwise returns at once
/// and does nothing. Call it first thing in `main`, before anything the workers must not do
/// (Python's `if __name__ == "__main__":` guard, the other way round). Pools with the default
/// `fork` start method do not need it.
///
/// In a program linked with `mproc::mpi` and started by `mpirun`, it also starts MPI: on ranks
/// other than 0 it then serves `mproc::MpiPool` until rank 0's program ends, finalizes MPI and
/// exits with status 0; on rank 0 it returns (MPI is finalized at exit). See docs/mpi.md.
///
/// Example:
/// @code
///   int main(int argc, char** argv) {
///       mproc::serve_if_worker(argc, argv);
///       mproc::Pool pool({.workers = 4, .start_method = mproc::StartMethod::spawn});
///       ...
///   }
/// @endcode
void serve_if_worker(int& argc, char**& argv);

} // namespace mproc
