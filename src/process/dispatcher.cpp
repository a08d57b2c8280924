// SPDX-License-Identifier: MIT
#include "dispatcher.hpp"

#include <algorithm>
#include <exception>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "process/channel.hpp"
#include "terminated_error.hpp"
#include "worker_failures.hpp"

namespace mproc::detail {
namespace {

// The requests of the chunks queued at a worker behind its running one (its pipelined window,
// pipeline_window.hpp) may not take more bytes than this: they must fit in the socket's buffer,
// so that the I/O thread never blocks writing to a worker that is itself blocked writing an
// answer the I/O thread has not read yet.
constexpr std::size_t max_waiting_bytes = std::size_t{32} << 10;

} // namespace

void Dispatcher::dispatch(const Workers& workers) {
    for (const auto& worker : workers) {
        if (worker->window.empty() && may_take(*worker) && !take_queued(*worker, false) &&
            worker->ready) {
            break; // the queue is empty (a worker not ready yet may refuse a timed chunk)
        }
    }
    for (const auto& worker : workers) {
        worker->refilling = needs_refill(*worker);
    }
    for (bool grown = true; grown;) {
        grown = false;
        for (const auto& worker : workers) {
            worker->refilling =
                worker->refilling && has_room_behind(*worker) && take_queued(*worker, true);
            grown = grown || worker->refilling;
        }
    }
    for (const auto& worker : workers) {
        worker->flush();
    }
}

/// Whether the worker may be given a chunk. Also before its hello: the request waits in its
/// socket while it starts, so the first task of a new worker (of a new pool) does not wait
/// a round trip more for the hello to be read here (take_queued keeps timed chunks back).
bool Dispatcher::may_take(const WorkerProcess& worker) const noexcept {
    // A worker of a lost server is dying with it (its parent-death signal).
    return !worker.stopping && worker.server_generation == server_generation_ &&
           (options_.max_tasks_per_child == 0 ||
            worker.tasks_done + worker.window.size() < options_.max_tasks_per_child);
}

/// Whether a chunk may be queued behind the worker's running one now.
bool Dispatcher::has_room_behind(const WorkerProcess& worker) const noexcept {
    return !worker.window.empty() && !worker.window_refused_bytes && may_take(worker) &&
           worker.window.size() < worker.pipeline.depth();
}

/// Whether the worker's window has run down to half of what it may hold: then it is filled
/// up again, in one send. Topping it up chunk by chunk as they come would cost a system
/// call on each side per chunk; half a window still covers latency_to_hide / 2.
bool Dispatcher::needs_refill(const WorkerProcess& worker) const noexcept {
    return has_room_behind(worker) && worker.pipeline.refill_due(worker.window.size());
}

std::chrono::nanoseconds Dispatcher::time_limit(const Chunk& chunk) const noexcept {
    const auto own = chunk.job->task_timeout();
    return own.count() != 0 ? own : options_.task_timeout;
}

/// Moves the chunk at the front of the queue into the worker's window and outbox; with
/// `behind`, only if it may wait behind the worker's running chunk: a chunk of the job
/// measured there (whose chunk at the back of the window keeps it alive, so the comparison
/// is exact) without a time limit (a time limit counts from the start of the chunk, which
/// the caller only knows for the front one). False when no chunk was moved.
bool Dispatcher::take_queued(WorkerProcess& worker, bool behind) {
    for (;;) {
        Chunk* chunk = queue_.pop_front_if([&](const Chunk& front) {
            const bool timed = time_limit(front).count() != 0;
            if (behind && (timed || !worker.pipeline.measures(front.job))) {
                return false;
            }
            // Its time limit counts from when it is sent: only to a worker that runs.
            return worker.ready || !timed;
        });
        if (chunk == nullptr) {
            return false;
        }
        switch (add_to_outbox(worker, chunk, behind)) {
        case Added::sent:
            return true;
        case Added::settled:
            continue;
        case Added::too_big:
            requeue({&chunk, 1});
            return false;
        }
    }
}

/// Encodes the chunk's request into the worker's outbox and puts the chunk in its window;
/// or settles it here (nobody wants it, or it does not encode); or, `behind` its running
/// chunk, refuses it when its request would not fit in what may wait in the socket.
Dispatcher::Added Dispatcher::add_to_outbox(WorkerProcess& worker, Chunk* chunk, bool behind) {
    if (std::exception_ptr reason = reason_not_to_run(*chunk->job)) {
        settle_cancelled(*chunk, std::move(reason));
        return Added::settled;
    }
    const std::size_t header = begin_frame(worker.outbox);
    try {
        // The worker runs on this host: a SharedArray crosses as a handle to its memory.
        const ThisHostRequests this_host;
        wire_of(*chunk->job).encode_chunk(*chunk, worker.outbox);
    } catch (...) {
        worker.outbox.truncate(header);
        settle_cancelled(*chunk, std::current_exception()); // e.g. cereal refused
        return Added::settled;
    }
    end_frame(worker.outbox, header, FrameKind::run);
    const std::size_t bytes = worker.outbox.size() - header;
    if (behind && worker.waiting_bytes + bytes > max_waiting_bytes) {
        worker.outbox.truncate(header);
        worker.window_refused_bytes = true; // until its next answer
        return Added::too_big;
    }
    bool in_lane = false;
    if (worker.window.empty()) {
        const auto limit = time_limit(*chunk);
        // deadline_after: the largest limits would wrap around past the clock's end.
        worker.deadline = limit.count() != 0 ? deadline_after(limit) : Clock::time_point::max();
        in_lane = post_in_lane(worker, header);
    } else {
        worker.waiting_bytes += bytes;
    }
    // Another job's chunks start afresh. (Compared while the old job is still alive: its
    // chunk is in the window, or being answered.)
    worker.pipeline.measure(chunk->job);
    worker.window.push_back({chunk, bytes, Clock::now(), in_lane});
    return Added::sent;
}

/// Moves the request just encoded at `header` in the worker's outbox into its fast lane, if it
/// has one and the request fits; the outbox then holds a lane_posted frame instead if the
/// worker sleeps. Only for a worker with nothing else unanswered (fast_lane.hpp). The request
/// says how many releases of lent results were sent before it (queued in the outbox, or on
/// their way): the worker reads them first, so that it lets go of a lent value before it runs
/// the next task, which may need that memory.
bool Dispatcher::post_in_lane(WorkerProcess& worker, std::size_t header) {
    const std::size_t payload_at = header + sizeof(FrameHeader);
    const std::size_t size = worker.outbox.size() - payload_at;
    const std::byte* payload = worker.outbox.own_bytes_from(payload_at);
    if (!worker.fast_lane || size > fast_lane_capacity || payload == nullptr) {
        return false;
    }
    const bool asleep = worker.fast_lane->post_request(payload, size, worker.releases_sent);
    worker.outbox.truncate(header);
    if (asleep) {
        end_frame(worker.outbox, begin_frame(worker.outbox), FrameKind::lane_posted);
    }
    return true;
}

void Dispatcher::refill(WorkerProcess& worker, const Workers& workers) {
    if (worker.window.empty() && may_take(worker)) {
        take_queued(worker, false);
    }
    if (needs_refill(worker) && !any_idle_worker(workers)) {
        while (has_room_behind(worker) && take_queued(worker, true)) {
        }
    }
    worker.flush();
}

bool Dispatcher::any_idle_worker(const Workers& workers) const noexcept {
    return std::ranges::any_of(workers, [this](const auto& worker) {
        return worker->window.empty() && may_take(*worker);
    });
}

void Dispatcher::requeue(std::span<Chunk* const> chunks) {
    if (chunks.empty()) {
        return;
    }
    MPROC_TRACE_EVENT("process backend: %zu chunks re-queued", chunks.size());
    if (!queue_.push_front(chunks)) {
        for (Chunk* chunk : chunks) {
            settle_cancelled(*chunk, terminated_error());
        }
    }
}

} // namespace mproc::detail
