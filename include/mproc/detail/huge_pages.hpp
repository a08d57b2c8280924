// SPDX-License-Identifier: MIT
#pragma once
// Large result buffers cost more in page faults than in the work that fills them (a fresh 80 MB
// vector: about 20,000 faults of 4 KiB). Asking for transparent huge pages cuts that 512-fold
// where the system allows it (THP "madvise" or "always").

#include <cstddef>

namespace mproc::detail {

/// Buffers smaller than this are left alone: they may share huge pages with other allocations.
inline constexpr std::size_t huge_page_advice_threshold = std::size_t{4} << 20;

/// Advises the kernel to back the whole 2 MiB pages inside [data, data + bytes) with huge pages.
/// Call before the memory is first touched. Best effort: does nothing where unsupported.
void advise_huge_pages(void* data, std::size_t bytes) noexcept;

} // namespace mproc::detail
