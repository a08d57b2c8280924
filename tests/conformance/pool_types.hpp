#pragma once
// The pool classes the conformance suite runs against. A new backend proves itself by being
// added here and passing every typed test unchanged; so does a new start method.

#include <gtest/gtest.h>

#include <cstddef>
#include <utility>

#include <mproc/mproc.hpp>

/// mproc::Pool with the spawn start method: every worker is a fresh run of this test program
/// (main.cpp calls mproc::serve_if_worker first), so nothing of the caller's memory is shared.
class SpawnPool : public mproc::Pool {
  public:
    SpawnPool() : SpawnPool(mproc::PoolOptions{}) {}
    explicit SpawnPool(std::ptrdiff_t workers)
        : SpawnPool(mproc::PoolOptions{.workers = workers}) {}
    explicit SpawnPool(mproc::PoolOptions options) : mproc::Pool(spawned(std::move(options))) {}

  private:
    static mproc::PoolOptions spawned(mproc::PoolOptions options) {
        options.start_method = mproc::StartMethod::spawn;
        return options;
    }
};

/// How many workers a pool built without a number has: mproc::cpu_count(), as in Python.
template <class Pool>
std::size_t default_workers() {
    return mproc::cpu_count();
}

#ifdef MPROC_CONFORMANCE_MPI
#include <mproc/mpi_pool.hpp>
/// MpiPool's default is one worker per worker rank: the job's size, not this machine's cores.
template <>
inline std::size_t default_workers<mproc::MpiPool>() {
    return mproc::MpiPool::worker_ranks();
}
// The same suite on the ranks of an MPI job (built as conformance_mpi_tests and run under
// mpirun by ctest; see CMakeLists.txt).
using PoolTypes = ::testing::Types<mproc::MpiPool>;
#else
using PoolTypes = ::testing::Types<mproc::ThreadPool, mproc::Pool, SpawnPool>;
#endif
