// SPDX-License-Identifier: MIT
// A whole worker rank dies (killed, not a task crash the rank survives): the MPI job must end
// within bounded time with a non-zero exit status and a message, never hang. Run under mpirun
// by check_rank_death.cmake, which checks exactly that. With the argument "in_rank" the rank
// dies of a task that crashes (SIGSEGV) in it: what PoolOptions::in_rank costs.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

namespace {

/// The parent of process `pid`, from /proc.
pid_t parent_of(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    char state = 0;
    long parent = 0;
    fields >> state >> parent;
    return static_cast<pid_t>(parent);
}

/// Kills the MPI rank that runs this task: the task's process was forked by the rank's fork
/// server, which the rank forked.
int kill_this_rank(int) {
    kill(parent_of(getppid()), SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    return 0;
}

/// Crashes the process that runs it: with in_rank, the rank itself.
int crash_in_this_rank(int) {
    raise(SIGSEGV);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    const bool in_rank = argc > 1 && std::strcmp(argv[1], "in_rank") == 0;
    mproc::MpiPool pool({.workers = 2, .in_rank = in_rank});
    if (in_rank) {
        std::printf("rank 0: asking a rank to run a task that crashes, in the rank\n");
        std::fflush(stdout);
        pool.apply(crash_in_this_rank, 0);
        std::printf("rank 0: the job went on without rank 1\n"); // must not be reached
        return 0;
    }
    std::printf("rank 0: asking rank 1 to run a task that kills rank 1\n");
    std::fflush(stdout);
    pool.apply(kill_this_rank, 0);
    std::printf("rank 0: the job went on without rank 1\n"); // must not be reached
    return 0;
}
