// SPDX-License-Identifier: MIT
// Built twice, as two different programs (MPROC_FOREIGN_VARIANT differs, so do the build ids),
// and started as one MPI job: rank 0 runs one, rank 1 the other. Rank 1 must refuse to serve
// with a clear error, which rank 0's MpiPool constructor throws; then both end cleanly.

#include <cstdio>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

namespace {
int square(int x) { return x * x; }
} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    try {
        mproc::MpiPool pool(1);
        std::printf("variant %s: not refused; square(7) = %d\n", MPROC_FOREIGN_VARIANT,
                    pool.apply(square, 7));
        return 1;
    } catch (const mproc::Error& error) {
        std::printf("variant %s: refused: %s\n", MPROC_FOREIGN_VARIANT, error.what());
        return 0;
    }
}
