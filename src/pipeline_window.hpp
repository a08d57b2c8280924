// SPDX-License-Identifier: MIT
#pragma once
// The pipelined window: how many chunks a worker process has in flight (sent and not answered),
// for the process backend (one window per worker process) and the MPI hub (one per worker
// process of a rank). Every chunk costs a round trip between the caller and the worker; a worker
// whose chunks take less than that would idle most of the time, so short chunks are sent ahead
// of their answers. Long ones are not: a chunk sent ahead waits at that worker while another may
// be free (dynamic balancing wants it held back), and it runs even if nobody wants its result
// any more (an imap left early).
//
// The window is learnt from one job's chunks (one call's: its chunks are alike, another's may be
// a thousand times longer), from the times the caller passes in: the policy reads no clock and
// touches no process, so that it decides the same way for the same times.

#include <chrono>
#include <cstddef>

#include "mproc/detail/deadline.hpp"

namespace mproc::detail {

class PipelineWindow {
  public:
    /// How a chunk's time changes the estimate of the time per chunk.
    enum class Averaging {
        // The first chunk of a run of short ones, a long one, or one slower than the estimate
        // replaces it (better too shallow than too deep); a faster one moves it 1/8 of the way,
        // in whole units rounded down.
        slower_at_once,
        // Every chunk moves it 1/8 of the way (the first one sets it).
        smoothed,
    };
    /// How many chunks a worker has in flight while its chunks are shorter than the latency.
    enum class Cover {
        // The running one, and as many behind it as take latency_to_hide to run.
        running_and_latency,
        // Twice as many as take longer than latency_to_hide to run: half a window covers it.
        twice_past_latency,
    };
    /// When a window that has room is filled up again (in one send, rather than chunk by chunk
    /// as answers come: a system call or a message on each side per chunk).
    enum class Refill {
        // When the chunks waiting behind each running one are down to half of those that may.
        waiting_half_empty,
        // When the chunks in flight are down to half of the window.
        window_half_empty,
    };

    struct Policy {
        // The unit the estimate is kept and compared in, as a double.
        Clock::duration unit;
        // Chunks shorter than this are sent ahead, enough of them to cover it (Cover).
        Clock::duration latency_to_hide;
        // Chunks from latency_to_hide up to this long have one sent ahead per worker; longer
        // ones run alone (one in flight).
        Clock::duration one_ahead_below;
        // Chunks are sent ahead only once this many of the job in a row ran below
        // one_ahead_below: one short chunk before long ones must not deepen the window.
        std::size_t min_short_runs;
        // The most chunks in flight per worker.
        std::size_t deepest;
        Averaging averaging;
        Cover cover;
        Refill refill;
    };

    explicit PipelineWindow(const Policy& policy) noexcept : policy_(policy) {}

    /// Whether the chunks of `job` are those measured. Jobs are compared by address: the
    /// caller keeps the measured job alive while it compares, or forgets it (forget_job).
    bool measures(const void* job) const noexcept { return job == job_; }
    /// A chunk of `job` is sent: the window is measured on its chunks from now on. Another job
    /// than the one measured starts afresh, one chunk deep, with no estimate.
    void measure(const void* job) noexcept;
    /// No job is measured (its address may be another job's next); the figures stay until the
    /// next chunk is sent (measure).
    void forget_job() noexcept { job_ = nullptr; }

    /// Learns from a chunk of the measured job that ran `ran`, as its worker timed it.
    void learn(Clock::duration ran) noexcept;
    /// Learns from the answer, at `now`, to a chunk of the measured job sent at `sent`, by a
    /// rank with `workers` worker processes (a round trip, as the caller times it).
    void learn_from_answer(Clock::time_point sent, Clock::time_point now,
                           std::size_t workers) noexcept;

    /// How many chunks each worker may have in flight (its running one included).
    std::size_t depth() const noexcept { return depth_; }
    /// The estimated time per chunk, in policy units; 0 when there is none.
    double estimate() const noexcept { return estimate_; }
    /// Whether a window of `workers` workers with `in_flight` chunks has run down far enough
    /// to be filled up again.
    bool refill_due(std::size_t in_flight, std::size_t workers = 1) const noexcept;

  private:
    double in_units(Clock::duration time) const noexcept;
    void learn_sample(double sample) noexcept;
    std::size_t depth_for_estimate() const noexcept;

    Policy policy_;
    const void* job_ = nullptr;
    std::size_t depth_ = 1;
    double estimate_ = 0;
    std::size_t short_runs_ = 0;      // chunks in a row that ran below one_ahead_below
    Clock::time_point last_answer_{}; // learn_from_answer's
};

/// The process backend's: every chunk costs a round trip through the caller's I/O thread (10-20
/// us or more); the worker times each chunk itself (in nanoseconds).
inline constexpr PipelineWindow::Policy process_window_policy{
    .unit = std::chrono::nanoseconds(1),
    // Enough short chunks waiting at the worker to cover this much of its time;
    .latency_to_hide = std::chrono::microseconds(30),
    // Chunks longer than that, up to this long, have one chunk queued behind the running one:
    // the round trip costs such a chunk 5-70% of its time (it takes 30-75 us where an idle
    // virtual CPU must be resumed by its host), and one chunk waiting costs a call at most one
    // such chunk's time at its end (a worker that has run out while another still has one
    // waiting).
    .one_ahead_below = std::chrono::milliseconds(1),
    .min_short_runs = 4,
    // The running chunk and at most 32 behind it (their request bytes have a limit of their
    // own: they must fit in the socket's buffer, process_backend.cpp).
    .deepest = 1 + 32,
    .averaging = PipelineWindow::Averaging::slower_at_once,
    // Half a window (refilled at half) still covers latency_to_hide / 2.
    .cover = PipelineWindow::Cover::running_and_latency,
    .refill = PipelineWindow::Refill::waiting_half_empty,
};

/// The MPI hub's, per worker process of a rank: it times round trips (a message each way and
/// the rank's hand-offs, tens of microseconds, more on a loaded machine), in microseconds.
inline constexpr PipelineWindow::Policy mpi_window_policy{
    .unit = std::chrono::microseconds(1),
    .latency_to_hide = std::chrono::microseconds(100),
    // Chunks longer than that, up to this long, get one more per worker process, which waits on
    // the rank behind the running one: the rank then never waits the round trip (about 60 us,
    // more than half of a 100 us chunk), at the cost of at most one such chunk of
    // imbalance at the end of a call.
    .one_ahead_below = std::chrono::milliseconds(1),
    .min_short_runs = 4,
    .deepest = 64,
    .averaging = PipelineWindow::Averaging::smoothed,
    // Twice over, since a rank is refilled once half its window is free.
    .cover = PipelineWindow::Cover::twice_past_latency,
    .refill = PipelineWindow::Refill::window_half_empty,
};

} // namespace mproc::detail
