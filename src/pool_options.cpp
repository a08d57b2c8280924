#include "mproc/pool_options.hpp"

#include <sched.h>

#include <thread>

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
    if (options.max_tasks_per_child && *options.max_tasks_per_child <= 0) {
        throw_invalid_argument("max_tasks_per_child", "must be positive",
                               *options.max_tasks_per_child);
    }
    return ValidatedOptions{
        .workers = options.workers ? static_cast<std::size_t>(*options.workers) : cpu_count(),
        .initializer = std::move(options.initializer),
        .max_tasks_per_child = options.max_tasks_per_child
                                   ? static_cast<std::size_t>(*options.max_tasks_per_child)
                                   : 0,
        .start_method = options.start_method,
    };
}

} // namespace detail
} // namespace mproc
