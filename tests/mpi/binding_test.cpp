// SPDX-License-Identifier: MIT
// Open MPI's default binding (each of 2 ranks on one core) must not squeeze a worker rank's
// worker processes onto one core, and a binding the user chose must be kept. Run under
// `mpirun -n 2` twice by ctest: as is (argument `widened`) and with `--bind-to core` (`kept`).

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

namespace {

std::string expectation; // "widened" or "kept"

/// The CPUs this process may run on (its affinity).
std::size_t cpus_of_this_task(int) { return mproc::cpu_count(); }

TEST(MpiBindingTest, WorkerProcessesOfARankBoundToOneCore) {
    if (std::thread::hardware_concurrency() < 2 || mproc::cpu_count() != 1) {
        GTEST_SKIP() << "mpirun did not bind the ranks to one core each (a machine of one core, "
                        "or more ranks than cores)";
    }
    mproc::MpiPool pool(2); // both on rank 1, which mpirun bound to one core like rank 0
    const std::vector<std::size_t> cpus = pool.map(cpus_of_this_task, std::vector<int>(8, 0), 1);
    for (const std::size_t n : cpus) {
        if (expectation == "widened") {
            EXPECT_GE(n, 2u) << "the worker processes share the one core mpirun bound rank 1 to";
        } else {
            EXPECT_EQ(n, 1u) << "the binding the user chose (--bind-to core) was not kept";
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv); // rank 1 serves here, then exits with status 0
    ::testing::InitGoogleTest(&argc, argv);
    if (argc != 2 || (std::string(argv[1]) != "widened" && std::string(argv[1]) != "kept")) {
        std::fprintf(stderr, "usage: mpirun -n 2 mpi_binding_test widened|kept\n");
        return 2;
    }
    expectation = argv[1];
    alarm(100); // a hang fails the job (SIGALRM ends rank 0; mpirun then ends the rest)
    return RUN_ALL_TESTS();
}
