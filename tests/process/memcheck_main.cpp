// SPDX-License-Identifier: MIT
// Every path a value takes between the caller and its worker processes, run under Valgrind's
// memcheck (tests/process/CMakeLists.txt: the caller and, with --trace-children, every worker):
// no byte that crosses a socket is uninitialised (wire buffers grow without zeroing, see
// UninitializedAllocator), and nothing is read out of bounds. Exits non-zero on a wrong result;
// memcheck's exit code on any error it found.
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

namespace {

std::int64_t square_plus_one(std::int64_t x) { return x * x + 1; }
std::string decimal(int x) { return std::to_string(x); }
std::vector<double> doubled(std::vector<double> values) {
    for (double& value : values) {
        value *= 2;
    }
    return values;
}
int fails_on_three(int x) {
    if (x == 3) {
        throw std::runtime_error("three");
    }
    return x;
}

int check(bool ok, const char* what) {
    if (!ok) {
        std::printf("wrong: %s\n", what);
    }
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    int wrong = 0;
    mproc::Pool pool(2);

    std::vector<std::int64_t> items(20000);
    std::iota(items.begin(), items.end(), 0);
    const auto blocks = pool.map(square_plus_one, items); // items and results as blocks
    wrong += check(blocks.size() == items.size() && blocks[141] == 141 * 141 + 1, "block map");

    const auto strings = pool.map(decimal, std::vector<int>{1, 22, 333}); // per-item encoding
    wrong += check(strings == std::vector<std::string>{"1", "22", "333"}, "string map");

    const auto big = pool.apply(doubled, std::vector<double>(100000, 1.5)); // a large value
    wrong += check(big.size() == 100000 && big.back() == 3.0, "large apply");

    std::int64_t sum = 0;
    for (const std::int64_t value : pool.imap_unordered(square_plus_one, items, 1)) {
        sum += value; // short chunks: pipelined windows, held answers
    }
    std::int64_t expected = 0;
    for (const std::int64_t item : items) {
        expected += square_plus_one(item);
    }
    wrong += check(sum == expected, "imap_unordered");

    try {
        pool.map(fails_on_three, std::vector<int>{1, 2, 3, 4});
        wrong += check(false, "an exception from a task");
    } catch (const std::exception& error) { // the task's exception, encoded in the worker
        wrong += check(std::string(error.what()).find("three") != std::string::npos,
                       "the task's message");
    }
    std::printf("%s\n", wrong == 0 ? "all results right" : "some results wrong");
    return wrong == 0 ? 0 : 1;
}
