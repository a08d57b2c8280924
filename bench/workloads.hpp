// SPDX-License-Identifier: MIT
#pragma once
// Work functions shared by the bench programs, the same for mproc and every peer.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench {

/// The trivial item of the overhead workloads: the cost measured is the pool's own.
inline std::int64_t square_plus_one(std::int64_t x) { return x * x + 1; }

/// Spins `us` microseconds of the steady clock: a task of a known length, whatever the CPU.
inline void spin_for_us(std::int64_t us) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    while (std::chrono::steady_clock::now() < until) {
    }
}

/// The MPI per-task workload's task, the same in bench/mpi_farm.cpp (plain MPI) and
/// bench/mpi_bench.cpp (MpiPool): spins `work_us` microseconds, then returns x * x + 1.
inline std::int64_t spin_task(std::int64_t x, std::int64_t work_us) {
    spin_for_us(work_us);
    return square_plus_one(x);
}

/// The seed demo's task (examples/seed_demo.cpp): `iterations` steps of `i * i * cycles`;
/// trivially copyable, so it crosses to a worker process as its bytes.
struct SeedTask {
    std::uint64_t index;
    std::uint64_t iterations;
};

inline std::uint64_t burn(const SeedTask& task) {
    const std::uint64_t cycles = 1 + task.index * 7 % 100;
    for (std::uint64_t i = 0; i < task.iterations; ++i) {
        const std::uint64_t product = i * i * cycles;
        asm volatile("" : : "r"(product)); // a sink the optimiser cannot see through
    }
    return cycles;
}

/// The article's parameters: 12 tasks of 175,000,000 steps (fewer for a smoke run).
inline std::vector<SeedTask> seed_tasks(std::size_t count, std::uint64_t iterations) {
    std::vector<SeedTask> tasks;
    for (std::size_t i = 0; i < count; ++i) {
        tasks.push_back({i, iterations});
    }
    return tasks;
}

} // namespace bench
