// SPDX-License-Identifier: MIT
#include <mproc/mproc.hpp>

#include <iostream>
#include <numeric>
#include <ranges>

int main() {
    mproc::ThreadPool pool(2);
    const auto squares = pool.map([](int x) { return x * x; }, std::views::iota(0, 100));
    std::cout << "mproc " << mproc::version_string
              << ": sum of squares 0..99 = " << std::accumulate(squares.begin(), squares.end(), 0)
              << '\n';
}
