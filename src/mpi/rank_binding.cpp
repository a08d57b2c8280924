#include "rank_binding.hpp"

#include <sched.h>

#include <cstdlib>

namespace mproc::detail {

std::size_t cpus_of_this_thread() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return 0;
    }
    return static_cast<std::size_t>(CPU_COUNT(&set));
}

bool widen_default_binding(std::size_t worker_processes) noexcept {
    const char* chosen = std::getenv("OMPI_MCA_hwloc_base_binding_policy");
    if (chosen != nullptr && *chosen != '\0') {
        return false;
    }
    const std::size_t bound_to = cpus_of_this_thread();
    if (bound_to == 0 || bound_to >= worker_processes) {
        return false;
    }
    // Every CPU: the kernel keeps those the thread's cpuset (a container's, a batch system's
    // allocation) allows, and refuses only a set that leaves none.
    cpu_set_t every;
    CPU_ZERO(&every);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        CPU_SET(cpu, &every);
    }
    return sched_setaffinity(0, sizeof(every), &every) == 0 && cpus_of_this_thread() > bound_to;
}

} // namespace mproc::detail
