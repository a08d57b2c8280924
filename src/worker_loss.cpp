// SPDX-License-Identifier: MIT
#include "mproc/detail/wire/worker_loss.hpp"

#include <csignal>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include <sys/wait.h>

#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "process/crash_report.hpp"

namespace mproc::detail {

namespace {

/// "killed by signal 11 (Segmentation fault)", "exited with status 3", or empty when neither is
/// known.
std::string describe_death(const WorkerLoss& loss) {
    if (loss.signal != 0) {
        const char* name = sigdescr_np(loss.signal);
        return "killed by signal " + std::to_string(loss.signal) +
               (name != nullptr ? std::string(" (") + name + ")" : std::string());
    }
    if (loss.exit_status >= 0) {
        return "exited with status " + std::to_string(loss.exit_status);
    }
    return {};
}

} // namespace

std::string describe_exit(int wait_status) {
    WorkerLoss death;
    if (WIFSIGNALED(wait_status)) {
        death.signal = WTERMSIG(wait_status);
    } else if (WIFEXITED(wait_status)) {
        death.exit_status = WEXITSTATUS(wait_status);
    }
    const std::string described = describe_death(death);
    return described.empty() ? "ended" : described;
}

void settle_lost_chunk(Job& job, const Chunk& chunk, WorkerLoss loss,
                       WireReader& finished) noexcept {
    try {
        const bool names_item = loss.running_item < chunk.count;
        WorkerLost::Details details;
        details.worker_pid = loss.worker_pid;
        details.task_index = job.task_index(chunk, names_item ? loss.running_item : 0);
        details.signal = loss.signal;
        details.exit_status = loss.exit_status;
        details.retries = loss.retries;
        details.backtrace = std::move(loss.backtrace);

        std::string message = "mproc: worker process " + std::to_string(loss.worker_pid);
        if (!loss.origin.empty()) {
            message += " on " + loss.origin;
        }
        message += " died";
        if (!loss.died_with.empty()) {
            message += " with " + loss.died_with;
        } else if (const std::string death = describe_death(loss); !death.empty()) {
            message += " (" + death + ")";
        }
        message += " while running task " + std::to_string(details.task_index);
        if (!names_item && chunk.count > 1) {
            message +=
                " or one of the " + std::to_string(chunk.count - 1) + " after it (its chunk)";
        }
        if (loss.retries != 0) {
            message += ", after " + std::to_string(loss.retries) + " retries";
        }
        if (!loss.killed_for.empty()) {
            message += "; it was killed for sending a malformed frame: " + loss.killed_for;
        }

        auto lost = std::make_exception_ptr(WorkerLost(message, std::move(details)));
        if (names_item) {
            // Whether they decode or not, the worker is gone already.
            (void)wire_of(job).complete_chunk(chunk, finished, loss.worker_pid, std::move(lost));
        } else {
            // Moved, not copied: the caller must hold the last reference (see ProcessBackend).
            job.cancel_chunk(chunk, std::move(lost));
        }
    } catch (...) {
        job.cancel_chunk(chunk, std::current_exception()); // out of memory for the report
    }
}

void encode_worker_loss(WireWriter& out, const WorkerLoss& loss) {
    out.write(static_cast<std::int64_t>(loss.worker_pid));
    out.write(static_cast<std::int32_t>(loss.signal));
    out.write(static_cast<std::int32_t>(loss.exit_status));
    out.write(loss.retries);
    out.write(loss.running_item);
    out.write_string(loss.killed_for);
    out.write_string(loss.died_with);
    out.write(static_cast<std::uint32_t>(loss.backtrace.size()));
    for (const StackFrame& frame : loss.backtrace) {
        out.write(static_cast<std::uint64_t>(frame.offset));
        out.write_string(frame.module);
    }
}

WorkerLoss decode_worker_loss(WireReader& in) {
    WorkerLoss loss;
    loss.worker_pid = static_cast<long>(in.read<std::int64_t>());
    loss.signal = in.read<std::int32_t>();
    if (loss.signal < 0 || loss.signal >= NSIG) {
        throw WireError("mproc: a worker's loss names no signal");
    }
    loss.exit_status = in.read<std::int32_t>();
    if (loss.exit_status < -1 || loss.exit_status > 255) {
        throw WireError("mproc: a worker's loss names no exit status");
    }
    loss.retries = in.read<std::uint32_t>();
    loss.running_item = in.read<std::uint64_t>();
    loss.killed_for = in.read_string();
    loss.died_with = in.read_string();
    const auto count = in.read<std::uint32_t>();
    if (count > max_crash_frames) {
        throw WireError("mproc: a worker's loss with too many frames");
    }
    loss.backtrace.resize(count);
    for (StackFrame& frame : loss.backtrace) {
        frame.offset = static_cast<std::uintptr_t>(in.read<std::uint64_t>());
        frame.module = in.read_string();
        if (frame.module.size() > max_module_path) {
            throw WireError("mproc: a worker's loss with an overlong module path");
        }
    }
    return loss;
}

} // namespace mproc::detail
