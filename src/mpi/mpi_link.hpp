// SPDX-License-Identifier: MIT
#pragma once
// The MPI side of mproc::MpiPool, for one process: MPI's start and end, and the messages between
// rank 0 (the caller) and the worker ranks.
//
// No two threads of a process make MPI calls at once: on rank 0 only the hub thread makes them;
// on a worker rank the serving loop and the local pools' I/O threads make them under one mutex
// (RankLink, mpi_worker_rank.cpp); MPI_Init and MPI_Finalize happen while none of these runs. So
// MPI is started with MPI_THREAD_SERIALIZED. Messages travel on a communicator of mproc's own, so a
// program's own MPI traffic never meets them. Sends never block: a send that waits for its
// receiver (rendezvous, for large messages) would deadlock two ranks that both send.
//
// Messages a loop sends to one rank in one turn leave together, as one MPI message (a batch):
// one MPI message costs about as much as its payload's copy, so many small chunks or results
// cost one message, not one each. Nothing waits to be batched: a loop's sends leave when it
// next polls (receive()), which it does at once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

/// What a message is; its MPI tag. Every payload starts with the pool's id.
enum class MpiTag : int {
    open = 1,      // 0 -> rank: program id, worker processes, max tasks per child, initializer
    opened = 2,    // rank -> 0: host name
    refused = 3,   // rank -> 0: why (different program, no worker process could start)
    run = 4,       // 0 -> rank: request id, call id, the chunk's request (entry + payload)
    done = 5,      // rank -> 0: request id, worker pid, the entry's response (per-item outcomes)
    failed = 6,    // rank -> 0: request id, worker pid, one encoded exception for the chunk
    lost = 7,      // rank -> 0: request id, the worker process's loss (worker_loss.hpp), then
                   // the outcomes of the items it finished (as a crash report sends them)
    close = 8,     // 0 -> rank: no more requests; stop the pool's worker processes
    terminate = 9, // 0 -> rank: kill the pool's worker processes now
    closed = 10,   // rank -> 0: the pool's worker processes are gone (always the last message)
    shutdown = 11, // 0 -> rank: rank 0 is ending; finalize MPI and exit
    batch = 12,    // either way: several of the above, each as tag (int32), size (u64), payload
    unserved = 13, // rank -> 0: request id, message (no worker process could be started for it)
    cancel = 14,   // 0 -> rank: call id; the call was cancelled: drop its chunks, kill its
                   // running ones (their answers, if any, are ignored)
    alive = 15,    // rank -> 0, no payload (not even a pool id): the rank holds chunks and had
                   // nothing else to send for a while (rank_silence.hpp)
};

struct MpiMessage {
    int source = -1;
    MpiTag tag{};
    WireBytes payload;
};

/// This process's MPI connection. Created by start_mpi(); one per process.
class MpiLink {
  public:
    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }
    /// This rank's host name.
    const std::string& host() const noexcept { return host_; }

    /// Queues `payload` for `destination`; it leaves at the next receive() or flush(), in one
    /// MPI message with whatever else is queued for `destination` by then, then as MPI allows.
    void send(int destination, MpiTag tag, WireBytes payload);
    /// Sends what is queued, moves sends along and takes one arrived message into `message`, if
    /// there is one (a batch arrives as its messages, one per call, in order).
    bool receive(MpiMessage& message);
    /// Sends what is queued and moves sends along, receiving nothing.
    void push();
    /// Whether a message has arrived that receive() would return.
    bool message_waiting();
    /// Whether a send has not completed yet.
    bool sending() const noexcept { return !queued_.empty() || !sends_.empty(); }
    /// Whether a send moves on only while this side polls: one queued, or one in flight that is
    /// larger than what leaves eagerly (eager_message_limit: it goes in pieces, each needing a
    /// poll here). An eager send in flight needs nothing more from this side: its bytes are
    /// with the receiver, and it completes at whatever poll comes next.
    bool sends_need_polling() const noexcept { return !queued_.empty() || large_sends_ != 0; }

    /// What Open MPI sends eagerly over shared memory (btl_vader's 4 KiB eager limit, less
    /// room for its headers): batches stay within it.
    static constexpr std::size_t eager_message_limit = 4096 - 256;
    /// Completes every queued send (waits, receiving nothing).
    void flush();
    /// Ends the whole MPI job (MPI_Abort) after writing `why` to stderr. For what rank 0 cannot
    /// recover from: a worker rank that cannot be reached leaves MPI_Finalize nothing to wait for
    /// but it.
    [[noreturn]] void abort_job(const std::string& why);

  private:
    friend MpiLink& start_mpi();
    MpiLink();
    void send_queued();
    void start_send(int destination, MpiTag tag, WireBytes payload);
    void progress();

    struct QueuedMessage {
        int destination;
        MpiTag tag;
        WireBytes payload;
    };
    struct PendingSend {
        WireBytes payload;
        void* request; // MPI_Request, kept opaque here so this header needs no mpi.h
    };
    int rank_ = 0;
    int size_ = 1;
    std::string host_;
    void* communicator_ = nullptr;      // MPI_Comm
    std::vector<QueuedMessage> queued_; // sent by this turn of the loop, not handed to MPI yet
    std::deque<PendingSend> sends_;
    std::size_t large_sends_ = 0;     // those of sends_ larger than eager_message_limit
    std::deque<MpiMessage> unpacked_; // the rest of the last batch received

  public:
    // Counts for the trace (MPROC_TRACE=1): how well sends were batched.
    std::uint64_t messages_sent = 0;
    std::uint64_t mpi_messages_sent = 0;
};

/// Starts MPI in this process if it is not started yet (MPI_Init_thread, mproc's communicator).
/// On a worker rank (rank > 0) it then serves rank 0's pools until rank 0 ends, finalizes MPI
/// and exits the process with status 0: it returns only on rank 0, where MPI is finalized at
/// exit (after the worker ranks are told to end). Throws mproc::Error if MPI cannot start.
MpiLink& start_mpi();

/// Whether this process was started by an MPI launcher (mpirun, srun): its environment says so.
bool launched_by_mpi() noexcept;

/// How long a loop that polls MPI for messages waits between polls: it polls back to back for
/// `spin_us` after the last progress (a reply through a worker process comes within tens of
/// microseconds), then sleeps, longer and longer up to `longest_sleep_us`, so an idle rank costs
/// little CPU. Made on the polling thread: it sets that thread's timer slack, so that short
/// sleeps stay short.
///
/// When the loop can tell when the next message is due (expect()), it sleeps until shortly
/// before then and polls back to back from there instead: a message due in a millisecond is
/// then seen when it comes, not up to a longest sleep later, at little CPU.
class PollBackoff {
  public:
    using Clock = std::chrono::steady_clock;

    PollBackoff(unsigned spin_us, unsigned longest_sleep_us);
    /// Something happened: poll eagerly again.
    void reset() noexcept;
    /// The next message is due about `when` (a hint, recomputed before each wait); nullopt:
    /// no idea.
    void expect(std::optional<Clock::time_point> when) noexcept;
    /// How long to wait before the next poll, in microseconds (0: poll again at once).
    unsigned next_wait_us() noexcept;

  private:
    std::chrono::microseconds spinning_;
    unsigned longest_sleep_us_;
    unsigned idle_polls_ = 0;
    Clock::time_point last_progress_ = Clock::now();
    std::optional<Clock::time_point> expected_;
};

} // namespace mproc::detail
