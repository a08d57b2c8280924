// SPDX-License-Identifier: MIT
// Python's concurrent.futures and asyncio, on an mproc pool: take results as they finish, wait
// for the first, get told when one ends, cancel one, co_await one (or a stream's results) in a
// coroutine, and nest tasks.
//
//   build/<dir>/examples/futures

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

/// A task that takes `ms` milliseconds and returns them.
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

/// The least coroutine type there is: it starts at once and nobody waits for it. (Real programs
/// use their framework's task type; `co_await` on an mproc result works in any of them.)
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

/// Awaits two tasks without holding a thread while they run.
Detached add_two_tasks(mproc::Pool& pool, std::promise<int>& sum) {
    const int a = co_await pool.apply_async(sleep_ms, 200);
    const int b = co_await pool.apply_async(sleep_ms, 100);
    sum.set_value(a + b);
}

/// Sums a stream's results as they come, without holding a thread (Python's `async for`).
Detached sum_stream(mproc::Pool& pool, std::promise<int>& sum) {
    auto stream = pool.imap_unordered(sleep_ms, std::vector<int>{30, 10, 20});
    int total = 0;
    while (std::optional<int> ms = co_await stream.next_async()) {
        total += *ms;
    }
    sum.set_value(total);
}

/// Fibonacci with a task per call above the cutoff, each waiting for its subtask: on a
/// ThreadPool a waiting worker runs queued tasks, so this never starves for threads.
long fibonacci(mproc::ThreadPool& pool, int n) {
    if (n < 20) {
        return n < 2 ? n : fibonacci(pool, n - 1) + fibonacci(pool, n - 2);
    }
    auto left = pool.apply_async([&pool, n] { return fibonacci(pool, n - 1); });
    const long right = fibonacci(pool, n - 2);
    return left.get() + right;
}

int main(int argc, char** argv) {
    mproc::serve_if_worker(argc, argv);
    mproc::Pool pool(3);

    // concurrent.futures.as_completed: each result as it finishes.
    std::vector<mproc::AsyncResult<int>> results;
    for (int ms : {300, 100, 200}) {
        results.push_back(pool.apply_async(sleep_ms, ms));
    }
    std::printf("as_completed:");
    for (auto& result : mproc::as_completed(results)) {
        std::printf(" %d", result.get());
    }
    std::printf("\n");

    // concurrent.futures.wait(..., return_when=FIRST_COMPLETED).
    std::vector<mproc::AsyncResult<int>> race;
    race.push_back(pool.apply_async(sleep_ms, 400));
    race.push_back(pool.apply_async(sleep_ms, 50));
    const auto [done, not_done] = mproc::wait(race, mproc::FirstCompleted, 5s);
    std::printf("wait(FirstCompleted): the first done is #%zu (%d ms), %zu still running\n",
                done.front(), race[done.front()].get(), not_done.size());

    // Future.add_done_callback: called once the call has ended.
    auto reported = pool.apply_async(sleep_ms, 50);
    reported.add_done_callback([](const mproc::AsyncResult<int>& result) {
        std::printf("add_done_callback: the task took %d ms\n", result.get());
    });
    reported.wait();

    // Future.cancel, and more: a task running on a Pool is killed with its worker (replaced).
    auto endless = pool.apply_async(sleep_ms, 60'000);
    std::this_thread::sleep_for(100ms); // it is running
    std::printf("cancel: %s\n", endless.cancel() ? "true" : "false");
    try {
        endless.get();
    } catch (const mproc::Cancelled&) {
        std::printf("cancel: get() throws mproc::Cancelled; the pool goes on: %d ms\n",
                    pool.apply(sleep_ms, 10));
    }

    // await loop.run_in_executor(pool, f, x): co_await on a result.
    std::promise<int> sum;
    std::future<int> sum_reported = sum.get_future();
    add_two_tasks(pool, sum);
    std::printf("co_await: the coroutine is suspended; main goes on\n");
    std::printf("co_await: 200 + 100 = %d\n", sum_reported.get());

    // async for: co_await on each result of a stream.
    std::promise<int> total;
    std::future<int> total_reported = total.get_future();
    sum_stream(pool, total);
    std::printf("co_await on a stream: 30 + 10 + 20 = %d\n", total_reported.get());

    // Nested parallelism on a ThreadPool of 2.
    mproc::ThreadPool threads(2);
    std::printf("nested: fibonacci(27) = %ld\n", fibonacci(threads, 27));
    return 0;
}
