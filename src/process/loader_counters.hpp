#pragma once
// The dynamic loader's counters of modules loaded and unloaded (dl_phdr_info's dlpi_adds and
// dlpi_subs): a snapshot of the loaded modules taken with them is current exactly while they
// are unchanged. The module table of code addresses (code_address.cpp) and the crash handler's
// table (crash_handler.cpp) both use them to take a new snapshot only after a dlopen/dlclose.

#include <link.h>

#include <cstddef>

namespace mproc::detail {

struct LoaderCounters {
    unsigned long long loads = 0;
    unsigned long long unloads = 0;

    friend bool operator==(const LoaderCounters&, const LoaderCounters&) = default;
};

/// Whether dl_iterate_phdr's `info` (of `info_size` bytes) carries the counters (glibc has
/// filled them since 2.4).
bool has_loader_counters(std::size_t info_size) noexcept;

/// The counters as dl_iterate_phdr reports them with `info`, under the loader's lock: read
/// together with a walk over the modules, they describe exactly that walk's snapshot. Zero
/// when this loader does not fill them.
LoaderCounters loader_counters_of(const dl_phdr_info& info, std::size_t info_size) noexcept;

/// The loader's counters now (one dl_iterate_phdr step, stopped at the first module). Not for
/// a signal handler: it takes the loader's lock.
LoaderCounters current_loader_counters() noexcept;

} // namespace mproc::detail
