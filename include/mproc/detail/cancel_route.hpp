// SPDX-License-Identifier: MIT
#pragma once
// How an AsyncResult reaches the pool that runs its call, to cancel it. The result may outlive
// the pool: the pool cuts the route as it goes, and a cancel then finds nobody (by then every
// call of the pool has ended, so there is nothing to cancel).

#include <mutex>

#include "mproc/detail/job.hpp"

namespace mproc::detail {

/// The pool's side: cancels a job of its own (PoolBackend::cancel).
class JobCanceller {
  public:
    virtual bool cancel_job(Job& job) = 0;

  protected:
    ~JobCanceller() = default;
};

class CancelRoute {
  public:
    explicit CancelRoute(JobCanceller& pool) noexcept : pool_(&pool) {}

    /// False when the pool is gone.
    bool cancel(Job& job) {
        const std::lock_guard lock(mutex_);
        return pool_ != nullptr && pool_->cancel_job(job);
    }

    /// Called by the pool as it goes: waits for a cancel under way, and no later one reaches it.
    void cut() noexcept {
        const std::lock_guard lock(mutex_);
        pool_ = nullptr;
    }

  private:
    // Recursive: cancelling settles chunks on the cancelling thread, and a callback run there
    // may cancel another call of the same pool.
    std::recursive_mutex mutex_;
    JobCanceller* pool_;
};

} // namespace mproc::detail
