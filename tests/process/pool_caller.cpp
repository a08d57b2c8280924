// SPDX-License-Identifier: MIT
// A program that uses a process pool and then gets killed: the caller in the caller-death tests
// (caller_death_test.cpp starts it). It prints the pids of its fork server, the server's standby
// and its workers, then "mapping", then blocks in a long map until a signal ends it.

#include <cstdio>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "process_table.hpp"

namespace {
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
} // namespace

int main() {
    mproc::Pool pool(2);
    pool.map(sleep_ms, std::vector<int>{1, 1, 1, 1}, 1); // the workers are up and serving
    // ...and the fork server's standby, which it makes once it has served a moment.
    const std::vector<long> children = process_table::child_processes();
    if (children.size() == 1) {
        process_table::await_live_children(children[0], 3, std::chrono::seconds(10));
    }
    std::printf("pids");
    for (const long pid : process_table::descendant_processes()) {
        std::printf(" %ld", pid);
    }
    std::printf("\nmapping\n");
    std::fflush(stdout);
    pool.map(sleep_ms, std::vector<int>(1000, 1000), 1); // long enough to be interrupted
    std::printf("map ended without a signal\n");
    return 1;
}
