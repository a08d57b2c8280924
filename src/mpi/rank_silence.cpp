// SPDX-License-Identifier: MIT
#include "rank_silence.hpp"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace mproc::detail {

std::optional<std::chrono::seconds> rank_silence_limit() {
    constexpr const char* variable = "MPROC_MPI_RANK_TIMEOUT";
    const char* value = std::getenv(variable);
    if (value == nullptr || *value == '\0') {
        return std::chrono::seconds(30);
    }
    char* end = nullptr;
    errno = 0;
    const long long seconds = std::strtoll(value, &end, 10);
    // Below 2 s a rank's heartbeat (every second) could come too late on a busy machine.
    constexpr long long longest = 100LL * 365 * 24 * 3600;
    if (errno != 0 || end == value || *end != '\0' || seconds < 0 || (seconds > 0 && seconds < 2) ||
        seconds > longest) {
        throw std::invalid_argument(std::string("mproc: ") + variable + "=" + value +
                                    ": give whole seconds, at least 2 (how long rank 0 waits "
                                    "for a word from a worker rank that holds its chunks), or 0 "
                                    "to never end the job for a silent rank");
    }
    if (seconds == 0) {
        return std::nullopt;
    }
    return std::chrono::seconds(seconds);
}

SilenceWatch::SilenceWatch(std::size_t ranks, std::optional<std::chrono::seconds> limit)
    : limit_(limit), last_heard_(ranks), waiting_since_(ranks), waited_(ranks, false) {}

} // namespace mproc::detail
