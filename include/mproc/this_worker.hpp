// SPDX-License-Identifier: MIT
#pragma once
/// @file this_worker.hpp
/// What a task can ask about the worker running it.

#include <cstdint>

namespace mproc::this_worker {

/// A number that identifies the worker running the calling task: unique for every worker started
/// in this program (a replacement worker gets a new one), and 0 outside any pool worker.
/// Useful to see `max_tasks_per_child` at work or to index per-worker state.
///
/// A task that the calling thread ran itself (`PoolOptions::caller_runs_chunks`) sees that
/// thread's own value: 0, unless the caller is itself a worker of some pool (then that worker's
/// id). The calling thread is no worker and does not become one.
///
/// Example:
/// @code
///   auto ids = pool.map([](int) { return mproc::this_worker::id(); }, inputs);
/// @endcode
std::uint64_t id() noexcept;

} // namespace mproc::this_worker

namespace mproc::detail {
/// A fresh worker id, unique in this program (process pools allocate it in the caller and hand
/// it to the worker process).
std::uint64_t next_worker_id() noexcept;
/// Makes `id` the calling thread's worker id; called once by each worker as it starts.
void become_worker(std::uint64_t id) noexcept;
/// Makes next_worker_id() count on from `base`: an MPI rank gives its workers ids of their own
/// (rank << 40 onwards), so ids stay unique across the whole job.
void start_worker_ids_at(std::uint64_t base) noexcept;
} // namespace mproc::detail
