// SPDX-License-Identifier: MIT
// A whole host is lost during a map: run across test hosts by check_lost_host.sh, which kills
// every process of one host once the map runs and checks that the job ends within bounded time,
// with a non-zero exit status and a message naming that host, and that no process is left on
// any host.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

namespace {

/// Long enough that the map still runs when the host is killed.
int slow_identity(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return x;
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    mproc::MpiPool pool;
    std::vector<int> items(1000);
    for (int i = 0; i < static_cast<int>(items.size()); ++i) {
        items[static_cast<std::size_t>(i)] = i;
    }
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::printf("rank 0 on %s (pid %ld): map started\n", host, static_cast<long>(getpid()));
    std::fflush(stdout);
    const std::vector<int> results = pool.map(slow_identity, items, 1);
    std::printf("rank 0: the map ended with %zu results\n", results.size()); // must not be reached
    return 0;
}
