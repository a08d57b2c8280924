// SPDX-License-Identifier: MIT
#pragma once
// A backend's queue of chunks not yet handed to a worker: taking one job's out of it, for
// AsyncResult::cancel.

#include <algorithm>
#include <deque>

#include "mproc/detail/job.hpp"

namespace mproc::detail {

/// Removes the chunks of `job` from `queue` and hands them back, in queue order. The caller
/// holds the queue's lock.
inline std::deque<Chunk*> take_job_chunks(std::deque<Chunk*>& queue, const Job& job) {
    std::deque<Chunk*> taken;
    std::erase_if(queue, [&](Chunk* chunk) {
        if (chunk->job != &job) {
            return false;
        }
        taken.push_back(chunk);
        return true;
    });
    return taken;
}

} // namespace mproc::detail
