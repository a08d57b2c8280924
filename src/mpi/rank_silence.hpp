// SPDX-License-Identifier: MIT
#pragma once
// How rank 0 notices a worker rank that is alive to the network but does nothing: a host whose
// processes are stopped (SIGSTOP, a debugger, a frozen VM) keeps its TCP connections open and
// answers keepalive probes, so neither Open MPI nor a closed connection ever tells rank 0, and a
// map waiting for that host's chunks would wait for ever.
//
// A worker rank that holds chunks of rank 0's sends something at least every
// heartbeat_interval: its answers, or, with nothing to answer, MpiTag::alive (a thread of its
// own sends it, so a long task run in the rank does not silence it). Rank 0 watches the ranks it
// waits for; one it has heard nothing from for the silence limit ends the job with a message
// naming the rank and its host (what Open MPI does when a host's processes die).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace mproc::detail {

/// How often a worker rank holding chunks makes itself heard, at the least.
inline constexpr std::chrono::milliseconds heartbeat_interval{1000};

/// How long rank 0 waits for a word from a worker rank that holds its chunks before it ends the
/// job: MPROC_MPI_RANK_TIMEOUT (whole seconds, at least 2; 0 turns the watch off), else 30 s.
/// nullopt: off. Throws std::invalid_argument, naming the variable, for any other value.
std::optional<std::chrono::seconds> rank_silence_limit();

/// Rank 0's record of when it last heard from each worker rank (hub thread only).
class SilenceWatch {
  public:
    using Clock = std::chrono::steady_clock;

    SilenceWatch(std::size_t ranks, std::optional<std::chrono::seconds> limit);

    /// A message from `rank` arrived.
    void heard(int rank, Clock::time_point now) noexcept {
        last_heard_[static_cast<std::size_t>(rank)] = now;
    }

    /// Whether it is time to look again (a few times a second: cheap to ask on every turn).
    bool due(Clock::time_point now) const noexcept { return limit_ && now >= next_look_; }

    /// Looks at the ranks: `waiting_for(rank)` says whether rank 0 waits for chunks from it.
    /// A rank's silence counts from whichever came last: its last message, or the look that
    /// found rank 0 waiting for it after a look that did not (it had no chunks to answer for
    /// before). Returns a rank silent for longer than the limit, if one is.
    /// A long gap since the last look means rank 0 itself did not run (the whole job stopped
    /// with Ctrl-Z and continued, say): every silence then counts from now.
    template <class WaitingFor>
    std::optional<int> look(Clock::time_point now, WaitingFor&& waiting_for) {
        const bool rank_0_paused = now - next_look_ > heartbeat_interval;
        next_look_ = now + look_period;
        std::optional<int> silent;
        for (std::size_t rank = 1; rank < last_heard_.size(); ++rank) {
            const bool waiting = waiting_for(static_cast<int>(rank));
            if (waiting && (!waited_[rank] || rank_0_paused)) {
                waiting_since_[rank] = now;
            }
            waited_[rank] = waiting;
            if (waiting && !silent &&
                now - std::max(last_heard_[rank], waiting_since_[rank]) > *limit_) {
                silent = static_cast<int>(rank);
            }
        }
        return silent;
    }

    std::chrono::seconds limit() const noexcept { return limit_.value_or(std::chrono::seconds(0)); }

  private:
    static constexpr std::chrono::milliseconds look_period{250};

    std::optional<std::chrono::seconds> limit_;
    Clock::time_point next_look_{};
    std::vector<Clock::time_point> last_heard_;
    std::vector<Clock::time_point> waiting_since_;
    std::vector<bool> waited_;
};

} // namespace mproc::detail
