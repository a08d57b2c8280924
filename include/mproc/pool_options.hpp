// SPDX-License-Identifier: MIT
#pragma once
/// @file pool_options.hpp
/// How a pool is built: Python's `Pool(processes, initializer, initargs, maxtasksperchild)`.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "mproc/initializer.hpp"

namespace mproc {

/// How a process pool starts its workers (Python's start methods / contexts). Ignored by
/// `ThreadPool`.
enum class StartMethod {
    /// Workers are copies of the caller as it was when the pool was created (they come from a
    /// fork server forked then, so a worker started later never inherits a lock held by another
    /// thread of the caller). No set-up needed. The default on Linux, as in Python.
    fork,
    /// Like fork, but the fork server is a fresh run of the program (re-executed), so workers
    /// inherit nothing of the caller's state. Needs `mproc::serve_if_worker` at the top of main.
    forkserver,
    /// Every worker is a fresh run of the program (re-executed). Needs `mproc::serve_if_worker`
    /// at the top of main.
    spawn,
};

/// The most workers a pool takes. Each worker is a thread or a process of its own, so a count
/// beyond this is a mistake (a size or an unsigned value gone negative, passed as a count)
/// rather than a pool any machine could run: refused (std::invalid_argument), not attempted.
inline constexpr std::size_t max_workers = std::size_t{1} << 16;

/// Construction parameters shared by every pool class.
///
/// Example:
/// @code
///   mproc::ThreadPool pool({.workers = 4,
///                           .initializer = [] { open_thread_local_cache(); },
///                           .max_tasks_per_child = 1000});
/// @endcode
struct PoolOptions {
    /// Number of workers; empty means `mproc::cpu_count()`. Must be positive and at most
    /// `mproc::max_workers`.
    std::optional<std::ptrdiff_t> workers = {};
    /// Runs once in each worker before it takes work, and again in each replacement worker
    /// (Python's `initializer` with its `initargs` bound into the callable; for the spawn and
    /// forkserver start methods it must be one they can send, see initializer.hpp). If it
    /// throws, every task that worker takes ends with that exception instead of running, so a
    /// broken initializer shows up in the results rather than as a hang (Python respawns for
    /// ever).
    Initializer initializer = {};
    /// A worker is retired and replaced after running this many tasks (a task is one chunk, as in
    /// Python); empty means never. Must be positive.
    std::optional<std::ptrdiff_t> max_tasks_per_child = {};
    /// Process pools only: how workers are started.
    StartMethod start_method = StartMethod::fork;
    /// Process pools only (ThreadPool throws std::invalid_argument: a thread cannot be killed):
    /// a hard limit on each task's run time (a task is one chunk). A task still running when it
    /// passes has its worker killed and ends with `mproc::TaskTimeout`; a replacement worker
    /// starts. Empty means no limit; `mproc::with_timeout` sets one for a single call.
    std::optional<std::chrono::nanoseconds> task_timeout = {};
    /// Process pools only: a task whose worker died (mproc::WorkerLost) is run again, on a new
    /// worker, up to this many times before its WorkerLost is reported. A retried chunk runs
    /// whole again. Timeouts are not retried. Must not be negative.
    std::ptrdiff_t max_retries = 0;
    /// Process pools only (ThreadPool throws std::invalid_argument): the address-space limit
    /// of each worker process, in bytes (RLIMIT_AS, set before the worker takes its first task;
    /// it counts what the worker inherited from the caller too). A task that exceeds it fails
    /// with std::bad_alloc carried back, or with mproc::WorkerLost if the worker died of it.
    /// Empty means no limit. Incompatible with AddressSanitizer and ThreadSanitizer, which
    /// reserve terabytes of address space.
    std::optional<std::size_t> worker_memory_limit = {};
    /// ThreadPool only: while a blocking call (`apply`, `map`, `map_into`, `starmap`) waits for
    /// its result, the calling thread takes chunks of that call that no worker has started yet
    /// and runs them itself, as OpenMP's master thread and TBB's caller do. A fork-join over a
    /// few tiny items then needs no other thread to wake up. Off by default because a task may
    /// then run on the calling thread, which is no worker: there `this_worker::id()` returns the
    /// caller's own id (0 unless the caller is itself a pool worker). Results, their order,
    /// exceptions and callbacks are exactly as without it (callbacks may then run on the calling
    /// thread, as they may run on any worker). The `*_async` calls and `imap` do not help: their
    /// result may outlive the pool. Refused (std::invalid_argument) by process and MPI pools (the
    /// task would run without a worker's isolation) and together with an `initializer` or
    /// `max_tasks_per_child` (the calling thread never ran the initializer and has no task count).
    bool caller_runs_chunks = false;
    /// MpiPool only (ThreadPool and Pool throw std::invalid_argument): each worker rank runs the
    /// tasks itself, in its own process, instead of handing them to a worker process of its
    /// own. A trivially short task then costs little more than its MPI messages; but a task that
    /// crashes (a fatal signal, std::terminate, exit) ends its rank and with it the whole MPI
    /// job, where it would cost one mproc::WorkerLost otherwise. One worker per worker rank at
    /// most (`workers` beyond MpiPool::worker_ranks() is refused); `max_tasks_per_child` is
    /// refused (a rank cannot be retired); the initializer runs once on each rank, in the rank,
    /// as the pool opens, and what it (or a task) leaves behind stays in the rank after the pool
    /// ends; `AsyncResult::cancel` succeeds only before any chunk of the call left for a rank,
    /// as on a ThreadPool; after `terminate()`, a task already running on a rank runs to its
    /// end (its result dropped) and `join()` waits for it. See docs/mpi.md.
    bool in_rank = false;
    /// Record a timeline of every chunk and worker (`pool.timeline()`, timeline.hpp): off by
    /// default, and free when off. Setting the environment variable MPROC_TIMELINE to a file
    /// path turns it on for every pool of a program that does not change its code; each pool
    /// then writes its timeline there as it joins (".svg": a picture, else Chrome trace JSON;
    /// a program's second pool writes "<stem>-2<ext>", and so on).
    bool timeline = false;
    /// The most timeline events kept, shared out over the workers (about 100 bytes each, taken
    /// as they come); when a worker's share is full, its oldest events are dropped (counted in
    /// `Timeline::dropped`). Must be positive.
    std::size_t timeline_events = 200'000;
};

/// Number of CPUs this process may run on (its affinity mask, so it honours `taskset` and
/// container CPU sets), at least 1. The default number of workers.
std::size_t cpu_count() noexcept;

namespace detail {
/// Options after validation: the form backends receive.
struct ValidatedOptions {
    std::size_t workers;
    Initializer initializer = {};
    std::size_t max_tasks_per_child; // 0 means never retire
    StartMethod start_method;
    std::chrono::nanoseconds task_timeout{0}; // 0 means none
    std::size_t max_retries = 0;
    std::size_t worker_memory_limit = 0; // 0 means none
    bool caller_runs_chunks = false;
    bool in_rank = false;
    std::size_t timeline_events = 0; // 0 means no timeline
    std::string timeline_file = {};  // MPROC_TIMELINE's, for this pool; empty means none
};

/// What a pool's workers can do beyond running tasks, for the options that need it.
struct WorkerAbilities {
    const char* pool;         // the pool's name, for the refusal: "mproc::ThreadPool"
    const char* why;          // why it cannot do the rest: "a thread cannot be killed"
    bool kill_running_task;   // task_timeout
    bool retry_lost_task;     // max_retries (a pool whose workers are never lost has none)
    bool limit_worker_memory; // worker_memory_limit
};

/// Throws std::invalid_argument, naming the option, if `options` asks for what the pool's
/// workers cannot do: refused, never silently ignored.
void refuse_unsupported_options(const ValidatedOptions& options, const WorkerAbilities& abilities);

/// Checks `options` and fills in defaults; throws std::invalid_argument naming the parameter.
ValidatedOptions validate(PoolOptions options);
} // namespace detail

} // namespace mproc
