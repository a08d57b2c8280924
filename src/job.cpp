// SPDX-License-Identifier: MIT
#include "mproc/detail/job.hpp"

#include "mproc/errors.hpp"

namespace mproc::detail {

std::exception_ptr unwanted_chunk_reason() {
    static const std::exception_ptr reason =
        std::make_exception_ptr(Error("mproc: nobody reads this result any more"));
    return reason;
}

} // namespace mproc::detail
