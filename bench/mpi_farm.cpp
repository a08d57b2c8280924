// SPDX-License-Identifier: MIT
// The floor for mproc::MpiPool: a hand-written MPI master-worker farm, as one writes it without
// any library: plain MPI_Send/MPI_Recv, one task per message (chunksize 1); rank 0 hands the
// next task to whichever worker rank answers (dynamic balancing, as MpiPool does). Nothing but
// MPI: no serialisation, no worker processes, no threads. scripts/bench_mpi.sh runs it beside
// bench/mpi_bench.cpp (the same tasks on MpiPool) and prints the ratio.
//
// The task is MpiPool's benchmark task: spin for `work_us` microseconds, then return x * x + 1.
//
// Usage: mpirun -n 2 mpi_farm [--tasks N] [--work-us W]
// Output (rank 0): one JSON line {"workload": "per_task", "impl": "mpi_farm", "work_us": W,
//                  "ranks": R, "tasks": N, "per_task_us": ...}

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "workloads.hpp"

namespace {

constexpr int task_tag = 1;
constexpr int result_tag = 2;
constexpr int stop_tag = 3;

using bench::spin_task;

struct Task {
    std::int64_t x;
    std::int64_t work_us;
};

void serve() {
    for (;;) {
        Task task{};
        MPI_Status status;
        MPI_Recv(&task, sizeof(task), MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        if (status.MPI_TAG == stop_tag) {
            return;
        }
        const std::int64_t result = spin_task(task.x, task.work_us);
        MPI_Send(&result, 1, MPI_INT64_T, 0, result_tag, MPI_COMM_WORLD);
    }
}

/// Runs `tasks` tasks over the worker ranks; returns the seconds it took.
double farm(int ranks, std::int64_t tasks, std::int64_t work_us) {
    const auto start = std::chrono::steady_clock::now();
    std::int64_t sent = 0;
    std::int64_t received = 0;
    std::int64_t checksum = 0;
    for (int rank = 1; rank < ranks && sent < tasks; ++rank, ++sent) {
        const Task task{sent, work_us};
        MPI_Send(&task, sizeof(task), MPI_BYTE, rank, task_tag, MPI_COMM_WORLD);
    }
    while (received < sent) {
        std::int64_t result = 0;
        MPI_Status status;
        MPI_Recv(&result, 1, MPI_INT64_T, MPI_ANY_SOURCE, result_tag, MPI_COMM_WORLD, &status);
        ++received;
        checksum += result;
        if (sent < tasks) {
            const Task task{sent++, work_us};
            MPI_Send(&task, sizeof(task), MPI_BYTE, status.MPI_SOURCE, task_tag, MPI_COMM_WORLD);
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (checksum <= 0) {
        std::fprintf(stderr, "mpi_farm: bad checksum\n");
        std::exit(1);
    }
    return seconds;
}

} // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0;
    int ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    std::int64_t tasks = 20000;
    std::int64_t work_us = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--tasks") == 0) {
            tasks = std::atoll(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--work-us") == 0) {
            work_us = std::atoll(argv[i + 1]);
        }
    }
    if (rank != 0) {
        serve();
    } else {
        farm(ranks, tasks / 10 + 1, work_us); // warm-up: connections, caches
        const double seconds = farm(ranks, tasks, work_us);
        std::printf("{\"workload\": \"per_task\", \"impl\": \"mpi_farm\", \"work_us\": %lld, "
                    "\"ranks\": %d, \"tasks\": %lld, \"per_task_us\": %.3f}\n",
                    static_cast<long long>(work_us), ranks, static_cast<long long>(tasks),
                    seconds * 1e6 / static_cast<double>(tasks));
        for (int worker = 1; worker < ranks; ++worker) {
            MPI_Send(nullptr, 0, MPI_BYTE, worker, stop_tag, MPI_COMM_WORLD);
        }
    }
    MPI_Finalize();
    return 0;
}
