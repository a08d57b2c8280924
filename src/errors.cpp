#include "mproc/errors.hpp"

namespace mproc {

RemoteError::RemoteError(std::string type_name, std::string message, long worker_pid,
                         unsigned long long task_index, std::string origin)
    : Error(type_name + ": " + message + " (in worker pid " + std::to_string(worker_pid) +
            (origin.empty() ? std::string() : " on " + origin) + ", task " +
            std::to_string(task_index) + ")"),
      type_name_(std::move(type_name)), message_(std::move(message)), worker_pid_(worker_pid),
      task_index_(task_index), origin_(std::move(origin)) {}

} // namespace mproc

namespace mproc::detail {

void throw_invalid_argument(const char* parameter, const std::string& requirement, long long got) {
    throw std::invalid_argument("mproc: " + std::string(parameter) + " " + requirement + " (got " +
                                std::to_string(got) + ")");
}

} // namespace mproc::detail
