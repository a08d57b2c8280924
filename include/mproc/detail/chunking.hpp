#pragma once
// Chunk sizes: Python's rule and the argument check.

#include <cstddef>

#include "mproc/errors.hpp"

namespace mproc::detail {

/// Python's Pool._map_async rule: about four chunks per worker, rounded up; 0 for no items.
constexpr std::size_t auto_chunksize(std::size_t items, std::size_t workers) noexcept {
    if (items == 0) {
        return 0;
    }
    const std::size_t per_round = workers * 4;
    return items / per_round + (items % per_round != 0 ? 1 : 0);
}

/// A chunksize the caller chose: must be positive.
inline std::size_t checked_chunksize(std::ptrdiff_t chunksize) {
    if (chunksize <= 0) {
        throw_invalid_argument("chunksize", "must be positive", chunksize);
    }
    return static_cast<std::size_t>(chunksize);
}

/// An imap buffersize the caller chose: at least one chunk must be able to be in flight.
inline std::size_t checked_buffersize(std::ptrdiff_t buffersize) {
    if (buffersize <= 0) {
        throw_invalid_argument("buffersize", "must be positive", buffersize);
    }
    return static_cast<std::size_t>(buffersize);
}

} // namespace mproc::detail
