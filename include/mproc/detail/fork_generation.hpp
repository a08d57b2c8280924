// SPDX-License-Identifier: MIT
#pragma once
// A process forked from a pool's owner (fork() without exec) holds a copy of the pool object, but
// none of its threads, and shares its sockets with the owner: were the copy's destructor to run
// there (returning out of the pool's scope, a static pool at exit()), it would shut the owner's
// fork server down and wait for threads that do not exist in the copy. A pool remembers the
// generation it was made in and, in a later one, refuses calls and leaves the copy alone, as
// Python's multiprocessing ignores a finalizer in a process other than its own.

#include <cstdint>

namespace mproc::detail {

/// 0 in the process that first asks; one more in each child forked (with fork(), whose
/// pthread_atfork handlers run) after that. Lock-free, no system call.
std::uint64_t fork_generation() noexcept;

} // namespace mproc::detail
