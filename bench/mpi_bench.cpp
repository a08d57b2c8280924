// SPDX-License-Identifier: MIT
// mproc::MpiPool on the MPI backend's benchmark workloads; scripts/bench_mpi.sh runs it beside
// bench/mpi_farm.cpp (the floor) and prints the ratios.
//
//   per_task   map(spin_task, N items, chunksize 1) on an MpiPool with one worker per worker rank
//              (run with 2 ranks: one worker, as the farm): microseconds per task, the farm's
//              measure. spin_task spins `work_us` microseconds, then returns x * x + 1. Once
//              with worker processes on the ranks (mpi_pool), once with the tasks run in the
//              ranks themselves (mpi_pool_in_rank, PoolOptions::in_rank).
//   map        map(x * x + 1, 10^6 int64) with the default chunksize: MpiPool with 2 workers
//              (run with 3 ranks: one per worker rank) beside mproc::Pool with 2 worker
//              processes, in the same program (items/s), repetitions interleaved.
//
// Usage: mpirun -n R mpi_bench --workload per_task|map [--tasks N] [--work-us W] [--reps K]
// Output (rank 0): one JSON line per measurement, as mpi_farm's.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mproc/mpi_pool.hpp"
#include "mproc/mproc.hpp"
#include "workloads.hpp"

namespace {

using bench::spin_task;
using bench::square_plus_one;

template <class F>
double seconds_of(F&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

/// Microseconds per task of starmap(spin_task, ..., chunksize 1) on `pool`.
template <class Pool>
double per_task_us(Pool& pool, std::int64_t tasks, std::int64_t work_us) {
    auto items = [&](std::int64_t n) {
        std::vector<std::pair<std::int64_t, std::int64_t>> v;
        for (std::int64_t i = 0; i < n; ++i) {
            v.emplace_back(i, work_us);
        }
        return v;
    };
    pool.starmap(spin_task, items(tasks / 10 + 1), 1); // warm-up
    const auto input = items(tasks);
    const double seconds = seconds_of([&] { pool.starmap(spin_task, input, 1); });
    return seconds * 1e6 / static_cast<double>(tasks);
}

void per_task(std::int64_t tasks, std::int64_t work_us) {
    // The same tasks on mproc::Pool with as many worker processes, for reference: what the MPI
    // hop adds to the worker process hop that both pay.
    std::size_t workers = 0;
    double mpi_us = 0;
    {
        mproc::MpiPool pool; // one worker per worker rank
        workers = pool.workers();
        mpi_us = per_task_us(pool, tasks, work_us);
    }
    double in_rank_us = 0;
    {
        mproc::MpiPool pool({.in_rank = true}); // the tasks run in the worker ranks themselves
        in_rank_us = per_task_us(pool, tasks, work_us);
    }
    mproc::Pool process_pool(static_cast<std::ptrdiff_t>(workers));
    const double process_us = per_task_us(process_pool, tasks, work_us);
    for (const auto& [impl, us] : {std::pair{"mpi_pool", mpi_us},
                                   {"mpi_pool_in_rank", in_rank_us},
                                   {"process_pool", process_us}}) {
        std::printf("{\"workload\": \"per_task\", \"impl\": \"%s\", \"work_us\": %lld, "
                    "\"ranks\": %zu, \"tasks\": %lld, \"per_task_us\": %.3f}\n",
                    impl, static_cast<long long>(work_us), workers + 1,
                    static_cast<long long>(tasks), us);
    }
}

void map_throughput(int repetitions) {
    constexpr std::int64_t n = 1'000'000;
    std::vector<std::int64_t> input(n);
    for (std::int64_t i = 0; i < n; ++i) {
        input[static_cast<std::size_t>(i)] = i;
    }
    mproc::MpiPool mpi_pool(2);
    mproc::Pool process_pool(2);
    mpi_pool.map(square_plus_one, input); // warm-up
    process_pool.map(square_plus_one, input);
    std::vector<double> mpi_rates;
    std::vector<double> process_rates;
    for (int rep = 0; rep < repetitions; ++rep) {
        // Interleaved, so that a burst of load on a shared machine hits both.
        mpi_rates.push_back(n / seconds_of([&] { mpi_pool.map(square_plus_one, input); }));
        process_rates.push_back(n / seconds_of([&] { process_pool.map(square_plus_one, input); }));
    }
    std::printf("{\"workload\": \"map\", \"impl\": \"mpi_pool\", \"items_per_s\": %.0f}\n",
                median(mpi_rates));
    std::printf("{\"workload\": \"map\", \"impl\": \"process_pool\", \"items_per_s\": %.0f}\n",
                median(process_rates));
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // worker ranks serve here
    std::string workload = "per_task";
    std::int64_t tasks = 20000;
    std::int64_t work_us = 0;
    int repetitions = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--workload") == 0) {
            workload = argv[i + 1];
        } else if (std::strcmp(argv[i], "--tasks") == 0) {
            tasks = std::atoll(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--work-us") == 0) {
            work_us = std::atoll(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--reps") == 0) {
            repetitions = std::atoi(argv[i + 1]);
        }
    }
    if (workload == "per_task") {
        per_task(tasks, work_us);
    } else if (workload == "map") {
        map_throughput(repetitions);
    } else {
        std::fprintf(stderr, "mpi_bench: unknown workload %s\n", workload.c_str());
        return 2;
    }
    return 0;
}
