// SPDX-License-Identifier: MIT
#pragma once
// What a pool did, as its backend tells it: per-worker statistics, always kept (a few relaxed
// atomic additions per chunk, on counters only that lane's thread writes), and the timeline,
// kept only when asked for (PoolOptions::timeline, MPROC_TIMELINE).
//
// A lane is a worker slot: a replacement worker takes its predecessor's lane. Each lane is
// written by one thread at a time in the usual case (its worker thread, or the process pool's
// I/O thread, or the MPI hub), so its counters are uncontended; its ring of events has a lock of
// its own, which only a snapshot (timeline()) contends for.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/timeline.hpp"

namespace mproc::detail {

class Recorder {
  public:
    using Clock = std::chrono::steady_clock;

    /// `lanes` worker slots; the timeline as `options` say (timeline_events, timeline_file).
    Recorder(std::string pool, std::size_t lanes, const ValidatedOptions& options);
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;
    ~Recorder();

    bool timeline_on() const noexcept { return ring_per_lane_ != 0; }
    std::size_t lanes() const noexcept { return lane_count_; }

    /// Nanoseconds since the pool started: the time base of every figure.
    std::int64_t now_ns() const noexcept { return ns_at(Clock::now()); }
    std::int64_t ns_at(Clock::time_point time) const noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(time - born_).count();
    }

    void name_lane(std::size_t lane, std::string name);
    /// Several threads may record on `lane` at once (before any records on it).
    void share_lane(std::size_t lane) noexcept;

    /// Front end: chunks were handed to the backend (stamped with the time when recording).
    void chunks_submitted(ChunkBatch chunks) noexcept;
    /// ... and the backend refused `count` of them (the pool stopped).
    void chunks_refused(std::size_t count) noexcept {
        submitters_.submitted.fetch_sub(count, std::memory_order_relaxed);
    }
    /// Backend, as it queues: how many chunks wait now (for the maximum).
    void queue_depth_seen(std::size_t depth) noexcept;

    /// A worker started on `lane` (a replacement: after the predecessor's worker_ended).
    void worker_started(std::size_t lane, long pid) noexcept;
    /// The lane's worker ended: retired (TimelineEvent::Kind::worker_retired) or lost
    /// (worker_lost); a replacement follows where the pool goes on.
    void worker_ended(std::size_t lane, TimelineEvent::Kind why) noexcept;

    /// A chunk as the timeline tells it, taken before the chunk is settled (settling may free
    /// it with its job).
    struct ChunkFacts {
        std::uint64_t call;
        std::uint64_t first;
        std::uint64_t count;
        std::int64_t submitted_ns;
    };
    static ChunkFacts facts_of(const Chunk& chunk) noexcept {
        return {chunk.job->call_number(), chunk.first, chunk.count, chunk.submitted_ns};
    }

    /// The lane's worker, started earlier, turns out to be process `pid`.
    void worker_identified(std::size_t lane, long pid) noexcept;

    /// The lane's worker ended as the pool ends: its life stops counting, nothing else.
    void worker_stopped(std::size_t lane) noexcept;

    /// What ran on a lane: a chunk, with its span in now_ns() terms.
    struct Span {
        std::int64_t start_ns;
        std::int64_t end_ns;
        std::uint64_t bytes_in = 0;
        std::uint64_t bytes_out = 0;
        /// False for a chunk run while its lane was already running one (a ThreadPool worker
        /// that helps while it waits): its time is inside the outer chunk's busy time.
        bool counts_busy = true;
    };
    /// A chunk ended on `lane`, told before it is settled: by the time its call's result is
    /// ready, stats() counts it.
    void chunk_ended(std::size_t lane, const ChunkFacts& chunk, ChunkEnd end, Span span) noexcept {
        chunk_counted(lane, chunk, end);
        chunk_timed(lane, chunk, end, span);
    }
    /// The same in two steps, for a backend that settles a chunk as it runs it (the thread
    /// backend): counted before it runs, timed (busy time, bytes, the timeline's event) after.
    void chunk_counted(std::size_t lane, const ChunkFacts& chunk, ChunkEnd end) noexcept;
    void chunk_timed(std::size_t lane, const ChunkFacts& chunk, ChunkEnd end, Span span) noexcept;

    PoolStats stats(std::size_t queue_depth_now) const;
    Timeline timeline() const;

    /// Writes the timeline to MPROC_TIMELINE's file, if it named one for this pool, once; a
    /// failure is reported on stderr (this runs as a pool joins, maybe in its destructor).
    void write_file_if_asked() noexcept;

  private:
    struct Lane;
    void append(Lane& lane, const TimelineEvent& event) noexcept;

    const std::string pool_;
    const Clock::time_point born_ = Clock::now();
    const std::size_t lane_count_;
    const std::size_t ring_per_lane_;
    const std::string file_; // MPROC_TIMELINE's
    std::atomic<bool> file_written_{false};
    std::unique_ptr<Lane[]> lanes_;
    // Written by the submitting threads at every submission: on a cache line of their own, or
    // every chunk a worker records would first fetch the line back (born_, lanes_ above).
    struct alignas(64) Submitters {
        std::atomic<std::uint64_t> submitted{0};
        std::atomic<std::size_t> max_queue_depth{0};
    };
    Submitters submitters_;
};

/// The file MPROC_TIMELINE names for the next pool of this process, empty when it is not set:
/// the first pool writes the path as given, later ones "<stem>-2<ext>", "<stem>-3<ext>", ...
std::filesystem::path next_timeline_path_from_environment();

} // namespace mproc::detail
