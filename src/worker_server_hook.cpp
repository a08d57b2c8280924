// SPDX-License-Identifier: MIT
#include "worker_server_hook.hpp"

#include <atomic>

namespace mproc::detail {
namespace {
// Constant-initialised, so a registration from another translation unit's static initialiser
// cannot run before it.
constinit std::atomic<WorkerServer> registered{nullptr};
} // namespace

void register_worker_server(WorkerServer server) noexcept {
    registered.store(server, std::memory_order_release);
}

WorkerServer registered_worker_server() noexcept {
    return registered.load(std::memory_order_acquire);
}

} // namespace mproc::detail
