// SPDX-License-Identifier: MIT
#include "terminated_error.hpp"

#include "mproc/errors.hpp"

namespace mproc::detail {

std::exception_ptr terminated_error() {
    return std::make_exception_ptr(
        PoolTerminated("mproc: the pool was terminated before this task finished"));
}

} // namespace mproc::detail
