// SPDX-License-Identifier: MIT
#pragma once
/// @file errors.hpp
/// The exceptions mproc itself throws. Exceptions thrown by tasks are not wrapped: on the thread
/// pool the caller receives the very same exception object the task threw.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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

/// A process pool lost what starts its workers (its fork server died, and so did the standby
/// that replaces it) and can run nothing more: every pending and later task of the pool ends
/// with this error (Python's `BrokenProcessPool`). Destroy the pool and make a new one.
class PoolBroken : public Error {
  public:
    using Error::Error;
};

/// `AsyncResult::get(timeout)` or `ResultStream::next(timeout)` ran out of time. The result stays
/// usable: a later call can still return the value.
class TimeoutError : public Error {
  public:
    using Error::Error;
};

/// The call was cancelled (`AsyncResult::cancel()` returned true) before it ended: its
/// `get()` throws this (Python's `CancelledError`).
class Cancelled : public Error {
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
    /// What the worker reported; `origin` is where it was thrown, when known.
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

/// One frame of a worker's native backtrace: the module (shared object or executable, by path)
/// and the code's offset from where that module was loaded, which is what `addr2line -e module`
/// takes. An empty module means the address was outside every module the worker knew of; the
/// offset is then the raw address.
struct StackFrame {
    std::string module;        ///< the module's path, or empty when unknown
    std::uintptr_t offset = 0; ///< the offset in the module, or the raw address
};

/// The worker process running a task died (a signal, or an exit) before reporting its result.
/// Process pools only. Where the worker died of a fatal signal it could catch (SIGSEGV,
/// SIGABRT from abort() or std::terminate, SIGBUS, SIGFPE, SIGILL, ...), it sent its native
/// backtrace first: `backtrace()` prints it, symbolised.
class WorkerLost : public Error {
  public:
    /// What is known about the death; fields stay at their defaults when unknown.
    struct Details {
        long worker_pid = 0;               ///< the worker process, or 0
        unsigned long long task_index = 0; ///< the item (within its call) that was running
        int signal = 0;                    ///< the signal that killed the worker, or 0
        int exit_status = -1;              ///< its exit status when it exited, or -1
        unsigned retries = 0;              ///< how often the task had been re-run before
        std::vector<StackFrame> backtrace; ///< innermost first; empty when none was sent
    };

    /// A loss with nothing more known than `message` (e.g. no worker could be started).
    explicit WorkerLost(const std::string& message);
    /// A loss and what is known about it.
    WorkerLost(const std::string& message, Details details);

    /// The worker process that died (0 when unknown).
    long worker_pid() const noexcept { return details_->worker_pid; }
    /// The index of the task (the item within its call; 0 for apply) the worker was running.
    /// With chunksize > 1 and no backtrace, the worker may have been running any item of the
    /// chunk: this is then the chunk's first item.
    unsigned long long task_index() const noexcept { return details_->task_index; }
    /// The signal that killed the worker (SIGSEGV, SIGKILL, ...), or 0 if it exited.
    int signal() const noexcept { return details_->signal; }
    /// The worker's exit status if it exited (e.g. 3 for `_exit(3)`), or -1.
    int exit_status() const noexcept { return details_->exit_status; }
    /// How many times the task had already been re-run (`PoolOptions::max_retries`).
    unsigned retries() const noexcept { return details_->retries; }
    /// The worker's native backtrace at the fatal signal, innermost frame first; empty when the
    /// worker could not send one (SIGKILL, `_exit`, the OOM killer).
    const std::vector<StackFrame>& backtrace_frames() const noexcept { return details_->backtrace; }
    /// The backtrace as text, one frame a line, symbolised with `addr2line` (function, file and
    /// line) when it is installed and the module has symbols, else "module+0xoffset". Runs
    /// addr2line on every call: meant for reports, not loops. Empty when there is no backtrace.
    std::string backtrace() const;

  private:
    std::shared_ptr<const Details> details_; // shared: exceptions are copied when thrown
};

/// A task ran past its hard time limit (`PoolOptions::task_timeout`, or `mproc::with_timeout`
/// for one call): its worker process was killed and replaced. Process pools only. Unlike
/// `TimeoutError` from `get(timeout)`, which only stops waiting, the task itself is gone.
class TaskTimeout : public Error {
  public:
    /// The task `task_index` ran past its limit on `worker_pid`.
    TaskTimeout(const std::string& message, long worker_pid, unsigned long long task_index);

    /// The worker process that was killed.
    long worker_pid() const noexcept { return worker_pid_; }
    /// The index of the task (its chunk's first item, for chunksize > 1).
    unsigned long long task_index() const noexcept { return task_index_; }

  private:
    long worker_pid_;
    unsigned long long task_index_;
};

namespace detail {
/// The one place argument checks throw from: `std::invalid_argument` whose message names the
/// parameter, e.g. "mproc: workers must be positive (got 0)".
[[noreturn]] void throw_invalid_argument(const char* parameter, const std::string& requirement,
                                         long long got);
} // namespace detail

} // namespace mproc
