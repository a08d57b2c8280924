// SPDX-License-Identifier: MIT
#pragma once
// How many chunks an imap stream keeps in flight or waiting for its consumer (its window).
//
// Every chunk costs a trip to a worker and back; when chunks are short, the trips, not the work,
// set the pace, and only a deep window (many chunks under way, handed over in batches) hides
// them. But the window is also the stream's memory bound and how far the input is read ahead,
// so a stream without an explicit buffersize starts with a few chunks per worker and grows only
// while its results come back fast: short chunks of small items. A user's buffersize is kept
// as given.

#include <chrono>
#include <cstddef>

#include "mproc/detail/size_math.hpp"

namespace mproc {

/// The default `imap` buffersize, per worker, at the start of a stream: chunks in flight or
/// waiting for the consumer.
inline constexpr std::size_t stream_chunks_per_worker = 4;
/// The most a default buffersize grows to, per worker...
inline constexpr std::size_t stream_max_chunks_per_worker = 64;
/// ...and in items (buffersize times chunksize), whatever the chunksize.
inline constexpr std::size_t stream_max_grown_items = 1024;

} // namespace mproc

namespace mproc::detail {

/// ...and in bytes of the stream's per-item storage (its arguments and results) that so many
/// items take at once.
inline constexpr std::size_t stream_max_grown_bytes = std::size_t{256} << 10;
/// A window grows while its chunks' results come back at least this often, on average: then
/// a trip to a worker costs as much as the work itself.
inline constexpr std::chrono::microseconds stream_fast_result_interval{20};

struct StreamWindow {
    std::size_t initial; // chunks, at the start
    std::size_t limit;   // chunks, the most it grows to (== initial: a fixed window)
    // Refills wait for half the window to be free, unless no more than this many chunks are
    // in flight: the pool's worker count, so that no worker waits for the batch to fill.
    std::size_t workers;

    /// The window after `results` chunks came back in `elapsed` with the window at `current`:
    /// doubled (up to the limit) when they came back fast, else unchanged. It never shrinks:
    /// a stream whose chunks slow down keeps the memory it was already allowed.
    std::size_t next(std::size_t current, std::chrono::nanoseconds elapsed,
                     std::size_t results) const noexcept {
        if (results == 0 || elapsed >= stream_fast_result_interval * results) {
            return current;
        }
        return smaller(limit, current * 2);
    }

    static StreamWindow fixed(std::size_t chunks, std::size_t workers) noexcept {
        return {chunks, chunks, workers};
    }

    /// The default window of a pool of `workers` for chunks of `chunksize` items whose
    /// arguments and results take `bytes_per_item` bytes: it starts at a few chunks per worker
    /// and grows to as many whole chunks as the item and byte bounds hold, never less than its
    /// start (so chunks beyond those bounds keep it fixed; what they hold is still only what
    /// was read).
    static StreamWindow growing(std::size_t workers, std::size_t chunksize,
                                std::size_t bytes_per_item) noexcept {
        const std::size_t initial = stream_chunks_per_worker * workers;
        const std::size_t items =
            smaller(stream_max_grown_items, stream_max_grown_bytes / larger(bytes_per_item, 1));
        const std::size_t limit =
            smaller(stream_max_chunks_per_worker * workers, items / chunksize);
        return {initial, larger(initial, limit), workers};
    }
};

} // namespace mproc::detail
