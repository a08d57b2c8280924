// SPDX-License-Identifier: MIT
// The suite's own main: spawned workers of SpawnPool are fresh runs of this program and must
// serve the pool instead of running the tests again; so must the worker ranks of MpiPool (in
// conformance_mpi_tests), which serve until rank 0 has run the tests.
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
