// SPDX-License-Identifier: MIT
#include "mproc/pool_options.hpp"

#include <sched.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "mproc/detail/recorder.hpp"
#include "mproc/errors.hpp"

namespace mproc {

std::size_t cpu_count() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) {
            return static_cast<std::size_t>(n);
        }
    }
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? n : 1;
}

namespace detail {

ValidatedOptions validate(PoolOptions options) {
    if (options.workers && *options.workers <= 0) {
        throw_invalid_argument("workers", "must be positive", *options.workers);
    }
    if (options.workers && static_cast<std::size_t>(*options.workers) > max_workers) {
        throw_invalid_argument("workers", "must be at most " + std::to_string(max_workers),
                               *options.workers);
    }
    if (options.max_tasks_per_child && *options.max_tasks_per_child <= 0) {
        throw_invalid_argument("max_tasks_per_child", "must be positive",
                               *options.max_tasks_per_child);
    }
    if (options.task_timeout && options.task_timeout->count() <= 0) {
        throw_invalid_argument("task_timeout", "must be positive (in nanoseconds)",
                               static_cast<long long>(options.task_timeout->count()));
    }
    if (options.max_retries < 0) {
        throw_invalid_argument("max_retries", "must not be negative", options.max_retries);
    }
    if (options.worker_memory_limit && *options.worker_memory_limit == 0) {
        throw_invalid_argument("worker_memory_limit", "must be positive", 0);
    }
    if (options.caller_runs_chunks && options.initializer) {
        throw std::invalid_argument(
            "mproc: caller_runs_chunks cannot be combined with an initializer: a task run by the "
            "calling thread would run where the initializer never ran");
    }
    if (options.caller_runs_chunks && options.max_tasks_per_child) {
        throw std::invalid_argument(
            "mproc: caller_runs_chunks cannot be combined with max_tasks_per_child: the calling "
            "thread is no worker, it has no task count and cannot be retired");
    }
    if (options.in_rank && options.max_tasks_per_child) {
        throw std::invalid_argument(
            "mproc: in_rank cannot be combined with max_tasks_per_child: the tasks run in the "
            "MPI rank's own process, which cannot be retired and replaced");
    }
    if (options.timeline_events == 0) {
        throw_invalid_argument("timeline_events", "must be positive", 0);
    }
    std::string timeline_file = next_timeline_path_from_environment().string();
    const bool timeline = options.timeline || !timeline_file.empty();
    return ValidatedOptions{
        .workers = options.workers ? static_cast<std::size_t>(*options.workers) : cpu_count(),
        .initializer = std::move(options.initializer),
        .max_tasks_per_child = options.max_tasks_per_child
                                   ? static_cast<std::size_t>(*options.max_tasks_per_child)
                                   : 0,
        .start_method = options.start_method,
        .task_timeout = options.task_timeout.value_or(std::chrono::nanoseconds{0}),
        .max_retries = static_cast<std::size_t>(options.max_retries),
        .worker_memory_limit = options.worker_memory_limit.value_or(0),
        .caller_runs_chunks = options.caller_runs_chunks,
        .in_rank = options.in_rank,
        .timeline_events = timeline ? options.timeline_events : 0,
        .timeline_file = std::move(timeline_file),
    };
}

void refuse_unsupported_options(const ValidatedOptions& options, const WorkerAbilities& abilities) {
    auto refuse = [&](const char* option) {
        // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on operator+ chains at -O3.
        std::string message = "mproc: ";
        message += option;
        message += " needs a process pool (mproc::Pool); ";
        message += abilities.pool;
        message += " does not support it: ";
        message += abilities.why;
        throw std::invalid_argument(message);
    };
    if (options.task_timeout.count() != 0 && !abilities.kill_running_task) {
        refuse("task_timeout");
    }
    if (options.max_retries != 0 && !abilities.retry_lost_task) {
        refuse("max_retries");
    }
    if (options.worker_memory_limit != 0 && !abilities.limit_worker_memory) {
        refuse("worker_memory_limit");
    }
}

} // namespace detail
} // namespace mproc
