// SPDX-License-Identifier: MIT
#include "rank_binding.hpp"

#include <sched.h>

#include <cstdlib>

#include "mproc/pool_options.hpp"

namespace mproc::detail {

bool widen_default_binding(std::size_t worker_processes) noexcept {
    const char* chosen = std::getenv("OMPI_MCA_hwloc_base_binding_policy");
    if (chosen != nullptr && *chosen != '\0') {
        return false;
    }
    const std::size_t bound_to = cpu_count();
    if (bound_to >= worker_processes) {
        return false;
    }
    // Every CPU: the kernel keeps those the thread's cpuset (a container's, a batch system's
    // allocation) allows, and refuses only a set that leaves none.
    cpu_set_t every;
    CPU_ZERO(&every);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        CPU_SET(cpu, &every);
    }
    return sched_setaffinity(0, sizeof(every), &every) == 0 && cpu_count() > bound_to;
}

} // namespace mproc::detail
