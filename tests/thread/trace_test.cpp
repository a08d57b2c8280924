// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <mproc/mproc.hpp>

namespace {

// Captures everything written to stderr (fd 2) while `body` runs.
template <class Body>
std::string capture_stderr(Body body) {
    std::fflush(stderr);
    char path[] = "/tmp/mproc-trace-XXXXXX";
    const int file = mkstemp(path);
    EXPECT_GE(file, 0);
    const int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    body();
    std::fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(file);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::remove(path);
    return text.str();
}

TEST(Trace, MprocTraceLogsEveryLifecycleStep) {
    setenv("MPROC_TRACE", "1", 1); // read once, at the first trace point of this process
    const std::string log = capture_stderr([] {
        mproc::ThreadPool pool({.workers = 2, .max_tasks_per_child = 1});
        pool.map([](int x) { return x; }, std::vector<int>{1, 2, 3, 4}, 1);
        pool.close();
        pool.join();
    });
    for (const char* step : {"started with 2 workers", "thread worker", "started in slot",
                             "retired after 1 tasks", "closed", "exiting", "joined"}) {
        EXPECT_NE(log.find(step), std::string::npos) << "missing '" << step << "' in:\n" << log;
    }
}

} // namespace
