#include "mproc/errors.hpp"

namespace mproc::detail {

void throw_invalid_argument(const char* parameter, const std::string& requirement, long long got) {
    throw std::invalid_argument("mproc: " + std::string(parameter) + " " + requirement + " (got " +
                                std::to_string(got) + ")");
}

} // namespace mproc::detail
