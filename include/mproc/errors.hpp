#pragma once
/// @file errors.hpp
/// The exceptions mproc itself throws. Exceptions thrown by tasks are not wrapped: on the thread
/// pool the caller receives the very same exception object the task threw.

#include <stdexcept>
#include <string>

namespace mproc {

/// Root of every exception that mproc throws for its own reasons (catch `mproc::Error` to catch
/// them all). Invalid arguments are reported with `std::invalid_argument` instead, as the
/// standard library does.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A call was made on a pool after `close()` or `terminate()` (Python raises ValueError
/// "Pool not running").
class PoolNotRunning : public Error {
  public:
    using Error::Error;
};

/// `join()` was called while the pool still accepts work: call `close()` or `terminate()` first
/// (Python raises ValueError).
class PoolStillRunning : public Error {
  public:
    using Error::Error;
};

/// A result that was still pending when the pool was terminated (or destroyed). Python leaves
/// such results pending for ever; mproc ends them with this error.
class PoolTerminated : public Error {
  public:
    using Error::Error;
};

/// `AsyncResult::get(timeout)` or `ResultStream::next(timeout)` ran out of time. The result stays
/// usable: a later call can still return the value.
class TimeoutError : public Error {
  public:
    using Error::Error;
};

/// `AsyncResult::successful()` was asked before the result was ready (Python raises ValueError).
class ResultNotReady : public Error {
  public:
    using Error::Error;
};

/// A task of a process or MPI pool threw an exception that is not one of the standard types
/// mproc re-throws as themselves (std::runtime_error, std::invalid_argument, ...). Carries what
/// the worker knew about it.
class RemoteError : public Error {
  public:
    RemoteError(std::string type_name, std::string message, long worker_pid,
                unsigned long long task_index, std::string origin = {});

    /// The exception's dynamic type, demangled (e.g. "my::ParseError").
    const std::string& type_name() const noexcept { return type_name_; }
    /// Its what().
    const std::string& message() const noexcept { return message_; }
    /// The worker process that ran the task.
    long worker_pid() const noexcept { return worker_pid_; }
    /// The item's index within its call (0 for apply).
    unsigned long long task_index() const noexcept { return task_index_; }
    /// Where the worker ran when it is not this machine's: "MPI rank 2 (host node7)" for
    /// `mproc::MpiPool`; empty for `mproc::Pool`.
    const std::string& origin() const noexcept { return origin_; }

  private:
    std::string type_name_;
    std::string message_;
    long worker_pid_;
    unsigned long long task_index_;
    std::string origin_;
};

/// The worker process running a task died (signal or exit) before reporting its result.
class WorkerLost : public Error {
  public:
    using Error::Error;
};

namespace detail {
/// The one place argument checks throw from: `std::invalid_argument` whose message names the
/// parameter, e.g. "mproc: workers must be positive (got 0)".
[[noreturn]] void throw_invalid_argument(const char* parameter, const std::string& requirement,
                                         long long got);
} // namespace detail

} // namespace mproc
