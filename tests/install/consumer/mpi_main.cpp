// SPDX-License-Identifier: MIT
// Links mproc::mpi as a user's project does. Started without mpirun, as the install test runs
// it, MpiPool must refuse with its message (which proves the component links and runs).
#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include <iostream>

int square(int x) { return x * x; }

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    try {
        mproc::MpiPool pool;
        std::cout << "square(7) = " << pool.apply(square, 7) << '\n';
    } catch (const mproc::Error& error) {
        std::cout << "MpiPool refused: " << error.what() << '\n';
    }
}
