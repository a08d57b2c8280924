// map over 10^7 trivial items (x * x + 1 on int64), each result into a freshly allocated
// std::vector: the cost of the pool itself, since the work per item is a few instructions.
//
//   sequential   a plain loop on the calling thread
//   openmp       #pragma omp parallel for schedule(static), as many threads as cores
//   mproc_map    mproc::ThreadPool::map with its default chunksize (about four chunks per
//                worker, as Python), on a pool of as many workers as cores made once, outside
//                the timed loop
//
// Every variant allocates its output vector inside the timed loop (map has to), so all three pay
// the same page faults for it; allocation_floor times that allocation alone. Run through
// scripts/bench.sh, which prints medians and ratios.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "mproc/pool_options.hpp"
#include "mproc/thread_pool.hpp"

namespace {

constexpr std::size_t item_count = 10'000'000;
constexpr int repetitions = 10;

/// The work per item, the same in every variant.
inline std::int64_t square_plus_one(std::int64_t x) { return x * x + 1; }

const std::vector<std::int64_t>& input() {
    static const std::vector<std::int64_t> items = [] {
        std::vector<std::int64_t> values(item_count);
        std::iota(values.begin(), values.end(), std::int64_t{0});
        return values;
    }();
    return items;
}

void report(benchmark::State& state) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(item_count));
}

/// Not a contender: only the allocation every variant makes (80 MB, zero-filled on the calling
/// thread, then freed). Subtracting it from the others shows the cost of the mapping itself.
void allocation_floor(benchmark::State& state) {
    for (auto _ : state) {
        std::vector<std::int64_t> results(item_count);
        benchmark::DoNotOptimize(results.data());
        benchmark::ClobberMemory();
    }
}

void sequential(benchmark::State& state) {
    const auto& items = input();
    for (auto _ : state) {
        std::vector<std::int64_t> results(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            results[i] = square_plus_one(items[i]);
        }
        benchmark::DoNotOptimize(results.data());
        benchmark::ClobberMemory();
    }
    report(state);
}

void openmp(benchmark::State& state) {
    const auto& items = input();
    const auto n = static_cast<std::ptrdiff_t>(items.size());
    for (auto _ : state) {
        std::vector<std::int64_t> results(items.size());
#pragma omp parallel for schedule(static)
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            results[static_cast<std::size_t>(i)] =
                square_plus_one(items[static_cast<std::size_t>(i)]);
        }
        benchmark::DoNotOptimize(results.data());
        benchmark::ClobberMemory();
    }
    report(state);
}

void mproc_map(benchmark::State& state) {
    const auto& items = input();
    mproc::ThreadPool pool(static_cast<std::ptrdiff_t>(mproc::cpu_count()));
    for (auto _ : state) {
        // A lambda, as users write it: its type names the function, so the loop inlines it (a
        // function pointer would be an indirect call per item).
        std::vector<std::int64_t> results =
            pool.map([](std::int64_t x) { return square_plus_one(x); }, items);
        benchmark::DoNotOptimize(results.data());
        benchmark::ClobberMemory();
    }
    report(state);
}

void configure(benchmark::internal::Benchmark* benchmark) {
    benchmark->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->Repetitions(repetitions)
        ->ReportAggregatesOnly(true);
}

} // namespace

BENCHMARK(allocation_floor)->Apply(configure);
BENCHMARK(sequential)->Apply(configure);
BENCHMARK(openmp)->Apply(configure);
BENCHMARK(mproc_map)->Apply(configure);

BENCHMARK_MAIN();
