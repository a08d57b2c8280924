// SPDX-License-Identifier: MIT
// A program whose long resumable map gets killed, then run again to finish it: the caller in
// resumable_kill_test.cpp. Usage: resumable_caller JOURNAL LOG ITEMS. Each task appends its
// item to LOG (one line, O_APPEND) and sleeps 4 ms; at the end the program prints
// "resumed R computed C sum S" (S: the sum of the results) and exits 0. Built twice: on a
// Pool(2), and (MPROC_RESUMABLE_CALLER_MPI) on an MpiPool(2), run under mpirun.

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>
#include <mproc/resumable.hpp>
#ifdef MPROC_RESUMABLE_CALLER_MPI
#include <mproc/mpi_pool.hpp>
#endif

namespace {

long long logged_square(int x) {
    const int log = ::open(std::getenv("RESUMABLE_LOG"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    const std::string line = std::to_string(x) + "\n";
    [[maybe_unused]] const ssize_t written = ::write(log, line.data(), line.size());
    ::close(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
    return static_cast<long long>(x) * x;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: resumable_caller JOURNAL LOG ITEMS\n");
        return 2;
    }
    ::setenv("RESUMABLE_LOG", argv[2], 1); // before any worker starts: every worker inherits it
#ifdef MPROC_RESUMABLE_CALLER_MPI
    mproc::serve_if_worker(argc, argv); // worker ranks serve here
    mproc::MpiPool pool(2);
#else
    mproc::Pool pool(2);
#endif
    std::vector<int> items(static_cast<std::size_t>(std::atoi(argv[3])));
    std::iota(items.begin(), items.end(), 0);
    auto resumable = mproc::resumable(pool, argv[1]);
    const std::vector<long long> squares = resumable.map(logged_square, items, 1);
    std::printf("resumed %zu computed %zu sum %lld\n", resumable.resumed(), resumable.computed(),
                std::accumulate(squares.begin(), squares.end(), 0LL));
    return 0;
}
