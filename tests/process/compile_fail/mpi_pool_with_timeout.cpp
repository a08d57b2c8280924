// SPDX-License-Identifier: MIT
// Refused at compile time: a hard task timeout on MpiPool, which cannot kill a running task
// (yet). (mproc::Pool takes the same call: see control_pool.cpp.)
#include <chrono>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

int twice(int x) { return 2 * x; }

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    mproc::MpiPool pool(1);
    return pool.apply(mproc::with_timeout(twice, std::chrono::seconds(1)), 2);
}
