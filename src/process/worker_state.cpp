// SPDX-License-Identifier: MIT
#include "worker_state.hpp"

#include <unistd.h>

#include <chrono>
#include <system_error>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/lent_memory.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

WorkerProcess::~WorkerProcess() {
    if (fd >= 0) {
        ::close(fd);
    }
}

void WorkerProcess::flush() {
    if (outbox.size() == 0) {
        return;
    }
    try {
        send_writer(fd, outbox); // refers to the inputs of large blocks
    } catch (const std::system_error&) {
        // The worker is gone; its channel's end of stream reports it (and its chunks) next.
    }
    outbox.clear();
}

void WorkerProcess::stop() {
    stopping = true;
    try {
        send_frame(fd, FrameKind::stop, nullptr, 0);
    } catch (const std::system_error&) {
        // Already gone: its end of stream comes next.
    }
}

void WorkerProcess::greeted(WireReader& hello) {
    hello.read<std::int64_t>(); // its pid, as it sees it: this process reads by the one it knows
    if (can_read_lent(pid, hello.read<std::uint64_t>())) {
        // Sent before anything it could lend is asked for, or behind it in the same socket:
        // either way it lends only what is answered after this.
        const std::size_t header = begin_frame(outbox);
        end_frame(outbox, header, FrameKind::lend);
        flush();
        lends = true;
    }
}

void WorkerProcess::release_lent() {
    const std::size_t header = begin_frame(outbox);
    end_frame(outbox, header, FrameKind::release);
    ++releases_sent;
}

bool WorkerProcess::take_lane_answer(FastLaneMessage& answer) {
    if (!awaits_lane_answer() || !fast_lane->take_answer(answer)) {
        return false;
    }
    if (!may_answer(answer.kind)) {
        throw WireError("mproc: unexpected answer in a worker's fast lane");
    }
    return true;
}

std::exception_ptr WorkerProcess::take_notice(FrameKind kind, WireReader& in) noexcept {
    try {
        if (kind == FrameKind::hello) {
            if (in.read<std::uint64_t>() != this_program_id()) {
                throw Error("mproc: worker runs a different program");
            }
            greeted(in);
            ready = true;
        } else if (kind == FrameKind::held_answers && !held) {
            const int received = answers.take_received_fd();
            if (received < 0) {
                throw WireError("mproc: a worker's held answers came without their memory");
            }
            held.emplace(received);
        } else if (kind == FrameKind::fast_lane && !fast_lane) {
            const int received = answers.take_received_fd();
            if (received < 0) {
                throw WireError("mproc: a worker's fast lane came without its memory");
            }
            fast_lane = std::make_unique<FastLane>(received);
        } else if (kind == FrameKind::crashed && !crash) {
            // Its end of stream follows; losing it reports the crash with it.
            crash = read_crash_report(in);
            const std::size_t size = in.remaining();
            const std::byte* finished = in.take(size);
            finished_outcomes.assign(finished, finished + size);
        } else {
            throw WireError("mproc: unexpected frame from worker");
        }
    } catch (...) {
        return std::current_exception();
    }
    return nullptr;
}

Chunk* WorkerProcess::answered(std::uint32_t run_ns) {
    Chunk* chunk = window.front().chunk;
    window.pop_front();
    ++tasks_done;
    window_refused_bytes = false;
    if (pipeline.measures(chunk->job)) {
        pipeline.learn(std::chrono::nanoseconds(run_ns));
    }
    deadline = Clock::time_point::max(); // chunks with a time limit run alone
    if (!window.empty()) {
        waiting_bytes -= window.front().frame_bytes;
    }
    return chunk;
}

bool WorkerProcess::settle_answer(Chunk& chunk, FrameKind kind, WireReader& in) {
    chunk.retries = 0;
    if (kind == FrameKind::done || kind == FrameKind::done_lent) {
        return wire_of(*chunk.job).complete_chunk(chunk, in, pid, nullptr);
    }
    std::exception_ptr reason;
    try {
        reason = decode_exception(in, pid, chunk.job->task_index(chunk, 0));
    } catch (...) {
        reason = std::current_exception();
    }
    // Moved, not copied: the caller must hold the last reference, or this thread could
    // destroy the exception while the caller reads it (ThreadSanitizer cannot see the
    // reference count inside libstdc++ and reports it).
    chunk.job->cancel_chunk(chunk, std::move(reason));
    return true;
}

} // namespace mproc::detail
