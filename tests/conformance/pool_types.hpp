// SPDX-License-Identifier: MIT
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

/// mproc::ThreadPool whose blocking calls let the calling thread run chunks no worker has started
/// (PoolOptions::caller_runs_chunks): every result must be the one a plain pool gives.
class CallerRunsThreadPool : public mproc::ThreadPool {
  public:
    CallerRunsThreadPool() : CallerRunsThreadPool(mproc::PoolOptions{}) {}
    explicit CallerRunsThreadPool(std::ptrdiff_t workers)
        : CallerRunsThreadPool(mproc::PoolOptions{.workers = workers}) {}
    explicit CallerRunsThreadPool(mproc::PoolOptions options)
        : mproc::ThreadPool(helping(std::move(options))) {}

  private:
    static mproc::PoolOptions helping(mproc::PoolOptions options) {
        options.caller_runs_chunks = true;
        return options;
    }
};

/// False for a pool whose calling thread may run tasks itself: it takes no initializer and no
/// max_tasks_per_child, and a task may see this_worker::id() == 0. The tests of those skip it.
template <class Pool>
inline constexpr bool tasks_run_only_on_workers = true;
template <>
inline constexpr bool tasks_run_only_on_workers<CallerRunsThreadPool> = false;

/// Whether what a task writes into a mproc::SharedArray reaches the caller: false where tasks
/// run on other hosts' terms (MpiPool's ranks get a copy).
template <class Pool>
inline constexpr bool tasks_share_the_callers_memory = true;

/// Whether AsyncResult::cancel stops a task that is running (killing its worker process): not
/// where tasks run on threads.
template <class Pool>
inline constexpr bool cancel_stops_running_tasks = true;
template <>
inline constexpr bool cancel_stops_running_tasks<mproc::ThreadPool> = false;
template <>
inline constexpr bool cancel_stops_running_tasks<CallerRunsThreadPool> = false;

/// Whether tasks run in worker processes, which can be lost and whose chunks cross a process
/// boundary as bytes: not where they run on threads.
template <class Pool>
inline constexpr bool tasks_run_in_worker_processes = true;
template <>
inline constexpr bool tasks_run_in_worker_processes<mproc::ThreadPool> = false;
template <>
inline constexpr bool tasks_run_in_worker_processes<CallerRunsThreadPool> = false;

/// Whether results are delivered by a thread of the pool that runs no task (a process pool's
/// I/O thread, the MPI hub), where callbacks run; not where they run on the worker threads.
template <class Pool>
inline constexpr bool a_thread_delivers_results = true;
template <>
inline constexpr bool a_thread_delivers_results<mproc::ThreadPool> = false;
template <>
inline constexpr bool a_thread_delivers_results<CallerRunsThreadPool> = false;

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
template <>
inline constexpr bool tasks_share_the_callers_memory<mproc::MpiPool> = false;
using PoolTypes = ::testing::Types<mproc::MpiPool>;
#else
using PoolTypes = ::testing::Types<mproc::ThreadPool, CallerRunsThreadPool, mproc::Pool, SpawnPool>;
#endif
