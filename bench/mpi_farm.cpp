// SPDX-License-Identifier: MIT
// The floor for mproc::MpiPool: a hand-written MPI master-worker farm, as one writes it without
// any library: plain MPI_Send/MPI_Recv, one task per message (chunksize 1); rank 0 hands the
// next task to whichever worker rank answers (dynamic balancing, as MpiPool does). Nothing but
// MPI: no serialisation, no worker processes, no threads. scripts/bench_mpi.sh runs it beside
// bench/mpi_bench.cpp (the same tasks on MpiPool) and prints the ratio.
//
// The task is MpiPool's benchmark task: spin for `work_us` microseconds, then return x * x + 1.
//
// Workload map: mpi_bench's map (x * x + 1 over 10^6 int64) as one writes it by hand: the input
// cut into the chunks MpiPool's default chunksize makes (Python's rule: about four per worker),
// each sent as one message of its int64s to whichever worker rank answered last, the results
// written back into place. The floor of MpiPool's map: no serialisation, no worker processes.
//
// Usage: mpirun -n 2 mpi_farm [--workload per_task] [--tasks N] [--work-us W]
//        mpirun -n 3 mpi_farm --workload map [--reps K]
// Output (rank 0): one JSON line {"workload": "per_task", "impl": "mpi_farm", "work_us": W,
//                  "ranks": R, "tasks": N, "per_task_us": ...}, or for map
//                  {"workload": "map", "impl": "mpi_farm", "items_per_s": ...} (median of K)

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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

// ---- map: chunks of int64, each one message -------------------------------------------------

constexpr int chunk_tag = 4;

/// A chunk's message: its offset in the input, then its items.
void serve_chunks() {
    std::vector<std::int64_t> chunk;
    for (;;) {
        MPI_Status status;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        int count = 0;
        MPI_Get_count(&status, MPI_INT64_T, &count);
        chunk.resize(static_cast<std::size_t>(count));
        MPI_Recv(chunk.data(), count, MPI_INT64_T, 0, status.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        if (status.MPI_TAG == stop_tag) {
            return;
        }
        for (std::size_t i = 1; i < chunk.size(); ++i) {
            chunk[i] = chunk[i] * chunk[i] + 1;
        }
        MPI_Send(chunk.data(), count, MPI_INT64_T, 0, chunk_tag, MPI_COMM_WORLD);
    }
}

/// One map of x * x + 1 over `input` into `output`; returns the seconds it took.
double map_once(int ranks, const std::vector<std::int64_t>& input,
                std::vector<std::int64_t>& output) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t workers = static_cast<std::size_t>(ranks - 1);
    const std::size_t per_round = workers * 4;
    const std::size_t chunksize = (input.size() + per_round - 1) / per_round;
    std::vector<std::int64_t> message;
    std::size_t next = 0;
    std::size_t in_flight = 0;
    const auto send_next = [&](int rank) {
        const std::size_t end = std::min(input.size(), next + chunksize);
        message.assign(1, static_cast<std::int64_t>(next));
        message.insert(message.end(), input.begin() + static_cast<std::ptrdiff_t>(next),
                       input.begin() + static_cast<std::ptrdiff_t>(end));
        MPI_Send(message.data(), static_cast<int>(message.size()), MPI_INT64_T, rank, chunk_tag,
                 MPI_COMM_WORLD);
        next = end;
        ++in_flight;
    };
    for (int rank = 1; rank < ranks && next < input.size(); ++rank) {
        send_next(rank);
    }
    std::vector<std::int64_t> answer;
    while (in_flight != 0) {
        MPI_Status status;
        MPI_Probe(MPI_ANY_SOURCE, chunk_tag, MPI_COMM_WORLD, &status);
        int count = 0;
        MPI_Get_count(&status, MPI_INT64_T, &count);
        answer.resize(static_cast<std::size_t>(count));
        MPI_Recv(answer.data(), count, MPI_INT64_T, status.MPI_SOURCE, chunk_tag, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        --in_flight;
        std::copy(answer.begin() + 1, answer.end(),
                  output.begin() + static_cast<std::ptrdiff_t>(answer[0]));
        if (next < input.size()) {
            send_next(status.MPI_SOURCE);
        }
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void map_throughput(int ranks, int repetitions) {
    constexpr std::int64_t n = 1'000'000;
    std::vector<std::int64_t> input(n);
    for (std::int64_t i = 0; i < n; ++i) {
        input[static_cast<std::size_t>(i)] = i;
    }
    std::vector<std::int64_t> output(n);
    map_once(ranks, input, output); // warm-up: connections, caches
    std::vector<double> rates;
    for (int rep = 0; rep < repetitions; ++rep) {
        rates.push_back(static_cast<double>(n) / map_once(ranks, input, output));
    }
    for (std::int64_t i = 0; i < n; ++i) {
        if (output[static_cast<std::size_t>(i)] != i * i + 1) {
            std::fprintf(stderr, "mpi_farm: wrong result at %lld\n", static_cast<long long>(i));
            std::exit(1);
        }
    }
    std::sort(rates.begin(), rates.end());
    std::printf("{\"workload\": \"map\", \"impl\": \"mpi_farm\", \"items_per_s\": %.0f}\n",
                rates[rates.size() / 2]);
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
    const char* workload = "per_task";
    int repetitions = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--workload") == 0) {
            workload = argv[i + 1];
        } else if (std::strcmp(argv[i], "--reps") == 0) {
            repetitions = std::max(1, std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--tasks") == 0) {
            tasks = std::atoll(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--work-us") == 0) {
            work_us = std::atoll(argv[i + 1]);
        }
    }
    const bool map = std::strcmp(workload, "map") == 0;
    if (!map && std::strcmp(workload, "per_task") != 0) {
        std::fprintf(stderr, "mpi_farm: unknown workload %s\n", workload);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (map) {
        if (rank != 0) {
            serve_chunks();
        } else {
            map_throughput(ranks, repetitions);
            for (int worker = 1; worker < ranks; ++worker) {
                MPI_Send(nullptr, 0, MPI_INT64_T, worker, stop_tag, MPI_COMM_WORLD);
            }
        }
    } else if (rank != 0) {
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
