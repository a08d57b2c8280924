// SPDX-License-Identifier: MIT
// Memory of a stream: 1 KiB items from a lazy generator through imap/imap_unordered, and how much
// the caller's resident memory grows over its baseline while they stream. One measurement per
// run of the program (a fresh process, so nothing of an earlier measurement is in the baseline);
// prints one JSON line. bench/python_imap_memory.py measures Python's Pool.imap the same way;
// scripts/bench_memory.sh runs both and prints the table.
//
//   imap_memory_bench --pool thread|process --order ordered|unordered --items N
//                     [--chunksize C] [--buffersize B] [--consumer-sleep-us S]
//
// Each item i is 1 KiB with byte k = (i + k) mod 256; the task returns it reversed (a 1 KiB
// result, as an image or record pipeline would); the consumer checks every result. With
// --consumer-sleep-us the consumer sleeps that long per result, as one writing results to disk
// or a socket would: the workers then outrun it and only backpressure keeps memory flat.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ranges>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "mproc/mproc.hpp"

namespace {

struct Record {
    std::array<std::uint8_t, 1024> bytes;
};

std::uint64_t items_read = 0; // by the generator, on the consumer's thread

Record make_record(std::uint64_t i) {
    ++items_read;
    Record record;
    for (std::size_t k = 0; k < record.bytes.size(); ++k) {
        record.bytes[k] = static_cast<std::uint8_t>(i + k);
    }
    return record;
}

Record reversed(const Record& record) {
    Record out;
    std::reverse_copy(record.bytes.begin(), record.bytes.end(), out.bytes.begin());
    return out;
}

/// A field of /proc/self/status, in KiB.
long status_kib(std::string_view field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
            return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
        }
    }
    return -1;
}

/// Makes VmHWM (the peak) start again from the current resident size.
bool reset_peak() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    return static_cast<bool>(clear);
}

struct Options {
    std::string pool = "thread";
    std::string order = "ordered";
    std::uint64_t items = 1'000'000;
    std::ptrdiff_t chunksize = 64;
    std::ptrdiff_t buffersize = 0; // 0: the pool's default
    long consumer_sleep_us = 0;
};

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: imap_memory_bench --pool thread|process --order "
                         "ordered|unordered --items N [--chunksize C] [--buffersize B] "
                         "[--consumer-sleep-us S]\n");
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            usage();
        }
        const std::string_view name = argv[i];
        const char* value = argv[i + 1];
        if (name == "--pool") {
            options.pool = value;
        } else if (name == "--order") {
            options.order = value;
        } else if (name == "--items") {
            options.items = std::strtoull(value, nullptr, 10);
        } else if (name == "--chunksize") {
            options.chunksize = std::strtol(value, nullptr, 10);
        } else if (name == "--buffersize") {
            options.buffersize = std::strtol(value, nullptr, 10);
        } else if (name == "--consumer-sleep-us") {
            options.consumer_sleep_us = std::strtol(value, nullptr, 10);
        } else {
            usage();
        }
    }
    if ((options.pool != "thread" && options.pool != "process") ||
        (options.order != "ordered" && options.order != "unordered") || options.items == 0) {
        usage();
    }
    return options;
}

template <class Pool>
int measure(const Options& options) {
    Pool pool(2);
    const std::ptrdiff_t buffersize = options.buffersize > 0
                                          ? options.buffersize
                                          : static_cast<std::ptrdiff_t>(pool.default_buffersize());
    auto stream_of = [&](std::uint64_t items) {
        auto input = std::views::iota(std::uint64_t{0}, items) | std::views::transform(make_record);
        return options.order == "ordered"
                   ? pool.imap(reversed, std::move(input), options.chunksize, buffersize)
                   : pool.imap_unordered(reversed, std::move(input), options.chunksize, buffersize);
    };
    // Warm up (allocator arenas, worker start-up), then take the baseline.
    for (const Record& record : stream_of(10'000)) {
        static_cast<void>(record);
    }
    items_read = 0;
    const long baseline = status_kib("VmRSS");
    const bool peak_reset = reset_peak();

    const auto start = std::chrono::steady_clock::now();
    std::uint64_t consumed = 0;
    std::uint64_t most_ahead = 0;
    std::uint64_t checksum = 0;
    long sampled_peak = baseline;
    for (const Record& record : stream_of(options.items)) {
        most_ahead = std::max(most_ahead, items_read - consumed);
        ++consumed;
        checksum += record.bytes[0];
        if (consumed % 65536 == 0) {
            sampled_peak = std::max(sampled_peak, status_kib("VmRSS"));
        }
        if (options.consumer_sleep_us > 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(options.consumer_sleep_us));
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const long peak = peak_reset ? status_kib("VmHWM") : std::max(sampled_peak, baseline);

    // Result of item i starts with byte (i + 1023) mod 256.
    std::uint64_t expected = 0;
    for (std::uint64_t i = 0; i < options.items; ++i) {
        expected += static_cast<std::uint8_t>(i + 1023);
    }
    std::printf("{\"program\": \"mproc\", \"pool\": \"%s\", \"order\": \"%s\", \"items\": %llu, "
                "\"item_bytes\": 1024, \"chunksize\": %td, \"buffersize\": %td, "
                "\"consumer_sleep_us\": %ld, \"baseline_kib\": %ld, \"growth_kib\": %ld, "
                "\"peak_from\": \"%s\", \"max_read_ahead\": %llu, \"read_ahead_bound\": %td, "
                "\"seconds\": %.3f, \"results_ok\": %s}\n",
                options.pool.c_str(), options.order.c_str(),
                static_cast<unsigned long long>(options.items), options.chunksize, buffersize,
                options.consumer_sleep_us, baseline, peak - baseline,
                peak_reset ? "VmHWM" : "sampled VmRSS", static_cast<unsigned long long>(most_ahead),
                buffersize * options.chunksize, seconds,
                consumed == options.items && checksum == expected ? "true" : "false");
    return consumed == options.items && checksum == expected ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    return options.pool == "thread" ? measure<mproc::ThreadPool>(options)
                                    : measure<mproc::Pool>(options);
}
