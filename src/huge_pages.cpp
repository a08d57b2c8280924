// SPDX-License-Identifier: MIT
#include "mproc/detail/huge_pages.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace mproc::detail {

void advise_huge_pages(void* data, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
    constexpr std::uintptr_t huge_page = std::uintptr_t{2} << 20;
    if (bytes < huge_page_advice_threshold) {
        return;
    }
    const auto begin = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t first = (begin + huge_page - 1) & ~(huge_page - 1);
    const std::uintptr_t last = (begin + bytes) & ~(huge_page - 1);
    if (first < last) {
        // Fails harmlessly (EINVAL) where THP is compiled out; the pages are then ordinary.
        madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
    }
#else
    (void)data;
    (void)bytes;
#endif
}

} // namespace mproc::detail
