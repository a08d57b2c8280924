// SPDX-License-Identifier: MIT
#include "pipeline_window.hpp"

#include <algorithm>
#include <cmath>

namespace mproc::detail {

void PipelineWindow::measure(const void* job) noexcept {
    if (job != job_) {
        job_ = job;
        depth_ = 1;
        estimate_ = 0;
        short_runs_ = 0;
    }
}

void PipelineWindow::learn(Clock::duration ran) noexcept { learn_sample(in_units(ran)); }

void PipelineWindow::learn_from_answer(Clock::time_point sent, Clock::time_point now,
                                       std::size_t workers) noexcept {
    // A chunk sent before the previous answer waited at the rank behind it: the time since that
    // answer is what the chunk itself cost (a rank with several worker processes answers that
    // many times faster). A chunk sent later found the rank idle: its time is a round trip,
    // latency included, which says only "at most this" about the chunk; it is used while the
    // window is 1 deep (nothing is sent ahead there, so nothing else is learnt), to see whether
    // chunks are short enough to send ahead. Answers that came in one batch see ~0 after the
    // first: averaged over answers, the estimate is still the time per answer.
    const bool waited_here = sent < last_answer_;
    const double sample = in_units(now - std::max(sent, last_answer_)) *
                          static_cast<double>(waited_here ? workers : 1);
    last_answer_ = now;
    if (!waited_here && depth_ > 1) {
        return; // the rank ran dry: a window too shallow for a moment, not a longer chunk
    }
    learn_sample(sample);
}

bool PipelineWindow::refill_due(std::size_t in_flight, std::size_t workers) const noexcept {
    const std::size_t window = workers * depth_;
    if (policy_.refill == Refill::waiting_half_empty) {
        // The chunks beyond the running ones (one per worker), against the room beyond them.
        return in_flight <= workers || 2 * (in_flight - workers) <= window - workers;
    }
    return 2 * std::min(in_flight, window) <= window;
}

double PipelineWindow::in_units(Clock::duration time) const noexcept {
    return static_cast<double>(time.count()) / static_cast<double>(policy_.unit.count());
}

void PipelineWindow::learn_sample(double sample) noexcept {
    const bool short_one = sample < in_units(policy_.one_ahead_below);
    if (policy_.averaging == Averaging::slower_at_once) {
        estimate_ = !short_one || short_runs_ == 0 || sample > estimate_
                        ? sample
                        : std::floor((7 * estimate_ + sample) / 8);
    } else {
        estimate_ = estimate_ == 0 ? sample : estimate_ + (sample - estimate_) / 8;
    }
    short_runs_ = short_one ? short_runs_ + 1 : 0;
    depth_ = depth_for_estimate();
}

std::size_t PipelineWindow::depth_for_estimate() const noexcept {
    if (short_runs_ < policy_.min_short_runs || estimate_ >= in_units(policy_.one_ahead_below)) {
        return 1;
    }
    const double latency = in_units(policy_.latency_to_hide);
    if (estimate_ >= latency) {
        return 2;
    }
    if (estimate_ <= 0) {
        return policy_.deepest; // chunks that take no measurable time
    }
    // At most `deepest` chunks, counted before they are converted: never a double too large.
    const auto deepest = static_cast<double>(policy_.deepest);
    if (policy_.cover == Cover::running_and_latency) {
        const double behind = std::min(deepest, std::ceil(latency / estimate_));
        return std::min(policy_.deepest, 1 + static_cast<std::size_t>(behind));
    }
    const double past = std::min(deepest, latency / estimate_ + 1);
    return std::min(policy_.deepest, 2 * static_cast<std::size_t>(past));
}

} // namespace mproc::detail
