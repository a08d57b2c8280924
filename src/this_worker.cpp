// SPDX-License-Identifier: MIT
#include "mproc/this_worker.hpp"

#include <atomic>

namespace mproc {
namespace {
thread_local std::uint64_t current_worker_id = 0;
std::atomic<std::uint64_t> last_worker_id{0};
} // namespace

std::uint64_t this_worker::id() noexcept { return current_worker_id; }

std::uint64_t detail::next_worker_id() noexcept {
    return last_worker_id.fetch_add(1, std::memory_order_relaxed) + 1;
}

void detail::start_worker_ids_at(std::uint64_t base) noexcept {
    last_worker_id.store(base, std::memory_order_relaxed);
}

void detail::become_worker(std::uint64_t id) noexcept { current_worker_id = id; }

} // namespace mproc
