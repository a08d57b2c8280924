// SPDX-License-Identifier: MIT
#pragma once
// The wire half of a job: what a backend that runs chunks in other processes (the process and
// MPI backends) needs beyond the core Job (job.hpp). Each call kind's wire half is a class that
// derives from its core job and from WireJob (apply_wire_job.hpp, map_wire_job.hpp,
// imap_wire_job.hpp); wire_job_t names it, so that the front end builds it for exactly the
// backends that ask for it (their `job_type`).

#include <exception>

#include "mproc/detail/job.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/worker_loss.hpp"

namespace mproc::detail {

class WireJob {
  public:
    /// Writes the request a worker process needs to run the chunk (the entry's name, the
    /// callable, the items). Throws if a value cannot be encoded; the backend then cancels the
    /// chunk with that error.
    virtual void encode_chunk(const Chunk& chunk, WireWriter& request) = 0;

    /// Reads the worker's response for the chunk and settles it. A response that does not
    /// decode ends the chunk's remaining items with the decoding error. With `lost` set, the
    /// worker died part-way: the response holds the outcomes of the items it finished, and
    /// every item after them ends with `lost`. Returns false when the response did not decode
    /// (the chunk is settled all the same): the worker is not to be trusted.
    virtual bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                                std::exception_ptr lost) noexcept = 0;

    /// The chunk's worker died (`loss`, in the chunk's terms); `finished` holds the outcomes of
    /// the items it finished, as its crash report sent them. Settles the chunk with the
    /// caller's mproc::WorkerLost (settle_lost_chunk); a job that hands its chunks on to
    /// another process (an MPI worker rank's) passes the loss on instead.
    virtual void lose_chunk(const Chunk& chunk, WorkerLoss loss, WireReader& finished) noexcept {
        settle_lost_chunk(*chunk.job, chunk, std::move(loss), finished);
    }

  protected:
    ~WireJob() = default;
};

/// The wire half of the core job `CoreJob`: specialised beside each wire job.
template <class CoreJob>
struct WireJobFor;

template <class CoreJob>
using wire_job_t = typename WireJobFor<CoreJob>::type;

/// The wire half of `job`, which a backend that crosses processes always has (its job_type).
inline WireJob& wire_of(Job& job) noexcept { return *job.wire(); }

} // namespace mproc::detail
