// SPDX-License-Identifier: MIT
// Quick start: a tour of the whole mproc API on mproc::ThreadPool. Every pool class takes the
// same calls; only the class name changes. Replacing `mproc::ThreadPool` by `mproc::Pool` below
// moves this very code to worker processes (every task here is a plain function or a lambda
// without captures, over ints: transportable); process_pool.cpp shows what processes add.
//
// Build and run:
//   cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release && cmake --build build/release
//   build/release/examples/quickstart

#include <chrono>
#include <cstdio>
#include <exception>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mproc/mproc.hpp"

namespace {

int square(int x) { return x * x; }

int add(int a, int b) { return a + b; }

// A task that fails: the exception reaches the caller (on the thread pool, the very same object).
int reciprocal_percent(int x) {
    if (x == 0) {
        throw std::invalid_argument("reciprocal_percent: division by zero");
    }
    return 100 / x;
}

int slow_square(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return x * x;
}

void print_vector(const char* label, const std::vector<int>& values) {
    std::printf("%s", label);
    for (int v : values) {
        std::printf(" %d", v);
    }
    std::printf("\n");
}

} // namespace

int main() {
    // A pool of 4 worker threads (mproc::ThreadPool pool; alone starts mproc::cpu_count());
    // mproc::Pool pool(4); would start 4 worker processes instead.
    // Like Python's `with Pool(4) as pool:`, the destructor terminates and joins it.
    mproc::ThreadPool pool(4);
    std::printf("pool with %zu workers (this machine has %zu cores)\n", pool.workers(),
                mproc::cpu_count());

    // ---- apply: one call on a worker, blocking until its result is in.
    std::printf("apply(add, 2, 3) = %d\n", pool.apply(add, 2, 3));

    // ---- apply_async: returns an AsyncResult at once; get() waits for the value.
    mproc::AsyncResult<int> pending = pool.apply_async(square, 7);
    std::printf("apply_async(square, 7).get() = %d\n", pending.get());

    // Callbacks (Python's callback= and error_callback=) run on a pool thread, one at a time for
    // the whole pool, and have finished before get()/wait() return.
    std::printf("apply_async(reciprocal_percent, 4) with callbacks:\n");
    auto with_callbacks = pool.apply_async(
        mproc::callbacks([](int value) { std::printf("  success callback got %d\n", value); },
                         [](std::exception_ptr) { std::printf("  error callback\n"); }),
        reciprocal_percent, 4);
    with_callbacks.wait();
    std::printf("apply_async(reciprocal_percent, 0) with an error callback:\n");
    auto failing = pool.apply_async(mproc::on_error([](std::exception_ptr error) {
                                        try {
                                            std::rethrow_exception(error);
                                        } catch (const std::exception& e) {
                                            std::printf("  error callback got: %s\n", e.what());
                                        }
                                    }),
                                    reciprocal_percent, 0);
    failing.wait();
    std::printf("  successful() = %s\n", failing.successful() ? "true" : "false");
    try {
        failing.get(); // rethrows the task's exception
    } catch (const std::invalid_argument& e) {
        std::printf("  get() threw std::invalid_argument: %s\n", e.what());
    }

    // ---- map: f over every item, results in input order; blocks until all are in. The input is
    // split into chunks (by default about four per worker), the unit a worker takes at a time.
    std::vector<int> numbers(10);
    std::iota(numbers.begin(), numbers.end(), 0);
    print_vector("map(square, 0..9) =", pool.map(square, numbers));
    print_vector("map(square, 0..9, chunksize 5) =", pool.map(square, numbers, 5));

    // A failing item makes map throw the first failure, after every chunk has run.
    try {
        pool.map(reciprocal_percent, std::vector{1, 2, 0, 4});
    } catch (const std::invalid_argument& e) {
        std::printf("map(reciprocal_percent, {1, 2, 0, 4}) threw: %s\n", e.what());
    }

    // ---- map_async: map that returns at once; get(timeout) throws mproc::TimeoutError if the
    // result is not ready in time, and the call goes on.
    auto squares = pool.map_async(slow_square, std::vector{1, 2, 3, 4}, 1);
    try {
        squares.get(std::chrono::milliseconds(10));
    } catch (const mproc::TimeoutError& e) {
        std::printf("map_async(slow_square, ...).get(10 ms) threw mproc::TimeoutError: %s\n",
                    e.what());
    }
    print_vector("map_async(slow_square, {1, 2, 3, 4}).get(5 s) =",
                 squares.get(std::chrono::seconds(5)));

    // ---- starmap: each item is a tuple (or pair) unpacked into the arguments.
    std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    print_vector("starmap(add, {(1,2), (3,4), (5,6)}) =", pool.starmap(add, pairs));

    // ---- imap: lazy, in input order, each result as soon as it (and those before it) is ready.
    // The input is read only as workers need it, so it may be endless.
    std::printf("imap(square, 0..5, chunksize 2):");
    for (int r : pool.imap(square, std::views::iota(0, 6), 2)) {
        std::printf(" %d", r);
    }
    std::printf("\n");

    // ---- imap_unordered: the same in completion order. Leaving the loop early (break) cancels
    // the work not yet started; here the input is endless.
    std::printf("imap_unordered(square, 0, 1, 2, ...) until a result exceeds 50:");
    for (int r : pool.imap_unordered(square, std::views::iota(0))) {
        std::printf(" %d", r);
        if (r > 50) {
            break;
        }
    }
    std::printf("\n");

    // next(timeout) is the stream's get(timeout): one result, or mproc::TimeoutError.
    auto stream = pool.imap(slow_square, std::vector{5, 6});
    try {
        stream.next(std::chrono::milliseconds(10));
    } catch (const mproc::TimeoutError&) {
        std::printf("imap(slow_square, ...).next(10 ms) threw mproc::TimeoutError\n");
    }
    while (auto r = stream.next()) {
        std::printf("  next() = %d\n", *r);
    }

    // ---- close, then join: no new work is taken, queued work finishes, the workers exit.
    pool.close();
    try {
        pool.apply(square, 1);
    } catch (const mproc::PoolNotRunning& e) {
        std::printf("apply after close() threw mproc::PoolNotRunning: %s\n", e.what());
    }
    pool.join();
    std::printf("closed and joined\n");
}
