// SPDX-License-Identifier: MIT
#include "pool_start.hpp"

#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <system_error>

#include "mproc/errors.hpp"
#include "process/rerun.hpp"
#include "process/spawn.hpp"
#include "standard_streams.hpp"

namespace mproc::detail {
namespace {

constexpr const char* unserved_worker_hint =
    "mproc: a worker process of the pool ended before it started serving; with the spawn and "
    "forkserver start methods, main() must call mproc::serve_if_worker(argc, argv) first";

} // namespace

std::unique_ptr<WorkerLauncher> make_launcher(const ValidatedOptions& options) {
    refuse_pool_in_unserved_worker();
    reserve_standard_streams(); // before the launcher opens its first descriptor
    if (options.start_method == StartMethod::spawn) {
        return std::make_unique<SpawnLauncher>(options.initializer);
    }
    return std::make_unique<ForkServer>(options.start_method, options.initializer);
}

WorkerLauncher::Event read_first_event(WorkerLauncher& launcher, StartMethod start_method) {
    try {
        return launcher.read_event();
    } catch (const std::system_error&) {
        if (start_method == StartMethod::forkserver) {
            throw Error(unserved_worker_hint); // the re-executed server never served
        }
        throw;
    }
}

void await_hello(WorkerProcess& worker) {
    FrameKind kind{};
    std::span<const std::byte> payload;
    pollfd channel{worker.fd, POLLIN, 0};
    if (::poll(&channel, 1, 60'000) <= 0 || !worker.answers.next(worker.fd, kind, payload) ||
        kind != FrameKind::hello) {
        throw Error(unserved_worker_hint);
    }
    WireReader hello(payload.data(), payload.size());
    hello.read<std::uint64_t>(); // the program id: the server forked or ran this program
    worker.greeted(hello);
    worker.ready = true;
}

int limit_address_space(pid_t pid, std::size_t bytes) noexcept {
    rlim_t limited = bytes;
    rlimit inherited{};
    if (prlimit(pid, RLIMIT_AS, nullptr, &inherited) == 0) {
        limited = std::min(limited, inherited.rlim_max);
    }
    const rlimit limit{limited, limited};
    return prlimit(pid, RLIMIT_AS, &limit, nullptr) == 0 ? 0 : errno;
}

} // namespace mproc::detail
