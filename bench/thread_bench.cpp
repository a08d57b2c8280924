// SPDX-License-Identifier: MIT
// mproc::ThreadPool against the peers a C++ programmer would otherwise pick: a sequential loop,
// OpenMP (schedule(static) and schedule(dynamic, chunk)), oneTBB parallel_for and
// std::execution::par (libstdc++'s parallel algorithms, on TBB). The workloads of issue 7:
//
//   tiny_into   10^7 int64 items, x * x + 1, into storage allocated (and touched) once outside
//               the timed region; mproc: ThreadPool::map_into (ms)
//   tiny_fresh  the same, each variant writing a freshly allocated std::vector; mproc:
//               ThreadPool::map returning its vector (ms)
//   forkjoin    a map over as many trivial items as workers, 10^4 times in a row (us a round);
//               also on a ThreadPool with caller_runs_chunks (mproc_thread_helps), and on one of
//               workers - 1 threads with it (mproc_thread_helps_n1: OpenMP's configuration)
//   imap        ThreadPool::imap_unordered with chunksize 1, every result consumed (us an item)
//   uneven      10^5 items whose cost is 1 to 1000 units at random (a unit: a dependent
//               multiply-add, about 2 ns); mproc: ThreadPool::map with the default chunksize (ms)
//   futures     10^4 apply_async of a trivial task, then every result taken: by get() in
//               submission order, or as mproc::as_completed gives them (us a result)
//   nested      recursive Fibonacci(25), one task a call above n = 15 that waits for its
//               subtask: ThreadPool::apply_async + get (a waiting worker helps) against oneTBB's
//               task_group run + wait (ms)
//   seed        the seed demo's 12 tasks of 175,000,000 steps; mproc: ThreadPool::map with the
//               default chunksize on a pool made inside the timed region, as the article's
//               `with Pool(...)` (s). At `workers` 10, the article's pool of 10.
//
// tiny_into, tiny_fresh, uneven and seed run at 1, 2, 4, ... workers up to the core count (the
// scaling set): every parallel contender is limited to that many threads (OpenMP num_threads,
// a TBB arena and global_control, a ThreadPool of that size). forkjoin and imap run at the core
// count. Output: JSON lines (harness.hpp); scripts/bench_all.sh runs this several times and
// writes docs/benchmarks.md from the medians.
//
// Usage: thread_bench [--quick] [--repetitions N] [--only workload,workload] [--max-workers N]

#include <omp.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <execution>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "mproc/thread_pool.hpp"
#include "mproc/wait.hpp"
#include "workloads.hpp"

namespace {

using bench::Clock;
using bench::Contender;
using bench::keep;
using bench::run_workload;
using bench::seconds_since;
using bench::square_plus_one;

struct Sizes {
    int repetitions = 7;
    int repetitions_seed = 3;
    std::size_t tiny_items = 10'000'000;
    std::size_t forkjoins = 10'000;
    std::size_t imap_items = 20'000;
    std::size_t uneven_items = 100'000;
    std::size_t seed_tasks = 12;
    std::uint64_t seed_iterations = 175'000'000;
    std::size_t seed_article_workers = 10;
};

Sizes quick_sizes() {
    Sizes s;
    s.repetitions = s.repetitions_seed = 2;
    s.tiny_items = 100'000;
    s.forkjoins = 200;
    s.imap_items = 500;
    s.uneven_items = 2'000;
    s.seed_iterations = 1'000'000;
    return s;
}

/// OpenMP's dynamic schedule needs a chunk: these are what one would pick for each workload.
constexpr int omp_chunk_tiny = 4096;
constexpr int omp_chunk_uneven = 16;

double ms_since(Clock::time_point t0) { return seconds_since(t0) * 1e3; }

// ---- the kernels: out[i] = f(in[i]) for i in [0, n), by each contender

template <class F, class In, class Out>
void sequential_loop(F f, const In& in, Out& out) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i] = f(in[i]);
    }
}

template <class F, class In, class Out>
void omp_static_loop(F f, const In& in, Out& out, int threads) {
    const auto n = static_cast<std::ptrdiff_t>(in.size());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        out[static_cast<std::size_t>(i)] = f(in[static_cast<std::size_t>(i)]);
    }
}

template <class F, class In, class Out>
void omp_dynamic_loop(F f, const In& in, Out& out, int threads, int chunk) {
    const auto n = static_cast<std::ptrdiff_t>(in.size());
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        out[static_cast<std::size_t>(i)] = f(in[static_cast<std::size_t>(i)]);
    }
}

template <class F, class In, class Out>
void tbb_loop(F f, const In& in, Out& out, tbb::task_arena& arena, std::size_t grain = 1) {
    arena.execute([&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size(), grain),
                          [&](const tbb::blocked_range<std::size_t>& range) {
                              for (std::size_t i = range.begin(); i != range.end(); ++i) {
                                  out[i] = f(in[i]);
                              }
                          });
    });
}

template <class F, class In, class Out>
void std_par_loop(F f, const In& in, Out& out) {
    std::transform(std::execution::par, in.begin(), in.end(), out.begin(), f);
}

/// The parallel contenders of a map-like workload at `workers` threads, each given as a kernel
/// `run(out)`; `fresh` makes each allocate its output inside the timed region.
struct Peers {
    std::size_t workers;
    tbb::task_arena* arena;
    mproc::ThreadPool* pool;
};

template <class F, class In, class Out>
std::vector<Contender> map_contenders(const Peers& peers, F f, const In& in, Out& out, bool fresh,
                                      int omp_chunk, bool with_sequential) {
    const int threads = static_cast<int>(peers.workers);
    const std::size_t n = in.size();
    // Checks a few results after the timing: a contender that skipped work must not win.
    auto verify = [f, &in](const Out& result) {
        for (const std::size_t i : {std::size_t{0}, in.size() / 2, in.size() - 1}) {
            if (result[i] != f(in[i])) {
                std::fprintf(stderr, "thread_bench: wrong result at %zu\n", i);
                std::abort();
            }
        }
    };
    // Allocates a result inside the timed region when `fresh`, else writes into `out`.
    auto timed = [fresh, n, &out, verify](auto kernel) {
        return [fresh, n, &out, verify, kernel] {
            double elapsed;
            if (fresh) {
                const auto t0 = Clock::now();
                Out result(n);
                kernel(result);
                keep(result);
                elapsed = ms_since(t0);
                verify(result);
            } else {
                std::fill(out.begin(), out.end(), typename Out::value_type{});
                const auto t0 = Clock::now();
                kernel(out);
                keep(out);
                elapsed = ms_since(t0);
                verify(out);
            }
            return elapsed;
        };
    };
    std::vector<Contender> list;
    if (with_sequential) {
        list.push_back({"sequential", timed([f, &in](Out& o) { sequential_loop(f, in, o); }), 1});
    }
    list.push_back({"omp_static",
                    timed([f, &in, threads](Out& o) { omp_static_loop(f, in, o, threads); }),
                    peers.workers});
    list.push_back({"omp_dynamic", timed([f, &in, threads, omp_chunk](Out& o) {
                        omp_dynamic_loop(f, in, o, threads, omp_chunk);
                    }),
                    peers.workers});
    list.push_back({"tbb",
                    timed([f, &in, arena = peers.arena](Out& o) { tbb_loop(f, in, o, *arena); }),
                    peers.workers});
    list.push_back({"std_par", timed([f, &in](Out& o) { std_par_loop(f, in, o); }), peers.workers});
    mproc::ThreadPool* pool = peers.pool;
    if (fresh) {
        list.push_back({"mproc_thread",
                        [f, &in, pool, verify] {
                            const auto t0 = Clock::now();
                            const auto result = pool->map(f, in);
                            keep(result);
                            const double elapsed = ms_since(t0);
                            verify(result);
                            return elapsed;
                        },
                        peers.workers});
    } else {
        list.push_back({"mproc_thread", timed([f, &in, pool](Out& o) { pool->map_into(f, in, o); }),
                        peers.workers});
    }
    return list;
}

// ---- the uneven workload

/// `units` dependent multiply-adds: a cost proportional to `units` that the optimiser keeps.
std::uint64_t uneven_work(std::uint32_t units) {
    std::uint64_t acc = units;
    for (std::uint32_t i = 0; i < units; ++i) {
        acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    return acc;
}

std::vector<std::uint32_t> uneven_costs(std::size_t n) {
    std::mt19937 random(7);
    std::uniform_int_distribution<std::uint32_t> cost(1, 1000);
    std::vector<std::uint32_t> costs(n);
    for (auto& c : costs) {
        c = cost(random);
    }
    return costs;
}

// ---- the seed workload

std::vector<Contender> seed_contenders(const Sizes& s, std::size_t workers, tbb::task_arena& arena,
                                       bool with_sequential) {
    auto tasks = std::make_shared<std::vector<bench::SeedTask>>(
        bench::seed_tasks(s.seed_tasks, s.seed_iterations));
    auto out = std::make_shared<std::vector<std::uint64_t>>(tasks->size());
    const int threads = static_cast<int>(workers);
    auto timed = [out](auto kernel) {
        return [out, kernel] {
            const auto t0 = Clock::now();
            kernel();
            keep(*out);
            return seconds_since(t0);
        };
    };
    std::vector<Contender> list;
    if (with_sequential) {
        list.push_back(
            {"sequential", timed([tasks, out] { sequential_loop(bench::burn, *tasks, *out); }), 1});
    }
    list.push_back({"omp_dynamic", timed([tasks, out, threads] {
                        omp_dynamic_loop(bench::burn, *tasks, *out, threads, 1);
                    }),
                    workers});
    list.push_back({"tbb",
                    timed([tasks, out, &arena] { tbb_loop(bench::burn, *tasks, *out, arena); }),
                    workers});
    auto mproc_pool_of = [tasks, timed](std::size_t size) {
        return timed([tasks, size] {
            mproc::ThreadPool pool(static_cast<std::ptrdiff_t>(size));
            keep(pool.map(bench::burn, *tasks));
        });
    };
    list.push_back({"mproc_thread", mproc_pool_of(workers), workers});
    return list;
}

// ---- options

constexpr const char* usage =
    "thread_bench [--quick] [--repetitions N] [--only tiny_into,tiny_fresh,forkjoin,imap,futures,"
    "nested,uneven,seed] [--max-workers N]";

struct Options {
    Sizes sizes;
    bench::CommonOptions common;
    std::size_t max_workers = 0; // 0: the core count
};

Options parse(int argc, char** argv) {
    Options o;
    o.common =
        bench::parse_options(argc, argv, usage, [&o](std::string_view arg, std::string_view value) {
            if (arg != "--max-workers") {
                return false;
            }
            o.max_workers = static_cast<std::size_t>(std::atoi(std::string(value).c_str()));
            if (o.max_workers == 0) {
                bench::usage_error(usage, "--max-workers must be positive");
            }
            return true;
        });
    if (o.common.quick) {
        o.sizes = quick_sizes();
    }
    if (o.common.repetitions) {
        o.sizes.repetitions = o.sizes.repetitions_seed = *o.common.repetitions;
    }
    return o;
}

/// Fibonacci(n) with a subtask for n - 1 above the cutoff, waited for by the task that made it.
constexpr int fibonacci_cutoff = 15;

long fibonacci_serial(int n) {
    return n < 2 ? n : fibonacci_serial(n - 1) + fibonacci_serial(n - 2);
}

long fibonacci_mproc(mproc::ThreadPool& pool, int n) {
    if (n < fibonacci_cutoff) {
        return fibonacci_serial(n);
    }
    auto left = pool.apply_async([&pool, n] { return fibonacci_mproc(pool, n - 1); });
    const long right = fibonacci_mproc(pool, n - 2);
    return left.get() + right;
}

long fibonacci_tbb(int n) {
    if (n < fibonacci_cutoff) {
        return fibonacci_serial(n);
    }
    long left = 0;
    tbb::task_group group;
    group.run([&left, n] { left = fibonacci_tbb(n - 1); });
    const long right = fibonacci_tbb(n - 2);
    group.wait();
    return left + right;
}

/// 1, 2, 4, ... up to `cores`, and `cores` itself.
std::vector<std::size_t> worker_counts(std::size_t cores) {
    std::vector<std::size_t> counts;
    for (std::size_t w = 1; w < cores; w *= 2) {
        counts.push_back(w);
    }
    counts.push_back(cores);
    return counts;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const Sizes& s = o.sizes;
    const std::size_t cores = o.max_workers != 0 ? o.max_workers : mproc::cpu_count();

    std::vector<std::int64_t> tiny_in(s.tiny_items);
    std::iota(tiny_in.begin(), tiny_in.end(), std::int64_t{0});
    std::vector<std::int64_t> tiny_out(s.tiny_items, 0); // touched once, outside every timing
    const std::vector<std::uint32_t> costs = uneven_costs(s.uneven_items);
    std::vector<std::uint64_t> uneven_out(costs.size(), 0);
    auto tiny = [](std::int64_t x) { return square_plus_one(x); };

    for (const std::size_t workers : worker_counts(cores)) {
        // Caps TBB (and with it std::execution::par) at `workers` threads.
        tbb::global_control cap(tbb::global_control::max_allowed_parallelism, workers);
        tbb::task_arena arena(static_cast<int>(workers));
        mproc::ThreadPool pool(static_cast<std::ptrdiff_t>(workers));
        const Peers peers{workers, &arena, &pool};
        const bool first = workers == 1; // the sequential contender runs once, with 1 worker
        if (o.common.wanted("tiny_into")) {
            auto list =
                map_contenders(peers, tiny, tiny_in, tiny_out, false, omp_chunk_tiny, first);
            // The same task passed as a plain function (a pointer: an indirect call an item)
            // and as mproc::fn of it (a call the compiler sees), against the lambda above.
            auto timed_into = [&](auto call) {
                return [&, call] {
                    std::fill(tiny_out.begin(), tiny_out.end(), std::int64_t{0});
                    const auto t0 = Clock::now();
                    call();
                    keep(tiny_out);
                    const double elapsed = ms_since(t0);
                    if (tiny_out.back() != square_plus_one(tiny_in.back())) {
                        std::abort();
                    }
                    return elapsed;
                };
            };
            list.push_back({"mproc_thread_function_pointer",
                            timed_into([&] { pool.map_into(square_plus_one, tiny_in, tiny_out); }),
                            workers});
            list.push_back({"mproc_thread_fn", timed_into([&] {
                                pool.map_into(mproc::fn<square_plus_one>, tiny_in, tiny_out);
                            }),
                            workers});
            run_workload("tiny_into", "ms", "lower", s.tiny_items, s.repetitions, std::move(list));
        }
        if (o.common.wanted("tiny_fresh")) {
            run_workload(
                "tiny_fresh", "ms", "lower", s.tiny_items, s.repetitions,
                map_contenders(peers, tiny, tiny_in, tiny_out, true, omp_chunk_tiny, first));
        }
        if (o.common.wanted("uneven")) {
            run_workload("uneven", "ms", "lower", s.uneven_items, s.repetitions,
                         map_contenders(peers, uneven_work, costs, uneven_out, false,
                                        omp_chunk_uneven, first));
        }
        if (o.common.wanted("seed")) {
            auto list = seed_contenders(s, workers, arena, first);
            if (workers == cores) {
                // The article's configuration: a pool of 10 whatever the cores.
                auto article = seed_contenders(s, s.seed_article_workers, arena, false);
                list.push_back(std::move(article.back()));
            }
            run_workload("seed", "s", "lower", s.seed_tasks, s.repetitions_seed, std::move(list));
        }
        if (workers != cores) {
            continue;
        }
        if (o.common.wanted("forkjoin")) {
            std::vector<std::int64_t> in(workers);
            std::iota(in.begin(), in.end(), std::int64_t{1});
            std::vector<std::int64_t> out(workers);
            const int threads = static_cast<int>(workers);
            auto rounds = [&s](auto round) {
                return [&s, round] {
                    const auto t0 = Clock::now();
                    for (std::size_t r = 0; r < s.forkjoins; ++r) {
                        round();
                    }
                    return seconds_since(t0) / static_cast<double>(s.forkjoins) * 1e6;
                };
            };
            std::vector<Contender> list;
            list.push_back(
                {"omp_static", rounds([&] { omp_static_loop(tiny, in, out, threads); }), workers});
            list.push_back({"tbb", rounds([&] { tbb_loop(tiny, in, out, arena); }), workers});
            list.push_back({"std_par", rounds([&] { std_par_loop(tiny, in, out); }), workers});
            list.push_back({"mproc_thread", rounds([&] { keep(pool.map(tiny, in)); }), workers});
            list.push_back(
                {"mproc_thread_into", rounds([&] { pool.map_into(tiny, in, out); }), workers});
            // PoolOptions::caller_runs_chunks: the calling thread runs the chunks no worker has
            // started, as OpenMP's master thread does.
            mproc::ThreadPool helped(
                {.workers = static_cast<std::ptrdiff_t>(workers), .caller_runs_chunks = true});
            list.push_back(
                {"mproc_thread_helps", rounds([&] { keep(helped.map(tiny, in)); }), workers});
            // OpenMP's own configuration: cores - 1 workers, the caller being the last thread.
            std::optional<mproc::ThreadPool> helped_fewer;
            if (workers > 1) {
                helped_fewer.emplace(
                    mproc::PoolOptions{.workers = static_cast<std::ptrdiff_t>(workers - 1),
                                       .caller_runs_chunks = true});
                list.push_back({"mproc_thread_helps_n1",
                                rounds([&] { keep(helped_fewer->map(tiny, in)); }), workers});
            }
            run_workload("forkjoin", "us", "lower", workers, s.repetitions, std::move(list));
        }
        if (o.common.wanted("futures")) {
            const std::size_t results = o.common.quick ? 1000 : 10000;
            auto taken = [&](bool as_completed) {
                return [&, as_completed] {
                    const auto t0 = Clock::now();
                    std::vector<mproc::AsyncResult<std::int64_t>> pending;
                    pending.reserve(results);
                    for (std::size_t i = 0; i < results; ++i) {
                        pending.push_back(pool.apply_async(tiny, static_cast<std::int64_t>(i)));
                    }
                    std::int64_t sum = 0;
                    if (as_completed) {
                        for (auto& result : mproc::as_completed(pending)) {
                            sum += result.get();
                        }
                    } else {
                        for (auto& result : pending) {
                            sum += result.get();
                        }
                    }
                    keep(sum);
                    return seconds_since(t0) / static_cast<double>(results) * 1e6;
                };
            };
            std::vector<Contender> list;
            list.push_back({"mproc_thread_get_in_order", taken(false), workers});
            list.push_back({"mproc_thread_as_completed", taken(true), workers});
            run_workload("futures", "us", "lower", results, s.repetitions, std::move(list));
        }
        if (o.common.wanted("nested")) {
            constexpr int n = 25;
            auto timed = [](auto fibonacci) {
                return [fibonacci] {
                    const auto t0 = Clock::now();
                    const long value = fibonacci();
                    if (value != fibonacci_serial(n)) {
                        std::abort();
                    }
                    return seconds_since(t0) * 1e3;
                };
            };
            std::vector<Contender> list;
            list.push_back({"sequential", timed([] { return fibonacci_serial(n); }), 1});
            list.push_back(
                {"tbb", timed([&arena] { return arena.execute([] { return fibonacci_tbb(n); }); }),
                 workers});
            list.push_back({"mproc_thread", timed([&pool] {
                                return pool.apply([&pool] { return fibonacci_mproc(pool, n); });
                            }),
                            workers});
            run_workload("nested", "ms", "lower", 1, s.repetitions, std::move(list));
        }
        if (o.common.wanted("imap")) {
            std::vector<Contender> list;
            list.push_back(
                {"mproc_thread",
                 [&] { return bench::imap_unordered_us_per_item(pool, tiny, s.imap_items); },
                 workers});
            run_workload("imap", "us", "lower", s.imap_items, s.repetitions, std::move(list));
        }
    }
}
