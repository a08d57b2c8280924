// SPDX-License-Identifier: MIT
// Refused at compile time: a hard task timeout on ThreadPool, whose running tasks cannot be
// killed. (mproc::Pool takes the same call: see control_pool.cpp.)
#include <chrono>

#include <mproc/mproc.hpp>

int twice(int x) { return 2 * x; }

int main() {
    mproc::ThreadPool pool(1);
    return pool.apply(mproc::with_timeout(twice, std::chrono::seconds(1)), 2);
}
