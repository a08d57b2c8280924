// SPDX-License-Identifier: MIT
#pragma once
// One worker process as the process backend's I/O thread sees it (process_backend.cpp): its
// channel, the chunks sent to it and not yet answered (its pipelined window), and what it said
// about itself. Owned and touched by the I/O thread only.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "fast_lane.hpp"
#include "held_answers.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/job.hpp"
#include "pipeline_window.hpp"
#include "process/channel.hpp"
#include "process/crash_report.hpp"

namespace mproc::detail {

/// A chunk sent to a worker and not yet answered.
struct SentChunk {
    Chunk* chunk;
    std::size_t frame_bytes; // its request, header included
    Clock::time_point sent;  // for its span on the pool's timeline
    bool in_lane = false;    // posted in the worker's fast lane, not sent on the socket
};

struct WorkerProcess {
    std::uint64_t id = 0;
    pid_t pid = -1;
    std::size_t lane = 0;                // its worker slot in the pool's Recorder
    std::int64_t last_answer_ns = 0;     // when its last answer arrived, in the Recorder's terms
    std::uint64_t server_generation = 0; // the fork server it came from (see launcher_failed)
    int fd = -1;
    bool ready = false;    // its hello arrived
    bool lends = false;    // told it may lend results (lent_memory.hpp): this process reads them
    bool stopping = false; // told to stop (retired, or the pool is closing)
    std::uint64_t releases_sent = 0; // release frames, for a request posted in its lane
    // The chunks sent to it and not yet answered, in the order it runs (and answers) them: the
    // front one is running, the others wait in its socket (a pipelined window).
    std::deque<SentChunk> window;
    std::size_t waiting_bytes = 0;     // the requests of the chunks behind the front one
    bool window_refused_bytes = false; // a request too big to wait there: none until an answer
    bool refilling = false;            // dispatch_queued is filling its window up
    std::size_t tasks_done = 0;
    Clock::time_point deadline = Clock::time_point::max(); // of the front chunk
    bool cancelled = false;           // killed because its running chunk's call was cancelled
    bool timed_out = false;           // killed for passing it
    std::optional<CrashReport> crash; // its last words, from its fatal-signal handler
    std::vector<std::byte> finished_outcomes; // sent with them: items done before the crash
    FrameReader answers;                      // its frames, read a batch at a time
    std::optional<HeldAnswersView> held;      // where it holds answers back, once it said
    std::unique_ptr<FastLane> fast_lane;      // its fast lane, once it sent it
    WireWriter outbox;                        // requests for it, sent together by flush()
    // How deep its window may be: measured on the chunks of one job, the one of the back of its
    // window, which therefore stays alive while the figures are used.
    PipelineWindow pipeline{process_window_policy};

    WorkerProcess() { outbox.allow_borrowing(); } // flush() sends it in the turn it was filled
    WorkerProcess(const WorkerProcess&) = delete;
    WorkerProcess& operator=(const WorkerProcess&) = delete;
    ~WorkerProcess();

    /// Sends what its outbox holds, in one system call.
    void flush();
    /// Tells it to stop.
    void stop();
    /// Reads the rest of its hello after the program id (its pid and where its probe word
    /// lies); if this process can read its memory, tells it that it may lend results.
    void greeted(WireReader& hello);
    /// Whether its running chunk was posted in its lane and is still unanswered.
    bool awaits_lane_answer() const noexcept { return !window.empty() && window.front().in_lane; }
    /// Whether it may send an answer of `kind` (done_lent only once told it may lend).
    bool may_answer(FrameKind kind) const noexcept {
        return is_answer(kind) && (kind != FrameKind::done_lent || lends);
    }
    /// Takes the answer it posted in its lane for its running chunk into `answer`, if that chunk
    /// went there and the answer is there; throws WireError for one that cannot be true (a
    /// count, size or kind no answer of its has).
    bool take_lane_answer(FastLaneMessage& answer);
    /// Tells it that the blocks of its oldest lent answer have been read (with the next flush).
    void release_lent();
    /// Takes in a frame that is not an answer: its hello, where it holds answers, its crash
    /// report. The error it is lost for when the frame is refused (another program, garbage,
    /// a frame it may not send, or not again).
    std::exception_ptr take_notice(FrameKind kind, WireReader& in) noexcept;
    /// Takes the answered front chunk out of its window and learns from the time it ran
    /// (`run_ns`, as the worker timed it).
    Chunk* answered(std::uint32_t run_ns);
    /// Settles `chunk` (just taken from its window) with its answer, a done, done_lent or failed
    /// frame;
    /// false when a done frame did not decode (its items end with that error, and the worker
    /// is not to be believed again).
    bool settle_answer(Chunk& chunk, FrameKind kind, WireReader& in);
};

} // namespace mproc::detail
