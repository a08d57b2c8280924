// SPDX-License-Identifier: MIT
#include "mproc/detail/recorder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

namespace mproc::detail {

// A cache line (or more) of its own: lanes are written by different threads.
struct alignas(64) Recorder::Lane {
    // ---- statistics: written by the lane's thread, read by stats() at any time
    // One thread writes the lane's counters (its worker, the I/O thread, the hub), so an add
    // needs no locked instruction; the callers' lane of a ThreadPool has many (shared_lane).
    bool many_writers = false;
    std::atomic<std::uint64_t> tasks{0};
    std::atomic<std::uint64_t> chunks{0};
    std::atomic<std::uint64_t> busy_ns{0};
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> ends[5] = {}; // by ChunkEnd
    std::atomic<std::uint64_t> retired{0};
    std::atomic<std::uint64_t> replaced{0};
    std::atomic<long> pid{0};
    std::atomic<std::int64_t> alive_since_ns{-1}; // its current worker's start; -1: none alive
    std::atomic<std::int64_t> lived_ns{0};        // the lives of its ended workers

    // ---- the timeline and the name
    mutable std::mutex mutex;
    std::string name;
    std::vector<TimelineEvent> ring; // grows to ring_per_lane_, then wraps at `next`
    std::size_t next = 0;
    std::uint64_t dropped = 0;
};

namespace {
void add(const bool many_writers, std::atomic<std::uint64_t>& counter,
         std::uint64_t amount) noexcept {
    if (many_writers) {
        counter.fetch_add(amount, std::memory_order_relaxed);
    } else {
        // Its only writer: a plain load and store, which readers see whole (no torn value).
        counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    }
}
} // namespace

Recorder::Recorder(std::string pool, std::size_t lanes, const ValidatedOptions& options)
    : pool_(std::move(pool)), lane_count_(lanes),
      ring_per_lane_(options.timeline_events == 0
                         ? 0
                         : std::max<std::size_t>(options.timeline_events / lanes, 1)),
      file_(options.timeline_file), lanes_(std::make_unique<Lane[]>(lanes)) {
    for (std::size_t lane = 0; lane < lanes; ++lane) {
        lanes_[lane].name = "worker " + std::to_string(lane);
    }
}

Recorder::~Recorder() = default;

void Recorder::share_lane(std::size_t lane) noexcept { lanes_[lane].many_writers = true; }

void Recorder::name_lane(std::size_t lane, std::string name) {
    std::lock_guard lock(lanes_[lane].mutex);
    lanes_[lane].name = std::move(name);
}

void Recorder::chunks_submitted(ChunkBatch chunks) noexcept {
    submitters_.submitted.fetch_add(chunks.size(), std::memory_order_relaxed);
    if (timeline_on()) {
        const std::int64_t now = now_ns();
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            chunks[i]->submitted_ns = now;
        }
    }
}

void Recorder::queue_depth_seen(std::size_t depth) noexcept {
    std::size_t seen = submitters_.max_queue_depth.load(std::memory_order_relaxed);
    while (depth > seen && !submitters_.max_queue_depth.compare_exchange_weak(
                               seen, depth, std::memory_order_relaxed)) {
    }
}

void Recorder::append(Lane& lane, const TimelineEvent& event) noexcept {
    std::lock_guard lock(lane.mutex);
    if (lane.ring.size() < ring_per_lane_) {
        try {
            lane.ring.push_back(event);
            return;
        } catch (...) {
            // No memory to grow: overwrite the oldest instead, as a full ring does.
            if (lane.ring.empty()) {
                ++lane.dropped;
                return;
            }
        }
    }
    lane.ring[lane.next] = event;
    lane.next = (lane.next + 1) % lane.ring.size();
    ++lane.dropped;
}

void Recorder::worker_started(std::size_t lane_index, long pid) noexcept {
    Lane& lane = lanes_[lane_index];
    const std::int64_t now = now_ns();
    lane.pid.store(pid, std::memory_order_relaxed);
    lane.alive_since_ns.store(now, std::memory_order_relaxed);
    if (timeline_on()) {
        append(lane, {.kind = TimelineEvent::Kind::worker_started,
                      .lane = static_cast<std::uint32_t>(lane_index),
                      .pid = pid,
                      .start_ns = now,
                      .end_ns = now});
    }
}

void Recorder::worker_identified(std::size_t lane_index, long pid) noexcept {
    lanes_[lane_index].pid.store(pid, std::memory_order_relaxed);
}

void Recorder::worker_stopped(std::size_t lane_index) noexcept {
    Lane& lane = lanes_[lane_index];
    const std::int64_t since = lane.alive_since_ns.exchange(-1, std::memory_order_relaxed);
    if (since >= 0) {
        lane.lived_ns.fetch_add(now_ns() - since, std::memory_order_relaxed);
    }
}

void Recorder::worker_ended(std::size_t lane_index, TimelineEvent::Kind why) noexcept {
    Lane& lane = lanes_[lane_index];
    worker_stopped(lane_index);
    const std::int64_t now = now_ns();
    add(lane.many_writers,
        why == TimelineEvent::Kind::worker_retired ? lane.retired : lane.replaced, 1);
    if (timeline_on()) {
        append(lane, {.kind = why,
                      .lane = static_cast<std::uint32_t>(lane_index),
                      .pid = lane.pid.load(std::memory_order_relaxed),
                      .start_ns = now,
                      .end_ns = now});
    }
}

void Recorder::chunk_counted(std::size_t lane_index, const ChunkFacts& chunk,
                             ChunkEnd end) noexcept {
    Lane& lane = lanes_[lane_index];
    add(lane.many_writers, lane.chunks, 1);
    if (end == ChunkEnd::finished) {
        add(lane.many_writers, lane.tasks, chunk.count);
    }
    add(lane.many_writers, lane.ends[static_cast<std::size_t>(end)], 1);
}

void Recorder::chunk_timed(std::size_t lane_index, const ChunkFacts& chunk, ChunkEnd end,
                           Span span) noexcept {
    Lane& lane = lanes_[lane_index];
    if (span.counts_busy && span.end_ns > span.start_ns) {
        add(lane.many_writers, lane.busy_ns,
            static_cast<std::uint64_t>(span.end_ns - span.start_ns));
    }
    if (span.bytes_in != 0) {
        add(lane.many_writers, lane.bytes_in, span.bytes_in);
    }
    if (span.bytes_out != 0) {
        add(lane.many_writers, lane.bytes_out, span.bytes_out);
    }
    if (timeline_on()) {
        append(lane, {.kind = TimelineEvent::Kind::chunk,
                      .end = end,
                      .lane = static_cast<std::uint32_t>(lane_index),
                      .pid = lane.pid.load(std::memory_order_relaxed),
                      .call = chunk.call,
                      .first = chunk.first,
                      .count = chunk.count,
                      .submitted_ns = chunk.submitted_ns,
                      .start_ns = span.start_ns,
                      .end_ns = span.end_ns,
                      .bytes_in = span.bytes_in,
                      .bytes_out = span.bytes_out});
    }
}

PoolStats Recorder::stats(std::size_t queue_depth_now) const {
    PoolStats stats;
    stats.queue_depth = queue_depth_now;
    stats.max_queue_depth =
        std::max(submitters_.max_queue_depth.load(std::memory_order_relaxed), queue_depth_now);
    stats.chunks_submitted = submitters_.submitted.load(std::memory_order_relaxed);
    const std::int64_t now = now_ns();
    stats.workers.reserve(lane_count_);
    for (std::size_t i = 0; i < lane_count_; ++i) {
        const Lane& lane = lanes_[i];
        WorkerStats worker;
        {
            std::lock_guard lock(lane.mutex);
            worker.where = lane.name;
        }
        const auto load = [](const auto& counter) {
            return counter.load(std::memory_order_relaxed);
        };
        worker.pid = load(lane.pid);
        worker.tasks = load(lane.tasks);
        worker.chunks = load(lane.chunks);
        worker.bytes_in = load(lane.bytes_in);
        worker.bytes_out = load(lane.bytes_out);
        worker.failed = load(lane.ends[static_cast<std::size_t>(ChunkEnd::failed)]);
        worker.lost = load(lane.ends[static_cast<std::size_t>(ChunkEnd::lost)]);
        worker.timed_out = load(lane.ends[static_cast<std::size_t>(ChunkEnd::timed_out)]);
        worker.cancelled = load(lane.ends[static_cast<std::size_t>(ChunkEnd::cancelled)]);
        worker.retired = load(lane.retired);
        worker.replaced = load(lane.replaced);
        const std::int64_t since = load(lane.alive_since_ns);
        const std::int64_t alive = load(lane.lived_ns) + (since >= 0 ? now - since : 0);
        const auto busy = static_cast<std::int64_t>(load(lane.busy_ns));
        worker.busy = std::chrono::nanoseconds(busy);
        // Read apart from each other, a chunk that just ended may count as busy before its
        // worker's life does: idle never goes below zero.
        worker.idle = std::chrono::nanoseconds(std::max<std::int64_t>(alive - busy, 0));
        stats.workers.push_back(std::move(worker));
    }
    return stats;
}

Timeline Recorder::timeline() const {
    Timeline timeline;
    timeline.pool = pool_;
    for (std::size_t i = 0; i < lane_count_; ++i) {
        const Lane& lane = lanes_[i];
        std::lock_guard lock(lane.mutex);
        timeline.lanes.push_back(lane.name);
        // Oldest first: from the write position of a ring that wrapped.
        timeline.events.insert(timeline.events.end(),
                               lane.ring.begin() + static_cast<std::ptrdiff_t>(lane.next),
                               lane.ring.end());
        timeline.events.insert(timeline.events.end(), lane.ring.begin(),
                               lane.ring.begin() + static_cast<std::ptrdiff_t>(lane.next));
        timeline.dropped += lane.dropped;
    }
    std::stable_sort(
        timeline.events.begin(), timeline.events.end(),
        [](const TimelineEvent& a, const TimelineEvent& b) { return a.end_ns < b.end_ns; });
    return timeline;
}

void Recorder::write_file_if_asked() noexcept {
    if (file_.empty() || file_written_.exchange(true)) {
        return;
    }
    try {
        write_timeline(timeline(), file_);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "mproc: MPROC_TIMELINE: %s\n", error.what());
    }
}

std::filesystem::path next_timeline_path_from_environment() {
    const char* value = std::getenv("MPROC_TIMELINE");
    if (value == nullptr || *value == '\0') {
        return {};
    }
    static std::atomic<unsigned> pools{0};
    const unsigned number = pools.fetch_add(1, std::memory_order_relaxed) + 1;
    std::filesystem::path path(value);
    if (number > 1) {
        path.replace_filename(path.stem().string() + "-" + std::to_string(number) +
                              path.extension().string());
    }
    return path;
}

} // namespace mproc::detail
