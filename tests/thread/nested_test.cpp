// SPDX-License-Identifier: MIT
// Nested parallelism on ThreadPool: a task that waits for tasks it submitted to its own pool
// (get, wait, apply, map, a stream's next, mproc::wait) runs queued chunks while it waits, so it
// never starves for threads, whatever the pool's size.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mproc/thread_pool.hpp"
#include "mproc/wait.hpp"

namespace {

using namespace std::chrono_literals;

/// Fails a test that hangs: a deadlock is what these tests look for.
class NestedTest : public ::testing::Test {
  protected:
    NestedTest()
        : watchdog_([this] {
              for (int i = 0; i < 600 && !done_.load(); ++i) {
                  std::this_thread::sleep_for(100ms);
              }
              if (!done_.load()) {
                  ADD_FAILURE() << "deadlock: the test did not end within 60 s";
                  std::_Exit(1);
              }
          }) {}
    ~NestedTest() override {
        done_ = true;
        watchdog_.join();
    }

  private:
    std::atomic<bool> done_{false};
    std::thread watchdog_;
};

int square(int x) { return x * x; }

TEST_F(NestedTest, TasksThatWaitForTasksOfTheirOwnPoolFinishOnAnyPoolSize) {
    for (std::size_t workers : {1, 2, 3}) {
        mproc::ThreadPool pool(workers);
        // Every worker runs an outer task that waits for inner ones queued behind it.
        std::vector<mproc::AsyncResult<int>> outer;
        for (int i = 0; i < 8; ++i) {
            outer.push_back(pool.apply_async([&pool, i] {
                auto inner = pool.apply_async(square, i);
                return inner.get(30s) + 1;
            }));
        }
        for (int i = 0; i < 8; ++i) {
            EXPECT_EQ(outer[i].get(), i * i + 1) << workers << " workers";
        }
    }
}

TEST_F(NestedTest, EveryBlockingCallHelps) {
    mproc::ThreadPool pool(2);
    auto through = [&pool](int how) {
        switch (how) {
        case 0:
            return pool.apply(square, 3);
        case 1: {
            const auto squares = pool.map(square, std::vector<int>{1, 2, 3});
            return std::accumulate(squares.begin(), squares.end(), 0);
        }
        case 2: {
            auto result = pool.map_async(square, std::vector<int>{2, 2});
            result.wait();
            return result.get()[0] + result.get()[1];
        }
        case 3: {
            int sum = 0;
            for (int r : pool.imap_unordered(square, std::views::iota(0, 20), 3)) {
                sum += r;
            }
            return sum;
        }
        default: {
            std::vector<mproc::AsyncResult<int>> inner;
            inner.push_back(pool.apply_async(square, 5));
            inner.push_back(pool.apply_async(square, 6));
            mproc::wait(inner);
            int sum = 0;
            for (auto& r : mproc::as_completed(inner)) {
                sum += r.get();
            }
            return sum;
        }
        }
    };
    std::vector<mproc::AsyncResult<int>> outer;
    for (int round = 0; round < 3; ++round) {
        for (int how = 0; how < 5; ++how) {
            outer.push_back(pool.apply_async(through, how));
        }
    }
    const std::vector<int> expected{9, 14, 8, 2470, 61};
    for (std::size_t i = 0; i < outer.size(); ++i) {
        EXPECT_EQ(outer[i].get(), expected[i % 5]) << "way " << i % 5;
    }
}

long fibonacci(mproc::ThreadPool& pool, int n) {
    if (n < 15) {
        return n < 2 ? n : fibonacci(pool, n - 1) + fibonacci(pool, n - 2);
    }
    auto left = pool.apply_async([&pool, n] { return fibonacci(pool, n - 1); });
    const long right = fibonacci(pool, n - 2);
    return left.get() + right;
}

TEST_F(NestedTest, RecursiveForkJoin) {
    mproc::ThreadPool pool(2);
    EXPECT_EQ(fibonacci(pool, 25), 75025);
    EXPECT_EQ(pool.apply([&pool] { return fibonacci(pool, 22); }), 17711);
}

TEST_F(NestedTest, ErrorsOfInnerTasksReachTheOuterAndItsCaller) {
    mproc::ThreadPool pool(1);
    auto outer = pool.apply_async([&pool] {
        auto inner = pool.apply_async([]() -> int { throw std::runtime_error("inner failed"); });
        return inner.get();
    });
    EXPECT_THROW(outer.get(), std::runtime_error);
}

TEST_F(NestedTest, AWaitWithATimeoutTimesOutWhenNothingIsQueued) {
    mproc::ThreadPool pool(2);
    const auto outcome = pool.apply([&pool] {
        std::atomic<bool> started{false};
        auto inner = pool.apply_async([&started] {
            started = true;
            std::this_thread::sleep_for(300ms);
            return 1;
        });
        while (!started) { // the other worker runs it: nothing is left to help with
            std::this_thread::yield();
        }
        const bool ready_in_time = inner.wait(30ms);
        return std::pair(ready_in_time, inner.get());
    });
    EXPECT_FALSE(outcome.first);
    EXPECT_EQ(outcome.second, 1);
}

TEST_F(NestedTest, AHelpedChunkMayCarryAWaitPastItsTimeout) {
    mproc::ThreadPool pool(1);
    const auto outcome = pool.apply([&pool] {
        // The only worker waits, so it runs the inner task itself; the wait ends with it.
        auto inner = pool.apply_async([] {
            std::this_thread::sleep_for(100ms);
            return 1;
        });
        const bool ready = inner.wait(10ms);
        return std::pair(ready, inner.get());
    });
    EXPECT_TRUE(outcome.first);
    EXPECT_EQ(outcome.second, 1);
}

} // namespace
