// SPDX-License-Identifier: MIT
#pragma once
// A worker process that died while it ran a chunk, as facts in the chunk's own terms, and the one
// place they become the caller's mproc::WorkerLost. The process backend learns the facts where
// the worker ran; an MPI worker rank relays them to rank 0 unchanged (with the outcomes the
// worker finished), so that the caller's error is made from the caller's own chunk: its item
// index in the call, its chunk size, and every detail, whichever backend ran it.
//
// Wire format (encode_worker_loss): int64 pid, int32 signal, int32 exit status, uint32 retries,
// uint64 running item, string killed_for, string died_with, uint32 frame count, then per frame
// uint64 offset and string module.

#include <cstdint>
#include <string>
#include <vector>

#include "mproc/errors.hpp"

namespace mproc::detail {

class Job;
struct Chunk;
class WireReader;
class WireWriter;

struct WorkerLoss {
    static constexpr std::uint64_t no_item = ~std::uint64_t{0};

    long worker_pid = 0;
    int signal = 0;       // the signal that killed it, or 0
    int exit_status = -1; // its exit status when it exited, or -1
    std::uint32_t retries = 0;
    // The item (within its chunk) its crash report named; no_item when it sent none, or died
    // between items.
    std::uint64_t running_item = no_item;
    std::vector<StackFrame> backtrace; // innermost first; empty without a crash report
    std::string killed_for;            // why mproc killed it, when it did (a malformed frame)
    // What took it down with it, when its death was not its own: "the pool's fork server (pid 7;
    // killed by signal 9 (Killed))". Its own status went with that process.
    std::string died_with;
    std::string origin; // where it ran, when not here: "MPI rank 2 (host node7)"
};

/// Ends `chunk` of `job`, whose worker died: when the crash report named the item running, the
/// items before it keep their outcomes (`finished`, as the report sent them) and that item and
/// the ones after it end with the WorkerLost; otherwise every item of the chunk ends with it.
void settle_lost_chunk(Job& job, const Chunk& chunk, WorkerLoss loss,
                       WireReader& finished) noexcept;

/// "killed by signal 11 (Segmentation fault)", "exited with status 3" for a wait status.
std::string describe_exit(int wait_status);

/// For a worker rank's relay to rank 0; decoding checks every field (WireError).
void encode_worker_loss(WireWriter& out, const WorkerLoss& loss);
WorkerLoss decode_worker_loss(WireReader& in);

} // namespace mproc::detail
