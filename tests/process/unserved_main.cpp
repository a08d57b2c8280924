// SPDX-License-Identifier: MIT
// A program that forgets mproc::serve_if_worker: a spawn pool must fail with a message that says
// what to add, not re-run the program in every worker without end.
#include <cstdio>

#include <mproc/mproc.hpp>

int main() {
    try {
        mproc::Pool pool({.workers = 2, .start_method = mproc::StartMethod::spawn});
        std::puts("pool started: the missing serve_if_worker went unnoticed");
        return 1;
    } catch (const mproc::Error& error) {
        std::printf("caught: %s\n", error.what());
        return 0;
    }
}
