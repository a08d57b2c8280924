// SPDX-License-Identifier: MIT
#pragma once
// What a worker rank (rank > 0) of mproc::MpiPool does.

namespace mproc::detail {

class MpiLink;

/// Serves rank 0's pools until rank 0 says the job ends. Each pool rank 0 opens here becomes a
/// local process pool (the process backend: a fork server and supervised worker processes), so a
/// task that crashes costs its chunk a WorkerLost, never the rank. Chunks arrive already encoded
/// and their results leave as the worker process wrote them: this rank only relays bytes. A pool
/// opened in_rank is served in this process instead (in_rank_pool.hpp): the serving loop runs
/// its chunks with the worker processes' own code, and a crash ends the rank.
void serve_worker_rank(MpiLink& link);

} // namespace mproc::detail
