// SPDX-License-Identifier: MIT
#include <mproc/thread_pool.hpp>

#include <iostream>
#include <numeric>
#include <ranges>
#include <vector>

int main() {
    int initialized = 0;
    mproc::ThreadPool pool({.workers = 2, .initializer = [&initialized] { ++initialized; }});
    const auto squares = pool.map([](int x) { return x * x; }, std::views::iota(0, 100));
    int streamed = 0;
    for (const int square : pool.imap([](int x) { return x * x; }, std::vector<int>{1, 2, 3})) {
        streamed += square;
    }
    const int applied = pool.apply_async([](int x) { return x + 1; }, 41).get();
    std::cout << "sum of squares 0..99 = " << std::accumulate(squares.begin(), squares.end(), 0)
              << ", imap " << streamed << ", apply " << applied << '\n';
}
