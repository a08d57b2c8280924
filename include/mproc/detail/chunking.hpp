// SPDX-License-Identifier: MIT
#pragma once
// Chunk sizes: Python's rule and the argument check.

#include <cstddef>

#include "mproc/detail/size_math.hpp"
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

/// The most input bytes a chunk of the auto chunksize carries to a worker process: well within
/// a channel's socket buffer (4 MiB), so that sending a chunk never waits for its worker to
/// read, and small enough that the pool's one I/O thread turns to the next worker's answer
/// soon. Python's rule alone made chunks of 126 items for a map of 1,000 vectors of a megabyte:
/// 126 MiB frames, each worker idle while the other one's crossed, at half the throughput of
/// chunks of one item. A chunk's fixed cost (about 10 us) is 1% of a megabyte's crossing.
inline constexpr std::size_t max_auto_chunk_bytes = std::size_t{1} << 20;

/// Caps an auto `chunksize` so that a chunk of `items` carries about max_auto_chunk_bytes at
/// most, by the sizes `size_of(item)` tells (0: not known, no cap); judged from a few items
/// spread over the input (random access), so it costs nothing next to the map itself.
template <class Items, class SizeOf>
std::size_t byte_capped_chunksize(std::size_t chunksize, const Items& items, SizeOf size_of) {
    constexpr std::size_t samples = 8;
    const std::size_t n = items.size();
    const std::size_t taken = n < samples ? n : samples;
    std::size_t bytes = 0;
    for (std::size_t k = 0; k < taken; ++k) {
        // k * n / taken, without the product (which overflows for a huge lazy range).
        const std::size_t item_bytes = size_of(items[k * (n / taken) + k * (n % taken) / taken]);
        if (item_bytes == 0) {
            return chunksize;
        }
        bytes += item_bytes;
    }
    const std::size_t average = taken == 0 ? 0 : bytes / taken;
    if (average == 0) {
        return chunksize;
    }
    return smaller(chunksize, larger(max_auto_chunk_bytes / average, 1));
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
