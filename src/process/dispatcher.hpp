// SPDX-License-Identifier: MIT
#pragma once
// Which queued chunk goes to which worker process, written into the worker's outbox.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"
#include "submission_queue.hpp"
#include "worker_state.hpp"

namespace mproc::detail {

/// An idle worker gets the chunk at the front of the queue. A worker running a chunk gets more
/// chunks of the same job queued behind it, up to its pipelined window (pipeline_window.hpp)
/// and to what fits in its socket, so that it never waits a round trip between chunks. Used by
/// the I/O thread only.
class Dispatcher {
  public:
    using Workers = std::vector<std::unique_ptr<WorkerProcess>>;

    /// `server_generation` is the backend's count of fork servers replaced: a worker of an
    /// older one is dying with its server and takes nothing.
    Dispatcher(const ValidatedOptions& options, SubmissionQueue& queue,
               const std::uint64_t& server_generation)
        : options_(options), queue_(queue), server_generation_(server_generation) {}

    /// Gives every idle worker a chunk, while there are chunks; then tops up the windows of
    /// the workers whose chunks are short (breadth first: a window grows only when no worker is
    /// idle); then sends what each outbox holds.
    void dispatch(const Workers& workers);
    /// After `worker` answered a chunk: gives it the next if it is idle, or tops up its window
    /// when that is due and no other worker is idle; then sends its outbox.
    void refill(WorkerProcess& worker, const Workers& workers);
    /// Puts chunks taken from the queue back at its front, in their order; settles them
    /// instead if the pool was terminated since they were taken (terminate() emptied the queue
    /// then, and nobody would ever take them from it).
    void requeue(std::span<Chunk* const> chunks);

  private:
    enum class Added { sent, settled, too_big };

    bool may_take(const WorkerProcess& worker) const noexcept;
    bool has_room_behind(const WorkerProcess& worker) const noexcept;
    bool needs_refill(const WorkerProcess& worker) const noexcept;
    bool any_idle_worker(const Workers& workers) const noexcept;
    std::chrono::nanoseconds time_limit(const Chunk& chunk) const noexcept;
    bool take_queued(WorkerProcess& worker, bool behind);
    Added add_to_outbox(WorkerProcess& worker, Chunk* chunk, bool behind);
    static bool post_in_lane(WorkerProcess& worker, std::size_t header);

    const ValidatedOptions& options_;
    SubmissionQueue& queue_;
    const std::uint64_t& server_generation_;
};

} // namespace mproc::detail
