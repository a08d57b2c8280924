// SPDX-License-Identifier: MIT
#include "mproc/detail/wait_helper.hpp"

namespace mproc::detail {

namespace {
thread_local WaitHelper* calling_threads_helper = nullptr;
}

WaitHelper* current_wait_helper() noexcept { return calling_threads_helper; }

void set_current_wait_helper(WaitHelper* helper) noexcept { calling_threads_helper = helper; }

} // namespace mproc::detail
