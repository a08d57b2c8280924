// SPDX-License-Identifier: MIT
#include "mproc/detail/job.hpp"

#include "mproc/errors.hpp"

namespace mproc::detail {

std::uint64_t Job::next_call_number() noexcept {
    static std::atomic<std::uint64_t> calls{0};
    return calls.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::exception_ptr unwanted_chunk_reason() {
    static const std::exception_ptr reason =
        std::make_exception_ptr(Error("mproc: nobody reads this result any more"));
    return reason;
}

std::exception_ptr cancelled_call_error() {
    static const std::exception_ptr error =
        std::make_exception_ptr(Cancelled("mproc: the call was cancelled"));
    return error;
}

} // namespace mproc::detail
