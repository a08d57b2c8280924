// SPDX-License-Identifier: MIT
// PoolOptions::caller_runs_chunks: a blocking call's own thread runs the chunks of its call that
// no worker has started. To make that deterministic, the tests occupy the pool's only worker with
// a task that waits on a gate: every chunk of the next blocking call is then still queued, and
// only the calling thread can run it. The gate opens by itself after a while, so a pool that
// does not let the caller help makes the checks fail instead of hanging.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

namespace {

using namespace std::chrono_literals;

mproc::PoolOptions helping(std::ptrdiff_t workers) {
    return {.workers = workers, .caller_runs_chunks = true};
}

/// Keeps a pool's worker busy until opened (or until a time limit, so nothing hangs).
class Gate {
  public:
    /// Starts a task on `pool` that holds one worker until the gate opens; returns once it runs.
    explicit Gate(mproc::ThreadPool& pool)
        : held_(pool.apply_async([state = state_] {
              state->entered = true;
              const auto limit = std::chrono::steady_clock::now() + 5s;
              while (!state->open && std::chrono::steady_clock::now() < limit) {
                  std::this_thread::sleep_for(1ms);
              }
              return mproc::this_worker::id();
          })) {
        while (!state_->entered) {
            std::this_thread::yield();
        }
    }
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    ~Gate() { open(); }

    /// Lets the held worker go; returns its worker id.
    std::uint64_t open() {
        state_->open = true;
        return held_.get();
    }

  private:
    struct State {
        std::atomic<bool> entered{false};
        std::atomic<bool> open{false};
    };
    std::shared_ptr<State> state_ = std::make_shared<State>();
    mproc::AsyncResult<std::uint64_t> held_;
};

/// What ran an item: its thread and the worker id it saw.
struct Runner {
    std::thread::id thread;
    std::uint64_t worker_id;
    int value;
};

Runner run_here(int x) { return {std::this_thread::get_id(), mproc::this_worker::id(), x * x}; }

TEST(CallerRunsChunks, TheCallerRunsTheChunksNoWorkerStarted) {
    mproc::ThreadPool pool(helping(1));
    Gate gate(pool);
    std::vector<int> input(40);
    std::iota(input.begin(), input.end(), 0);
    const std::vector<Runner> runners = pool.map(run_here, input, 1);
    const std::uint64_t gate_worker = gate.open();
    ASSERT_EQ(runners.size(), input.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
        EXPECT_EQ(runners[i].value, input[i] * input[i]) << "item " << i;
        EXPECT_EQ(runners[i].thread, std::this_thread::get_id()) << "item " << i;
        // The caller is no worker: it keeps its own id (0 here) while it runs a task.
        EXPECT_EQ(runners[i].worker_id, 0u) << "item " << i;
    }
    EXPECT_NE(gate_worker, 0u);
}

TEST(CallerRunsChunks, EveryBlockingCallLetsTheCallerHelp) {
    mproc::ThreadPool pool(helping(1));
    Gate gate(pool);
    const auto caller = std::this_thread::get_id();
    auto thread_of = [](int) { return std::this_thread::get_id(); };

    EXPECT_EQ(pool.apply([] { return std::this_thread::get_id(); }), caller);
    EXPECT_EQ(pool.map(thread_of, std::vector<int>(8)), std::vector(8, caller));
    // An input that is copied first (not random access) takes the other path into the job.
    std::vector<std::thread::id> ids =
        pool.map(thread_of, std::views::iota(0, 8) | std::views::filter([](int) { return true; }));
    EXPECT_EQ(ids, std::vector(8, caller));
    std::vector<std::thread::id> out(8);
    pool.map_into(thread_of, std::vector<int>(8), out, 2);
    EXPECT_EQ(out, std::vector(8, caller));
    const std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    EXPECT_EQ(
        pool.starmap([](int a, int b) { return std::pair(a * b, std::this_thread::get_id()); },
                     pairs),
        (std::vector<std::pair<int, std::thread::id>>{{2, caller}, {12, caller}, {30, caller}}));
    gate.open();
}

TEST(CallerRunsChunks, AsyncCallsStillRunOnWorkers) {
    // Only a blocking call helps: an AsyncResult may be waited for after its pool is gone.
    mproc::ThreadPool pool(helping(1));
    auto result = pool.map_async([](int) { return mproc::this_worker::id(); }, std::vector<int>(4));
    for (const std::uint64_t id : result.get()) {
        EXPECT_NE(id, 0u);
    }
}

TEST(CallerRunsChunks, ResultsAndOrderAreThoseOfAPoolWithoutIt) {
    mproc::ThreadPool plain(2);
    mproc::ThreadPool helped(helping(2));
    auto f = [](std::int64_t x) { return x * x - 3 * x + 1; };
    for (const std::size_t n : {0u, 1u, 2u, 3u, 17u, 1000u, 100'000u}) {
        std::vector<std::int64_t> input(n);
        std::iota(input.begin(), input.end(), std::int64_t{-5});
        const auto expected = plain.map(f, input);
        EXPECT_EQ(helped.map(f, input), expected) << n << " items";
        EXPECT_EQ(helped.map(f, input, 1), expected) << n << " items, chunksize 1";
        std::vector<std::int64_t> out(n);
        helped.map_into(f, input, out, 7);
        EXPECT_EQ(out, expected) << n << " items into storage";
    }
    std::vector<std::tuple<int, int>> pairs;
    for (int i = 0; i < 500; ++i) {
        pairs.emplace_back(i, -i);
    }
    auto g = [](int a, int b) { return a * 10 + b; };
    EXPECT_EQ(helped.starmap(g, pairs, 3), plain.starmap(g, pairs, 3));
    EXPECT_EQ(helped.apply(f, 12), f(12));
}

struct TaskFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

TEST(CallerRunsChunks, ATaskRunByTheCallerThrowsAsOnAWorker) {
    mproc::ThreadPool pool(helping(1));
    Gate gate(pool);
    // apply: the very object the task threw, as from a worker.
    const void* thrown = nullptr;
    std::thread::id thrown_on;
    try {
        pool.apply([&thrown, &thrown_on] {
            thrown_on = std::this_thread::get_id();
            try {
                throw TaskFailure("apply failed");
            } catch (const TaskFailure& failure) {
                thrown = &failure;
                throw;
            }
        });
        ADD_FAILURE() << "apply did not throw";
    } catch (const TaskFailure& caught) {
        EXPECT_EQ(static_cast<const void*>(&caught), thrown);
        EXPECT_STREQ(caught.what(), "apply failed");
    }
    EXPECT_EQ(thrown_on, std::this_thread::get_id());
    // map: every chunk still runs (no fail-fast), then the first failure is thrown; the failing
    // item stops the rest of its chunk, as on a worker.
    std::atomic<int> calls{0};
    auto fails_at_5 = [&calls](int x) {
        ++calls;
        if (x == 5) {
            throw std::out_of_range("item 5");
        }
        return x;
    };
    std::vector<int> input(20);
    std::iota(input.begin(), input.end(), 0);
    try {
        pool.map(fails_at_5, input, 4);
        ADD_FAILURE() << "map did not throw";
    } catch (const std::out_of_range& caught) {
        EXPECT_STREQ(caught.what(), "item 5");
    }
    EXPECT_EQ(calls.load(), 20 - 2) << "items 6 and 7 share item 5's chunk and must not run";
    gate.open();
}

TEST(CallerRunsChunks, CallbacksRunBeforeTheBlockingCallReturns) {
    mproc::ThreadPool pool(helping(1));
    Gate gate(pool);
    int success_value = 0;
    std::thread::id callback_thread;
    const int result = pool.apply(mproc::on_success([&](const int& value) {
                                      success_value = value;
                                      callback_thread = std::this_thread::get_id();
                                  }),
                                  [] { return 42; });
    EXPECT_EQ(result, 42);
    EXPECT_EQ(success_value, 42);
    EXPECT_EQ(callback_thread, std::this_thread::get_id());
    gate.open();
}

TEST(CallerRunsChunks, AWorkerWaitingForANestedMapOnItsOwnPoolRunsItsChunks) {
    // Without the option this deadlocks: the only worker would wait for chunks only it can run.
    mproc::ThreadPool pool(helping(1));
    // apply_async: the outer task runs on the worker (a blocking apply would run it here).
    const auto [outer_worker, inner_workers] =
        pool.apply_async([&pool] {
                auto inner =
                    pool.map([](int) { return mproc::this_worker::id(); }, std::vector<int>(6), 1);
                return std::pair(mproc::this_worker::id(), inner);
            })
            .get();
    EXPECT_NE(outer_worker, 0u);
    EXPECT_EQ(inner_workers, std::vector<std::uint64_t>(6, outer_worker));
}

TEST(CallerRunsChunks, TerminateWhileTheCallerHelpsEndsTheRestOfTheCall) {
    mproc::ThreadPool pool(helping(1));
    Gate gate(pool);
    auto terminate_at_3 = [&pool](int x) {
        if (x == 3) {
            pool.terminate(); // from the calling thread, inside its own call
        }
        return x;
    };
    EXPECT_THROW(pool.map(terminate_at_3, std::vector{0, 1, 2, 3, 4, 5, 6}, 1),
                 mproc::PoolTerminated);
    gate.open();
}

TEST(CallerRunsChunks, IsRefusedWhereATaskWouldLoseWhatAWorkerGivesIt) {
    EXPECT_THROW(
        mproc::ThreadPool({.workers = 2, .initializer = [] {}, .caller_runs_chunks = true}),
        std::invalid_argument);
    EXPECT_THROW(
        mproc::ThreadPool({.workers = 2, .max_tasks_per_child = 5, .caller_runs_chunks = true}),
        std::invalid_argument);
    // A process pool refuses it before it starts anything: the task would lose its isolation.
    try {
        mproc::Pool pool(helping(2));
        ADD_FAILURE() << "mproc::Pool accepted caller_runs_chunks";
    } catch (const std::invalid_argument& error) {
        EXPECT_NE(std::string(error.what()).find("caller_runs_chunks"), std::string::npos);
    }
}

} // namespace
