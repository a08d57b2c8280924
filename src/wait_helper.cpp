// SPDX-License-Identifier: MIT
#include "mproc/detail/wait_helper.hpp"

#include "mproc/errors.hpp"

namespace mproc::detail {

namespace {

thread_local WaitHelper* calling_threads_helper = nullptr;

/// The helper of a thread that delivers results: it never helps, it refuses the wait.
class WaitRefusal final : public WaitHelper {
  public:
    bool run_one_queued_chunk() override {
        throw Error("mproc: a wait for a result on the thread that delivers a process pool's "
                    "results (in a callback, a done callback or a coroutine resumed there) "
                    "would never end: that result can only arrive through this thread; use "
                    "co_await or a callback instead, or wait on another thread");
    }
};

WaitRefusal wait_refusal;

} // namespace

WaitHelper* current_wait_helper() noexcept { return calling_threads_helper; }

void set_current_wait_helper(WaitHelper* helper) noexcept { calling_threads_helper = helper; }

void refuse_waits_on_this_thread() noexcept { calling_threads_helper = &wait_refusal; }

} // namespace mproc::detail
