// SPDX-License-Identifier: MIT
#pragma once
// Starting a fresh run of this program as a worker or fork server (spawn / forkserver), and the
// environment protocol between the two: the other end is mproc::serve_if_worker (rerun.cpp).

#include <sys/types.h>

#include <string>

#include "mproc/initializer.hpp"

namespace mproc::detail {

/// Starts /proc/self/exe with the caller's arguments and environment, plus MPROC_SPAWNED=`role`
/// and the portable initializer, with `channel_fd` as its fd 3 and no other descriptor but
/// stdio. The child is a direct child of the calling thread. Throws std::system_error, or
/// std::invalid_argument when the initializer is not transportable.
pid_t spawn_this_program(int channel_fd, const std::string& role, const Initializer& initializer);

/// Called where a pool starts: in a process spawned as a worker whose main did not call
/// serve_if_worker, a pool would spawn workers of its own without end; print why and exit.
void refuse_pool_in_unserved_worker() noexcept;

} // namespace mproc::detail
