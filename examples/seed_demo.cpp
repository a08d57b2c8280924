// SPDX-License-Identifier: MIT
// The seed demo: the experiment of the article mproc started from ("Multiprocessing in Python",
// a quick look at multiprocessing.Pool), replayed in C++.
//
// A task draws a random `cycles` in 1..100, burns CPU with a fixed loop of multiplications
// (`i * i * cycles`) and returns `cycles`. The tasks run (a) one after another in this process,
// then (b) on a pool with `imap_unordered(..., chunksize)`, printing `Cycles: N` for each result
// as it arrives and `Elapsed: S` per sample, then the mean. The defaults are the article's:
// 10 workers, 12 tasks, chunksize 4, 3 samples.
//
// What the article does not say: 12 tasks in chunks of 4 are only 3 chunks, so at most 3 workers
// are ever busy, whatever the pool size. The demo prints that bound, min(workers, cores,
// chunks), next to the measured speed-up.
//
// Run it with scripts/demo.sh (arguments go to the demo; try --help).

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "mproc/mproc.hpp"
#ifdef MPROC_DEMO_WITH_MPI
#include "mproc/mpi_pool.hpp" // built when CMake found MPI: --pool mpi, under mpirun
#endif

namespace {

/// One task: everything a worker needs, by value. It is trivially copyable, so it crosses to a
/// worker process as plain bytes; do_work is a plain function, so a worker process finds it in its
/// own copy of the program.
struct Task {
    std::uint64_t sample;
    std::uint64_t index;
    std::uint64_t seed;
    std::uint64_t iterations;
};

/// SplitMix64: a good 64-bit mix. Each task derives its `cycles` from (seed, sample, index), so a
/// run is repeatable with --seed whichever worker happens to run which task; every sample draws
/// new values, as the article's `random()` does, and the pool test draws the same ones as the
/// single-process test, so its completion order shows as a permutation of the same lines.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// The article's `_do_work`. The loop length does not depend on `cycles`: every task costs the
/// same. A C++ compiler deletes (or folds into a formula) a loop whose result is unused, so each
/// product goes into an empty `asm volatile` that claims to read it: the optimiser must compute
/// every one, exactly as Python does, two multiplications per step. Unsigned arithmetic wraps,
/// so a large --iterations is not undefined behaviour.
std::uint64_t do_work(const Task& task) {
    const std::uint64_t cycles = 1 + mix(mix(task.seed + task.sample) + task.index) % 100;
    for (std::uint64_t i = 0; i < task.iterations; ++i) {
        const std::uint64_t product = i * i * cycles;
        asm volatile("" : : "r"(product)); // a sink the optimiser cannot see through
    }
    return cycles;
}

struct Parameters {
    std::int64_t workers = 10;
    std::int64_t tasks = 12;
    std::int64_t chunksize = 4;
    std::int64_t samples = 3;
    // About 0.1 s per task on the 2-core AMD EPYC machine the project is developed on (measured:
    // about 1.75e9 steps per second, two multiplications each). The article's 10,000,000 steps
    // took Python ~1.3 s; C++ does them in ~6 ms, which would measure little but the pool's own
    // overhead.
    std::int64_t iterations = 175'000'000;
    std::uint64_t seed = 0;
    std::string pool = "process";       // the article's multiprocessing.Pool
    bool progress = false;              // a bar on stderr instead of a `Cycles:` line per result
    std::vector<std::string> timelines; // files to draw the last sample's pool run in
};

/// The tasks of one sample, produced lazily like the article's `range(task_count)`.
auto make_tasks(const Parameters& p, std::int64_t sample) {
    return std::views::iota(std::int64_t{0}, p.tasks) |
           std::views::transform([&p, sample](std::int64_t i) {
               return Task{static_cast<std::uint64_t>(sample), static_cast<std::uint64_t>(i),
                           p.seed, static_cast<std::uint64_t>(p.iterations)};
           });
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double mean(const std::vector<double>& values) {
    return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

void print_cycles(std::uint64_t cycles) {
    std::printf("Cycles: %llu\n", static_cast<unsigned long long>(cycles));
    std::fflush(stdout); // each result shows the moment it arrives
}

/// The bar of one sample (--progress).
mproc::ProgressOptions progress_options(const Parameters& p, std::int64_t sample) {
    std::fflush(stdout); // the bar (stderr) comes after what was printed before it
    return {.total = static_cast<std::size_t>(p.tasks),
            .label = "sample " + std::to_string(sample + 1) + "/" + std::to_string(p.samples)};
}

/// (a) The article's single-process run: the tasks one after another, in this thread.
double single_process_test(const Parameters& p) {
    std::printf("Starting single process test\n");
    std::vector<double> samples;
    for (std::int64_t sample = 0; sample < p.samples; ++sample) {
        const auto t0 = Clock::now();
        std::optional<mproc::ProgressBar> bar;
        if (p.progress) {
            bar.emplace(progress_options(p, sample));
        }
        for (const Task& task : make_tasks(p, sample)) {
            const std::uint64_t cycles = do_work(task);
            if (bar) {
                bar->update();
            } else {
                print_cycles(cycles);
            }
        }
        bar.reset(); // its last report before the elapsed time
        samples.push_back(seconds_since(t0));
        std::printf("Elapsed: %.6f\n", samples.back());
    }
    const double average = mean(samples);
    std::printf("Average processing time for single process for %lld samples of %lld tasks: "
                "%.6f\n\n",
                static_cast<long long>(p.samples), static_cast<long long>(p.tasks), average);
    return average;
}

/// How the work spread: each worker's share of its life spent on chunks (the article's point:
/// with 12 tasks in chunks of 4, three workers do everything and the others wait).
void print_busy_shares(const mproc::PoolStats& stats) {
    std::printf("Busy share of each worker (last sample):\n");
    for (const mproc::WorkerStats& worker : stats.workers) {
        const double share = worker.busy_share();
        const int filled = static_cast<int>(share * 20.0 + 0.5);
        std::printf("  %-32s %3.0f%% [%.*s%.*s] chunks: %llu, tasks: %llu\n", worker.where.c_str(),
                    100.0 * share, filled, "####################", 20 - filled,
                    "....................", static_cast<unsigned long long>(worker.chunks),
                    static_cast<unsigned long long>(worker.tasks));
    }
}

/// (b) The article's pool run, on any pool class. As in the article, each sample builds its own
/// pool (the article's `with Pool(...) as pool:`), so starting the workers is part of the time.
template <class PoolClass>
double pool_test(const Parameters& p, std::string_view pool_name) {
    std::printf("Starting %.*s test: imap_unordered with chunksize %lld\n",
                static_cast<int>(pool_name.size()), pool_name.data(),
                static_cast<long long>(p.chunksize));
    std::vector<double> samples;
    for (std::int64_t sample = 0; sample < p.samples; ++sample) {
        const auto t0 = Clock::now();
        mproc::PoolStats stats;
        std::optional<mproc::Timeline> timeline;
        {
            PoolClass pool(
                mproc::PoolOptions{.workers = p.workers, .timeline = !p.timelines.empty()});
            auto results = pool.imap_unordered(do_work, make_tasks(p, sample), p.chunksize);
            if (p.progress) {
                for (std::uint64_t cycles :
                     mproc::progress(std::move(results), progress_options(p, sample))) {
                    static_cast<void>(cycles);
                }
            } else {
                for (std::uint64_t cycles : results) {
                    print_cycles(cycles);
                }
            }
            // Joined inside the timed region, as at the end of Python's `with`.
            pool.close();
            pool.join();
            stats = pool.stats();
            if (!p.timelines.empty()) {
                timeline = pool.timeline();
            }
        }
        samples.push_back(seconds_since(t0));
        std::printf("Elapsed: %.6f\n", samples.back());
        if (sample + 1 == p.samples) {
            print_busy_shares(stats);
            for (const std::string& file : p.timelines) {
                mproc::write_timeline(*timeline, file);
                std::printf("Timeline of the last sample written to %s\n", file.c_str());
            }
        }
    }
    const double average = mean(samples);
    std::printf("Average processing time for %lld samples with %lld workers for %lld tasks: "
                "%.6f\n\n",
                static_cast<long long>(p.samples), static_cast<long long>(p.workers),
                static_cast<long long>(p.tasks), average);
    return average;
}

/// The pool classes --pool can name. Adding one is one line here (the MPI pool, once it exists in
/// this build).
struct PoolKind {
    std::string_view name;
    std::string_view class_name;
    double (*run)(const Parameters&, std::string_view); // nullptr: not in this build
};

constexpr PoolKind pool_kinds[] = {
    {"process", "mproc::Pool", &pool_test<mproc::Pool>},
    {"thread", "mproc::ThreadPool", &pool_test<mproc::ThreadPool>},
#ifdef MPROC_DEMO_WITH_MPI
    {"mpi", "mproc::MpiPool", &pool_test<mproc::MpiPool>},
#else
    {"mpi", "mproc::MpiPool", nullptr},
#endif
};

/// A CLI11 check: a whole decimal number of at least `min` (and that fits the option's type,
/// which CLI11 checks next), with a message that says what is wrong.
CLI::Validator integer_at_least(long long min) {
    const std::string description = min == 0 ? "NONNEGATIVE" : "POSITIVE";
    return CLI::Validator(
        [min](std::string& text) -> std::string {
            long long value = 0;
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, value);
            if (error == std::errc::result_out_of_range) {
                return "value " + text + " is too large";
            }
            if (error != std::errc() || stop != end) {
                return "expected a whole number, got '" + text + "'";
            }
            if (value < min) {
                return "must be " + std::string(min == 0 ? "non-negative" : "positive") + " (got " +
                       text + ")";
            }
            return {};
        },
        description);
}

int run(const Parameters& p) {
    const PoolKind* kind = nullptr;
    for (const PoolKind& candidate : pool_kinds) {
        if (candidate.name == p.pool) {
            kind = &candidate;
        }
    }
    if (kind == nullptr || kind->run == nullptr) {
        std::fprintf(stderr, "seed_demo: --pool %s: not available yet in this build\n",
                     p.pool.c_str());
        return 2;
    }

    const std::int64_t chunks = p.tasks / p.chunksize + (p.tasks % p.chunksize != 0 ? 1 : 0);
    // The cores the workers can use: this process's; for MpiPool, this host's (mpirun binds
    // rank 0 to a core or a socket, the worker ranks' processes are not held to it; on a
    // cluster the workers have more than this figure).
    const auto cores = static_cast<std::int64_t>(
        p.pool == "mpi" ? std::max(1u, std::thread::hardware_concurrency()) : mproc::cpu_count());
    std::printf("mproc seed demo: %lld tasks of %lld steps of `i * i * cycles`, seed %llu\n\n",
                static_cast<long long>(p.tasks), static_cast<long long>(p.iterations),
                static_cast<unsigned long long>(p.seed));

    const double single = single_process_test(p);
    const double pooled = kind->run(p, kind->class_name);

    const std::int64_t bound = std::min({p.workers, cores, chunks});
    std::printf("Speed-up: %.2fx (bound: %lld = min(%lld workers, %lld cores, %lld chunks = %lld "
                "tasks / chunksize %lld))\n",
                single / pooled, static_cast<long long>(bound), static_cast<long long>(p.workers),
                static_cast<long long>(cores), static_cast<long long>(chunks),
                static_cast<long long>(p.tasks), static_cast<long long>(p.chunksize));
    std::printf("Cores: %lld\n", static_cast<long long>(cores));
    std::printf("Work per task: %lld iterations, %.6f s (single-process average / tasks)\n",
                static_cast<long long>(p.iterations), single / static_cast<double>(p.tasks));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    // Under mpirun, ranks other than 0 serve --pool mpi here (and exit when rank 0 ends).
    mproc::serve_if_worker(argc, argv);
    Parameters p;
    p.seed = std::random_device{}();

    CLI::App app{"The seed experiment: CPU-bound tasks one after another, then on an mproc pool "
                 "with imap_unordered (defaults: the article's parameters)",
                 "seed_demo"};
    app.add_option("-w,--workers", p.workers, "Workers in the pool")
        ->capture_default_str()
        ->check(integer_at_least(1));
    app.add_option("-t,--tasks", p.tasks, "Tasks per sample")
        ->capture_default_str()
        ->check(integer_at_least(1));
    app.add_option("-c,--chunksize", p.chunksize, "Tasks per chunk handed to a worker")
        ->capture_default_str()
        ->check(integer_at_least(1));
    app.add_option("-s,--samples", p.samples, "Timed repetitions of each test")
        ->capture_default_str()
        ->check(integer_at_least(1));
    app.add_option("-i,--iterations", p.iterations, "Multiplication steps in one task")
        ->capture_default_str()
        ->check(integer_at_least(1));
    app.add_option("--seed", p.seed, "Seed of the tasks' random cycles (default: random)")
        ->check(integer_at_least(0));
    app.add_option("-p,--pool", p.pool,
                   "Pool class: process (mproc::Pool, worker processes, like the article), "
                   "thread (mproc::ThreadPool) or mpi (mproc::MpiPool)")
        ->capture_default_str()
        ->check(CLI::IsMember({"process", "thread", "mpi"}));
    app.add_flag("--progress", p.progress,
                 "Show a progress bar (count, rate, ETA) on stderr instead of a line per result");
    app.add_option("--timeline", p.timelines,
                   "Draw the last sample's pool run to this file: a picture (.svg, one lane per "
                   "worker) or a Chrome trace (.json, opens in ui.perfetto.dev); may be repeated");
    CLI11_PARSE(app, argc, argv);

    try {
        return run(p);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "seed_demo: error: %s\n", e.what());
        return 1;
    }
}
