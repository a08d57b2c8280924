// The suite's own main: spawned workers of SpawnPool are fresh runs of this program and must
// serve the pool instead of running the tests again.
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
