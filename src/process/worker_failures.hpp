// SPDX-License-Identifier: MIT
#pragma once
// What the chunks of a lost worker process end with (process_backend.cpp): the answers it held
// back settle theirs, the running one ends with the worker's death (a WorkerLost made of what is
// known of it), its time limit (TaskTimeout) or the pool's termination, or runs again; the ones
// waiting behind it never started and go back to the queue.

#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fork_server.hpp"
#include "mproc/detail/job.hpp"
#include "worker_state.hpp"

namespace mproc::detail {

/// The wait statuses of ended workers, as the launcher reports them, kept until their chunks
/// are settled.
class ExitStatuses {
  public:
    void record(const WorkerLauncher::Event& event);
    /// The wait status of `pid`, taken from those recorded. The launcher may report it just
    /// after the worker's end of stream: while it has not, `wait_a_moment` is called (up to 50
    /// times), which polls the launcher briefly, or returns false when waiting is pointless.
    /// Empty if it does not come, or if the kernel reaped the worker unseen (exited_unseen).
    std::optional<int> take(pid_t pid, const std::function<bool()>& wait_a_moment);

  private:
    std::unordered_map<pid_t, std::optional<int>> statuses_;
};

/// How a lost worker ended, as far as the caller knows.
struct WorkerEnd {
    std::optional<int> status; // its wait status
    // What took it down with it, when the fork server it came from was lost: its own status
    // went with that process.
    std::string died_with;
    std::exception_ptr untrusted; // why it was killed, when for what it sent
};

/// Settles a chunk here rather than with an answer: every item ends with `reason`.
void settle_cancelled(Chunk& chunk, std::exception_ptr reason);

/// The TaskTimeout of `chunk`, whose worker `pid` was killed for running past its time limit.
std::exception_ptr timeout_error(pid_t pid, const Chunk& chunk);

/// Ends a chunk whose worker died: what is known of the death goes to the chunk's job, which
/// makes the caller's WorkerLost of it (settle_lost_chunk) or passes it on.
void settle_lost(WorkerProcess& worker, Chunk& chunk, WorkerEnd end);

/// A worker that ended may have posted an answer in its fast lane (fast_lane.hpp) that was not
/// taken yet: it settles the front of its window, as it would have had it lived.
void settle_lane_answer(WorkerProcess& worker);

/// A worker that ended may have died holding answers back (held_answers.hpp): they settle the
/// front of its window, in order, before the chunk after them is blamed for its end.
void settle_held_answers(WorkerProcess& worker);

/// How the chunks in a lost worker's window end.
struct LostWindow {
    bool terminating;               // the pool is terminating: every chunk ends with PoolTerminated
    bool retry_allowed;             // another worker can still be started to run the chunk again
    std::size_t max_retries;        // how often a chunk may run again
    std::function<WorkerEnd()> end; // asked only when the running chunk ends with the loss
};

/// Settles the chunks in the window of a lost worker and empties it; returns those that go back
/// to the front of the queue, in their order: the running chunk when it may run again, and the
/// chunks behind it, which never started (the loss is not theirs: no retry counted).
std::vector<Chunk*> settle_lost_window(WorkerProcess& worker, const LostWindow& how);

} // namespace mproc::detail
