// SPDX-License-Identifier: MIT
#pragma once
// Waiting without the kernel when the wait is short. Putting a thread to sleep and waking it
// costs two system calls and a context switch (5-20 us on a loaded machine), far more than a
// fork-join over trivial items; so a thread about to sleep first polls its condition for a
// bounded time, as OpenMP runtimes do. A waker then only makes a system call for threads that
// really sleep.

#include <chrono>
#include <thread>

namespace mproc::detail {

/// How long a worker thread polls for the next chunk before it sleeps.
inline constexpr std::chrono::microseconds worker_spin_budget{100};
/// How long a caller waiting for a result polls before it sleeps.
inline constexpr std::chrono::microseconds waiter_spin_budget{50};

/// Tells the CPU this is a busy-wait loop (saves power, yields the core to a hyper-thread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Polls `ready()` for about `budget`; true as soon as it holds, false once the budget is spent
/// (the caller then sleeps the ordinary way). Between rounds it yields the CPU, so that on a
/// machine with more threads than cores the thread it waits for can run.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget) {
    if (ready()) {
        return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + budget;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            cpu_relax();
            if (ready()) {
                return true;
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::yield();
    }
}

} // namespace mproc::detail
