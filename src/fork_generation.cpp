// SPDX-License-Identifier: MIT
#include "mproc/detail/fork_generation.hpp"

#include <pthread.h>

#include <atomic>

namespace mproc::detail {
namespace {

std::atomic<std::uint64_t> generation{0};

// Runs in the child only, where the forking thread is the only thread.
void count_fork_in_child() noexcept { generation.fetch_add(1, std::memory_order_relaxed); }

} // namespace

std::uint64_t fork_generation() noexcept {
    // Registered by the first caller (a pool's constructor), so before any fork that matters.
    static const bool registered = pthread_atfork(nullptr, nullptr, count_fork_in_child) == 0;
    (void)registered;
    return generation.load(std::memory_order_relaxed);
}

} // namespace mproc::detail
