// SPDX-License-Identifier: MIT
// Control: the same command compiles a correct Pool program, so a refusal above is the
// static_assert's doing, not a broken command.
#include <chrono>

#include <mproc/mproc.hpp>

int main() {
    mproc::Pool pool(1);
    const int product = pool.apply([](int x, int factor) { return x * factor; }, 2, 3);
    const int timed =
        pool.apply(mproc::with_timeout([](int x) { return x; }, std::chrono::seconds(1)), 6);
    return product == 6 && timed == 6 ? 0 : 1;
}
