// SPDX-License-Identifier: MIT
#include "mproc/errors.hpp"

#include "backtrace_text.hpp"

namespace mproc {

RemoteError::RemoteError(std::string type_name, std::string message, long worker_pid,
                         unsigned long long task_index, std::string origin)
    : Error(type_name + ": " + message + " (in worker pid " + std::to_string(worker_pid) +
            (origin.empty() ? std::string() : " on " + origin) + ", task " +
            std::to_string(task_index) + ")"),
      type_name_(std::move(type_name)), message_(std::move(message)), worker_pid_(worker_pid),
      task_index_(task_index), origin_(std::move(origin)) {}

WorkerLost::WorkerLost(const std::string& message)
    : Error(message), details_(std::make_shared<const Details>()) {}

WorkerLost::WorkerLost(const std::string& message, Details details)
    : Error(message), details_(std::make_shared<const Details>(std::move(details))) {}

std::string WorkerLost::backtrace() const { return detail::backtrace_text(details_->backtrace); }

TaskTimeout::TaskTimeout(const std::string& message, long worker_pid, unsigned long long task_index)
    : Error(message), worker_pid_(worker_pid), task_index_(task_index) {}

} // namespace mproc

namespace mproc::detail {

void throw_invalid_argument(const char* parameter, const std::string& requirement, long long got) {
    throw std::invalid_argument("mproc: " + std::string(parameter) + " " + requirement + " (got " +
                                std::to_string(got) + ")");
}

} // namespace mproc::detail
