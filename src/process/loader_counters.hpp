// SPDX-License-Identifier: MIT
#pragma once
// The dynamic loader's counters of modules loaded and unloaded (dl_phdr_info's dlpi_adds and
// dlpi_subs): a snapshot of the loaded modules taken with them is current exactly while they
// are unchanged. The module table of code addresses (code_address.cpp) and the crash handler's
// table (crash_handler.cpp) both use them to take a new snapshot only after a dlopen/dlclose,
// and publish their snapshots the same lock-free way (PublishedSnapshot).

#include <link.h>

#include <atomic>
#include <cstddef>
#include <memory>

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

/// The process's current snapshot of the loaded modules, of type `Snapshot` (which has
/// `LoaderCounters counters`, as read with its modules, and `const Snapshot* previous`).
/// Lock-free: a missing or stale snapshot is taken again and published with a compare-exchange,
/// so a process forked while another thread refreshed never finds a lock held in its copy.
/// Every snapshot stays alive once published (another thread may still read it, a forked copy
/// may still use it): each keeps the one it replaced in `previous`, so all stay reachable and
/// leak checkers stay quiet.
template <class Snapshot>
class PublishedSnapshot {
  public:
    /// The current snapshot. `take()` returns a fresh one (a std::unique_ptr<Snapshot>), or
    /// null when it cannot (then the one published before is returned, possibly null); what
    /// it throws propagates.
    template <class Take>
    const Snapshot* current(Take&& take) {
        const LoaderCounters now = current_loader_counters();
        const Snapshot* published = published_.load(std::memory_order_acquire);
        while (published == nullptr || published->counters != now) {
            std::unique_ptr<Snapshot> fresh = take();
            if (fresh == nullptr) {
                return published;
            }
            fresh->previous = published;
            if (published_.compare_exchange_strong(
                    published, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire)) {
                return fresh.release();
            }
            // Another thread published first; `published` now holds its snapshot.
        }
        return published;
    }

  private:
    std::atomic<const Snapshot*> published_{nullptr};
};

} // namespace mproc::detail
