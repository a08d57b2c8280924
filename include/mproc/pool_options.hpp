#pragma once
/// @file pool_options.hpp
/// How a pool is built: Python's `Pool(processes, initializer, initargs, maxtasksperchild)`.

#include <cstddef>
#include <functional>
#include <optional>

namespace mproc {

/// Construction parameters shared by every pool class.
///
/// Example:
/// @code
///   mproc::ThreadPool pool({.workers = 4,
///                           .initializer = [] { open_thread_local_cache(); },
///                           .max_tasks_per_child = 1000});
/// @endcode
struct PoolOptions {
    /// Number of workers; empty means `mproc::cpu_count()`. Must be positive.
    std::optional<std::ptrdiff_t> workers = {};
    /// Runs once in each worker before it takes work, and again in each replacement worker
    /// (Python's `initializer` with its `initargs` bound into the callable). If it throws, every
    /// task that worker takes ends with that exception instead of running, so a broken
    /// initializer shows up in the results rather than as a hang (Python respawns for ever).
    std::function<void()> initializer = {};
    /// A worker is retired and replaced after running this many tasks (a task is one chunk, as in
    /// Python); empty means never. Must be positive.
    std::optional<std::ptrdiff_t> max_tasks_per_child = {};
};

/// Number of CPUs this process may run on (its affinity mask, so it honours `taskset` and
/// container CPU sets), at least 1. The default number of workers.
std::size_t cpu_count() noexcept;

namespace detail {
/// Options after validation: the form backends receive.
struct ValidatedOptions {
    std::size_t workers;
    std::function<void()> initializer = {};
    std::size_t max_tasks_per_child; // 0 means never retire
};

/// Checks `options` and fills in defaults; throws std::invalid_argument naming the parameter.
ValidatedOptions validate(PoolOptions options);
} // namespace detail

} // namespace mproc
