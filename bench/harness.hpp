// SPDX-License-Identifier: MIT
#pragma once
// The measuring harness shared by the bench programs: contenders measured in turns, one JSON
// object a line per contender, read by scripts/bench_all.sh.
//
// A line: {"workload": ..., "impl": ..., "workers": ..., "unit": ..., "better": "lower" |
// "higher", "median": ..., "min": ..., "max": ..., "repetitions": ..., "size": ...}

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Contender {
    std::string_view impl;
    /// One timed repetition: returns the figure (in the workload's unit).
    std::function<double()> measure;
    /// The workers (threads or processes) it ran on; 1 for sequential code.
    std::size_t workers = 1;
};

inline double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/// Pause before every measurement, so that threads the previous contender left spinning (an
/// OpenMP team spins for milliseconds after a parallel region) are asleep and do not compete.
inline constexpr std::chrono::milliseconds settle{20};

/// Runs each contender once untimed (page faults, lazy binding, thread start-up), then
/// `repetitions` times, the order reversed every repetition (A B C, C B A, ...) so that a burst
/// of load on a shared machine does not land on one contender only; prints one line each.
inline void run_workload(std::string_view workload, std::string_view unit, std::string_view better,
                         std::size_t size, int repetitions, std::vector<Contender> contenders) {
    std::vector<std::vector<double>> figures(contenders.size());
    for (auto& contender : contenders) {
        contender.measure();
    }
    for (int rep = 0; rep < repetitions; ++rep) {
        for (std::size_t k = 0; k < contenders.size(); ++k) {
            const std::size_t which = rep % 2 == 0 ? k : contenders.size() - 1 - k;
            std::this_thread::sleep_for(settle);
            figures[which].push_back(contenders[which].measure());
        }
    }
    for (std::size_t k = 0; k < contenders.size(); ++k) {
        const auto [low, high] = std::minmax_element(figures[k].begin(), figures[k].end());
        std::printf("{\"workload\": \"%.*s\", \"impl\": \"%.*s\", \"workers\": %zu, \"unit\": "
                    "\"%.*s\", \"better\": \"%.*s\", \"median\": %.6g, \"min\": %.6g, \"max\": "
                    "%.6g, \"repetitions\": %d, \"size\": %zu}\n",
                    static_cast<int>(workload.size()), workload.data(),
                    static_cast<int>(contenders[k].impl.size()), contenders[k].impl.data(),
                    contenders[k].workers, static_cast<int>(unit.size()), unit.data(),
                    static_cast<int>(better.size()), better.data(), median(figures[k]), *low, *high,
                    repetitions, size);
        std::fflush(stdout);
    }
}

/// Microseconds an item of `pool.imap_unordered(f, 0..items-1, chunksize 1)`, every result taken
/// (the per-item overhead both bench programs measure). `f` must return a positive value for
/// every item: a result missing or wrong aborts the program.
template <class Pool, class F>
double imap_unordered_us_per_item(Pool& pool, const F& f, std::size_t items) {
    const auto n = static_cast<std::int64_t>(items);
    std::size_t received = 0;
    const auto t0 = Clock::now();
    for (std::int64_t r : pool.imap_unordered(f, std::views::iota(std::int64_t{0}, n), 1)) {
        received += r > 0 ? 1 : 0;
    }
    const double elapsed = seconds_since(t0);
    if (received != items) {
        std::abort();
    }
    return elapsed / static_cast<double>(items) * 1e6;
}

/// Keeps a computed value alive so that the optimiser cannot drop the work that made it.
template <class T>
inline void keep(const T& value) {
    asm volatile("" : : "r"(&value) : "memory");
}

/// The options every bench program takes: --quick, --repetitions N, --only a,b.
struct CommonOptions {
    bool quick = false;
    std::optional<int> repetitions;
    std::vector<std::string> only; // empty: every workload

    bool wanted(std::string_view workload) const {
        return only.empty() || std::ranges::find(only, workload) != only.end();
    }
};

/// Prints `message` and the program's usage line, and exits with status 2.
[[noreturn]] inline void usage_error(const char* usage, const std::string& message) {
    std::fprintf(stderr, "%s\nusage: %s\n", message.c_str(), usage);
    std::exit(2);
}

/// Parses the common options; `extra(name, value)` takes a program's own option (which always
/// has a value) and returns false for one it does not know.
template <class Extra>
CommonOptions parse_options(int argc, char** argv, const char* usage, Extra&& extra) {
    CommonOptions o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        if (arg == "--quick") {
            o.quick = true;
            continue;
        }
        if (value == nullptr) {
            usage_error(usage, "missing value or unknown argument " + std::string(arg));
        }
        ++i;
        if (arg == "--repetitions") {
            o.repetitions = std::atoi(value);
            if (*o.repetitions <= 0) {
                usage_error(usage, "--repetitions must be positive");
            }
        } else if (arg == "--only") {
            for (auto part : std::string_view(value) | std::views::split(',')) {
                o.only.emplace_back(part.begin(), part.end());
            }
        } else if (!extra(arg, std::string_view(value))) {
            usage_error(usage, "unknown argument " + std::string(arg));
        }
    }
    return o;
}

} // namespace bench
