// SPDX-License-Identifier: MIT
#include "loader_counters.hpp"

namespace mproc::detail {

bool has_loader_counters(std::size_t info_size) noexcept {
    return info_size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(dl_phdr_info::dlpi_subs);
}

LoaderCounters loader_counters_of(const dl_phdr_info& info, std::size_t info_size) noexcept {
    if (!has_loader_counters(info_size)) {
        return {};
    }
    return {info.dlpi_adds, info.dlpi_subs};
}

LoaderCounters current_loader_counters() noexcept {
    LoaderCounters counters;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t size, void* data) {
            *static_cast<LoaderCounters*>(data) = loader_counters_of(*info, size);
            return 1;
        },
        &counters);
    return counters;
}

} // namespace mproc::detail
