// SPDX-License-Identifier: MIT
#include "mproc/detail/job.hpp"

#include "mproc/errors.hpp"

namespace mproc::detail {

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
