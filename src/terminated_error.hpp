// SPDX-License-Identifier: MIT
#pragma once

#include <exception>

namespace mproc::detail {

/// What a chunk ends with when its pool is terminated before it finished: PoolTerminated.
std::exception_ptr terminated_error();

} // namespace mproc::detail
