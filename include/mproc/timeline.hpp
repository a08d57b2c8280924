// SPDX-License-Identifier: MIT
#pragma once
/// @file timeline.hpp
/// What a pool did, seen from its caller: per-worker statistics (always kept) and, when asked
/// for, a timeline of every chunk and worker (Dask's task stream, Ray's `ray timeline`).
///
/// @code
///   mproc::Pool pool({.workers = 10, .timeline = true});
///   pool.map(work, tasks, 4);
///   for (const mproc::WorkerStats& w : pool.stats().workers) {
///       std::printf("%s busy %.0f%%\n", w.where.c_str(), 100 * w.busy_share());
///   }
///   mproc::write_timeline(pool.timeline(), "run.svg");  // or "run.json": Perfetto
/// @endcode
///
/// Times are those the caller sees. On a `ThreadPool` a chunk starts and ends where its worker
/// runs it. On a `Pool` or an `MpiPool` a chunk starts when it is sent to its worker process,
/// or when that worker answered the chunk before it (a worker runs the chunks sent ahead one
/// after the other), whichever is later, and ends when its answer arrives: its bar includes
/// sending the arguments and the result.
///
/// A chunk is counted (chunks, tasks, how it ended) by the time its call's result is ready. Its
/// time and its timeline event come with it on `Pool` and `MpiPool`; on `ThreadPool` the worker
/// adds them just after it delivered the result: read a pool that has joined to see them all.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mproc {

/// How a chunk ended.
enum class ChunkEnd : std::uint8_t {
    finished,  ///< ran; its items' results (values or exceptions) are in
    failed,    ///< ended with one error for the whole chunk, not item by item: its worker's
               ///< initializer had failed, or (process pools) its request could not be run
    lost,      ///< its worker process died while it ran
    timed_out, ///< passed its time limit (its worker was killed)
    cancelled, ///< did not run (cancelled, the pool terminated, its stream left, ...)
};

/// One record of a timeline.
struct TimelineEvent {
    /// What an event records.
    enum class Kind : std::uint8_t {
        chunk,          ///< a chunk ran (or was ended) on the lane's worker
        worker_started, ///< a worker started on the lane (at `start_ns`)
        worker_retired, ///< the lane's worker retired after max_tasks_per_child tasks
        worker_lost,    ///< the lane's worker was lost (died, killed for a time limit or a
                        ///< cancel); a replacement takes the lane
    };
    Kind kind = Kind::chunk;           ///< what happened
    ChunkEnd end = ChunkEnd::finished; ///< chunks only
    std::uint32_t lane = 0;            ///< index into Timeline::lanes
    long pid = 0;                      ///< the worker's process id (the caller's for threads)
    std::uint64_t call = 0;            ///< which call the chunk belongs to (numbered per process)
    std::uint64_t first = 0;           ///< index of the chunk's first item in its call
    std::uint64_t count = 0;           ///< items in the chunk
    std::int64_t submitted_ns = 0;     ///< when the chunk was submitted, since the pool started
    std::int64_t start_ns = 0;         ///< when it started (an instant event: when it happened)
    std::int64_t end_ns = 0;           ///< when it ended
    std::uint64_t bytes_in = 0;        ///< its request, where it crossed to a worker process
    std::uint64_t bytes_out = 0;       ///< its answer, where it crossed back
};

/// A pool's timeline: one lane per worker slot (a replacement worker takes its predecessor's).
struct Timeline {
    std::string pool;                  ///< "mproc::ThreadPool", "mproc::Pool", "mproc::MpiPool"
    std::vector<std::string> lanes;    ///< each lane's name: "worker 3", "MPI rank 2 (host n1) ..."
    std::vector<TimelineEvent> events; ///< in the order they ended
    /// Events left out because a lane's ring was full: the oldest go first, so a timeline always
    /// ends with what happened last.
    std::uint64_t dropped = 0;
};

/// What one worker slot did so far (a replacement worker adds to its predecessor's figures).
struct WorkerStats {
    std::string where;                ///< "worker 3", "MPI rank 2 (host n1) worker 1", ...
    long pid = 0;                     ///< its current process (the caller's for threads)
    std::uint64_t tasks = 0;          ///< items of the chunks it ran
    std::uint64_t chunks = 0;         ///< chunks it ran (or that ended on it)
    std::chrono::nanoseconds busy{0}; ///< time with a chunk
    std::chrono::nanoseconds idle{0}; ///< time alive without one
    std::uint64_t bytes_in = 0;       ///< requests sent to it (process and MPI pools)
    std::uint64_t bytes_out = 0;      ///< answers it sent back
    std::uint64_t failed = 0;         ///< chunks that ended as ChunkEnd::failed
    std::uint64_t lost = 0;           ///< ... as ChunkEnd::lost
    std::uint64_t timed_out = 0;      ///< ... as ChunkEnd::timed_out
    std::uint64_t cancelled = 0;      ///< ... as ChunkEnd::cancelled (on this worker)
    std::uint64_t retired = 0;        ///< replacements after max_tasks_per_child
    std::uint64_t replaced = 0;       ///< replacements after a loss (crash, time limit, cancel)

    /// busy / (busy + idle): the share of its life it worked, 0 when it has not lived yet.
    double busy_share() const noexcept {
        const auto alive = busy + idle;
        return alive.count() == 0
                   ? 0.0
                   : static_cast<double>(busy.count()) / static_cast<double>(alive.count());
    }
};

/// What a pool did so far: `pool.stats()`.
struct PoolStats {
    /// One per worker slot (on a ThreadPool with caller_runs_chunks, one more for the calling
    /// threads), in order.
    std::vector<WorkerStats> workers;
    /// Chunks submitted and not yet taken by a worker, now.
    std::size_t queue_depth = 0;
    /// The most there ever were.
    std::size_t max_queue_depth = 0;
    /// Chunks submitted since the pool started.
    std::uint64_t chunks_submitted = 0;
};

/// Writes `timeline` in Chrome's trace event format (JSON: opens in https://ui.perfetto.dev and
/// chrome://tracing): one thread lane per worker, a complete event ("X") per chunk named after
/// its call, instant events for worker starts and losses. Throws std::system_error when the
/// file cannot be written.
void write_chrome_trace(const Timeline& timeline, const std::filesystem::path& path);

/// Draws `timeline` as an SVG picture: one lane per worker, chunks as bars coloured by call
/// (failed, lost, timed-out and cancelled chunks outlined in red and marked), worker starts and
/// losses as ticks, a time axis. Throws std::system_error when the file cannot be written.
void write_timeline_svg(const Timeline& timeline, const std::filesystem::path& path);

/// write_timeline_svg for a path ending in ".svg", write_chrome_trace for any other.
void write_timeline(const Timeline& timeline, const std::filesystem::path& path);

} // namespace mproc
