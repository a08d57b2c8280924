// SPDX-License-Identifier: MIT
#pragma once
/// @file mpi_pool.hpp
/// `mproc::MpiPool`: the Pool API on the ranks of an MPI job, on one machine or many. Link
/// `mproc::mpi` (built when CMake finds MPI; see docs/mpi.md).

#include <cstddef>
#include <utility>

#include "mproc/address_free.hpp"
#include "mproc/basic_pool.hpp"
#include "mproc/detail/mpi_backend.hpp"
#include "mproc/portable_initializer.hpp"
#include "mproc/shared_array.hpp"

namespace mproc {

/// Runs tasks on the worker ranks of the MPI job the program was started in (`mpirun -n N`):
/// rank 0 runs `main` and owns the pool; ranks 1..N-1 serve it, each running its tasks in
/// supervised worker processes of its own, so a task that crashes costs one `mproc::WorkerLost`
/// and its rank goes on serving. Same API and semantics as `mproc::Pool`, with the same rule for
/// what crosses (transportable callables and values, checked at compile time); every rank must
/// run the same binary (a rank that does not is refused with an error).
///
/// `main` must begin with `mproc::serve_if_worker(argc, argv);`: on the worker ranks it serves
/// pools until rank 0's program ends, then finalizes MPI and exits with status 0. mproc starts
/// and ends MPI itself.
///
/// Workers: by default one worker process per worker rank; `workers = k` spreads k worker
/// processes over the worker ranks round robin. A rank with a free worker takes the next chunk.
///
/// In-rank execution (`PoolOptions::in_rank`, opt-in): each worker rank runs the tasks itself,
/// one at a time, with no worker process: for tasks so short that the hop to a worker process
/// dominates. A task that crashes then ends the whole MPI job (see docs/mpi.md).
///
/// Example:
/// @code
///   int square(int x) { return x * x; }
///   int main(int argc, char** argv) {
///       mproc::serve_if_worker(argc, argv);      // ranks 1..N-1 serve here
///       mproc::MpiPool pool;                     // one worker per worker rank
///       std::vector<int> ys = pool.map(square, std::vector{1, 2, 3});
///   }
///   // mpirun -n 4 ./app
/// @endcode
class MpiPool : public BasicPool<detail::MpiBackend> {
  public:
    /// One worker per worker rank. Throws mproc::Error unless started by mpirun with >= 2 ranks.
    MpiPool() : MpiPool(PoolOptions{}) {}
    /// `workers` worker processes spread over the worker ranks (> 0, else std::invalid_argument).
    explicit MpiPool(std::ptrdiff_t workers) : MpiPool(PoolOptions{.workers = workers}) {}
    /// As described by `options`; its initializer must be transportable (as for the spawn start
    /// method), and `start_method` is ignored (ranks fork their worker processes).
    explicit MpiPool(PoolOptions options) : BasicPool(with_default_workers(std::move(options))) {}

    /// The worker ranks of this MPI job (its size minus rank 0): the default number of workers.
    /// Throws mproc::Error unless started by mpirun with at least 2 ranks.
    static std::size_t worker_ranks() { return detail::mpi_worker_ranks(); }

  private:
    static PoolOptions with_default_workers(PoolOptions options) {
        if (!options.workers) {
            options.workers = static_cast<std::ptrdiff_t>(detail::mpi_worker_ranks());
        }
        return options;
    }
};

} // namespace mproc
