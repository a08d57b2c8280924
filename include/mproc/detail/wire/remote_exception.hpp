// SPDX-License-Identifier: MIT
#pragma once
// Exceptions that cross a process boundary: a task's exception, thrown in a worker process, is
// re-thrown in the caller.
//
// The worker sends which standard type the exception is (exactly, by typeid: a user type
// derived from std::runtime_error is not a std::runtime_error here), its demangled dynamic type
// name and its what(). The caller re-creates the standard types as themselves, with the same
// message, so `catch (const std::invalid_argument&)` works as it does with the thread pool;
// everything else becomes mproc::RemoteError carrying the type name, the message, the worker's
// pid and the task's index.
//
// mproc's own errors are re-created only as mproc::Error itself: a TimeoutError or WorkerLost
// thrown inside a task (by a pool the task used) must not be mistaken for the caller's own
// get() timing out or its own worker dying, so those become RemoteError.

#include <exception>
#include <string>

#include "mproc/detail/wire/wire.hpp"

namespace mproc {
class RemoteError;
}

namespace mproc::detail {

/// Appends a description of `error` to `out` (worker side): which standard type it is, its
/// demangled dynamic type name, and its what() (for a non-std::exception such as `throw 42` or
/// `throw "text"`, the value where it is a string or a number, else empty).
/// @throws std::invalid_argument if `error` is null; std::bad_alloc; whatever the exception's
///     what() throws.
void encode_exception(WireWriter& out, std::exception_ptr error);

/// Re-creates an exception written by encode_exception (caller side).
/// @param worker_pid the worker process that ran the task, recorded in a RemoteError.
/// @param task_index the item's index within its call (0 for apply), recorded in a RemoteError.
/// @returns the standard exception re-created with its message, mproc::Error, or
///     mproc::RemoteError for any other type.
/// @throws WireError if the bytes are truncated or name no known kind; std::bad_alloc.
std::exception_ptr decode_exception(WireReader& in, long worker_pid, unsigned long long task_index);

/// Writes what a RemoteError knows of the exception it stands for (its type name and message),
/// so that a relay (an MPI rank passing on its worker process's failure) re-sends the original
/// exception rather than a RemoteError about it.
void encode_remote_error(WireWriter& out, const RemoteError& error);

/// While alive, exceptions decoded on this thread name where their worker ran (`where`, e.g.
/// "MPI rank 2 (host node7)"): a RemoteError in its message and origin(); a re-created standard
/// exception keeps its own what() and carries the place as a nested mproc::Error (reach it with
/// std::rethrow_if_nested). One per thread at a time.
class RemoteOriginScope {
  public:
    explicit RemoteOriginScope(const std::string& where) noexcept;
    ~RemoteOriginScope();
    RemoteOriginScope(const RemoteOriginScope&) = delete;
    RemoteOriginScope& operator=(const RemoteOriginScope&) = delete;
};

} // namespace mproc::detail
