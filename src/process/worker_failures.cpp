// SPDX-License-Identifier: MIT
#include "worker_failures.hpp"

#include <sys/wait.h>

#include <utility>

#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/detail/wire/worker_loss.hpp"
#include "mproc/errors.hpp"
#include "terminated_error.hpp"

namespace mproc::detail {

void ExitStatuses::record(const WorkerLauncher::Event& event) {
    statuses_[static_cast<pid_t>(event.pid)] = event.kind == WorkerLauncher::Event::Kind::exited
                                                   ? std::optional<int>(event.status)
                                                   : std::nullopt;
}

std::optional<int> ExitStatuses::take(pid_t pid, const std::function<bool()>& wait_a_moment) {
    for (int attempt = 0; attempt < 50 && !statuses_.contains(pid) && wait_a_moment(); ++attempt) {
    }
    const auto status = statuses_.find(pid);
    if (status == statuses_.end()) {
        return std::nullopt;
    }
    const std::optional<int> value = status->second; // empty: the kernel reaped it unseen
    statuses_.erase(status);
    return value;
}

void settle_cancelled(Chunk& chunk, std::exception_ptr reason) {
    chunk.retries = 0;
    chunk.job->cancel_chunk(chunk, std::move(reason)); // moved: see settle_answer
}

std::exception_ptr timeout_error(pid_t pid, const Chunk& chunk) {
    const std::size_t index = chunk.job->task_index(chunk, 0);
    return std::make_exception_ptr(TaskTimeout(
        "mproc: task " + std::to_string(index) +
            (chunk.count > 1 ? " (a chunk of " + std::to_string(chunk.count) + ")" : "") +
            " ran past its time limit; its worker process " + std::to_string(pid) + " was killed",
        pid, index));
}

void settle_lost(WorkerProcess& worker, Chunk& chunk, WorkerEnd end) {
    WorkerLoss loss;
    loss.worker_pid = worker.pid;
    loss.retries = chunk.retries;
    if (!end.died_with.empty()) {
        loss.died_with = std::move(end.died_with);
    } else if (end.status) {
        if (WIFSIGNALED(*end.status)) {
            loss.signal = WTERMSIG(*end.status);
        } else if (WIFEXITED(*end.status)) {
            loss.exit_status = WEXITSTATUS(*end.status);
        }
    } else if (worker.crash) {
        loss.signal = worker.crash->signal;
    }
    if (worker.crash) {
        loss.running_item = worker.crash->item;
        loss.backtrace = std::move(worker.crash->frames);
    }
    if (end.untrusted) {
        try {
            std::rethrow_exception(end.untrusted);
        } catch (const std::exception& e) {
            loss.killed_for = e.what();
        }
    }
    chunk.retries = 0;
    WireReader finished(worker.finished_outcomes.data(), worker.finished_outcomes.size());
    wire_of(*chunk.job).lose_chunk(chunk, std::move(loss), finished);
}

void settle_lane_answer(WorkerProcess& worker) {
    FastLaneMessage answer;
    try {
        if (!worker.take_lane_answer(answer)) {
            return; // nothing there: its chunk is blamed for its end
        }
    } catch (const WireError&) {
        return; // nothing believed: the same
    }
    WireReader in(answer.payload.data(), answer.payload.size());
    if (answer.kind == FrameKind::done_lent) {
        in.read_lent_from(worker.pid); // it is gone: that read fails, and says so to the call
    }
    Chunk* chunk = worker.answered(answer.run_ns);
    worker.settle_answer(*chunk, answer.kind, in);
}

void settle_held_answers(WorkerProcess& worker) {
    if (!worker.held) {
        return;
    }
    std::vector<std::byte> frames;
    try {
        frames = worker.held->unread_frames(worker.tasks_done);
    } catch (const WireError&) {
        return; // not believed: its window is blamed as if nothing was held
    }
    WireReader held(frames.data(), frames.size());
    while (held.remaining() >= sizeof(FrameHeader) && !worker.window.empty()) {
        FrameHeader header{};
        FrameKind kind{};
        try {
            header = held.read<FrameHeader>();
            kind = checked_frame_kind(header);
            if ((kind != FrameKind::done && kind != FrameKind::failed) ||
                header.size > held.remaining()) {
                return;
            }
        } catch (const WireError&) {
            return;
        }
        const std::byte* payload = held.take(header.size);
        WireReader in(payload, header.size);
        Chunk* chunk = worker.answered(header.run_ns);
        if (!worker.settle_answer(*chunk, kind, in)) {
            return; // it ended with the decoding error; the rest is not believed
        }
    }
}

std::vector<Chunk*> settle_lost_window(WorkerProcess& worker, const LostWindow& how) {
    std::vector<Chunk*> requeued;
    if (worker.window.empty()) {
        return requeued;
    }
    Chunk* chunk = worker.window.front().chunk;
    if (how.terminating) {
        settle_cancelled(*chunk, terminated_error());
    } else if (worker.timed_out) {
        settle_cancelled(*chunk, timeout_error(worker.pid, *chunk));
    } else if (worker.cancelled) {
        settle_cancelled(*chunk, cancelled_call_error());
    } else if (chunk->retries < how.max_retries && how.retry_allowed) {
        ++chunk->retries; // run whole again, on another worker
        MPROC_TRACE_EVENT("process backend: chunk re-queued (retry %u)", chunk->retries);
        requeued.push_back(chunk);
    } else {
        settle_lost(worker, *chunk, how.end());
    }
    for (auto waiting = worker.window.begin() + 1; waiting != worker.window.end(); ++waiting) {
        if (how.terminating) {
            settle_cancelled(*waiting->chunk, terminated_error());
        } else {
            requeued.push_back(waiting->chunk);
        }
    }
    worker.window.clear();
    return requeued;
}

} // namespace mproc::detail
