// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <system_error>

#include <mproc/mproc.hpp>

// Clang's AddressSanitizer gives each thread a second stack (its "fake stack", which finds uses
// of a returned function's locals) and aborts the process when it cannot map one: under the
// address-space cap of AFailedThreadStartThrowsAndLeavesNoThreadBehind, that abort and not
// pthread_create's failure would end the test. Off in this program, as GCC's runtime has it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }
#endif
#endif

namespace {

using namespace std::chrono_literals;

std::size_t thread_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/task")) {
        ++n;
    }
    return n;
}

TEST(ThreadBackend, NoThreadOutlivesItsPool) {
    {
        // Sanitizer runtimes start a helper thread of their own at the first thread creation:
        // take the baseline after that.
        mproc::ThreadPool warm_up(1);
    }
    const std::size_t before = thread_count();
    for (int cycle = 0; cycle < 200; ++cycle) {
        mproc::ThreadPool pool({.workers = 3, .max_tasks_per_child = 2});
        const auto results = pool.map([](int x) { return x + 1; }, std::vector<int>(20, 1), 1);
        ASSERT_EQ(results.size(), 20u);
        if (cycle % 2 == 0) {
            pool.close();
            pool.join();
        } // else: the destructor terminates and joins
    }
    EXPECT_EQ(thread_count(), before);
}

TEST(ThreadBackend, WorkersRunConcurrently) {
    // Two tasks that each wait for the other can only both finish if two workers run at once.
    static std::atomic<int> arrived{0};
    arrived = 0;
    mproc::ThreadPool pool(2);
    auto rendezvous = [] {
        arrived.fetch_add(1);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        return arrived.load();
    };
    auto a = pool.apply_async(rendezvous);
    auto b = pool.apply_async(rendezvous);
    ASSERT_TRUE(a.wait(20s));
    ASSERT_TRUE(b.wait(20s));
    EXPECT_EQ(a.get(), 2);
    EXPECT_EQ(b.get(), 2);
}

struct Tagged : std::runtime_error {
    Tagged() : std::runtime_error("tagged") {}
};
std::atomic<const void*> thrown_address{nullptr};

TEST(ThreadBackend, TheCallerGetsTheVeryExceptionObjectTheTaskThrew) {
    mproc::ThreadPool pool(2);
    auto result = pool.apply_async([] {
        try {
            throw Tagged();
        } catch (const Tagged& e) {
            thrown_address = &e;
            throw;
        }
    });
    ASSERT_TRUE(result.wait(10s));
    try {
        result.get();
        FAIL() << "get() should have thrown";
    } catch (const Tagged& e) {
        EXPECT_EQ(static_cast<const void*>(&e), thrown_address.load());
    }
}

TEST(ThreadBackend, TerminateLetsARunningTaskFinishAndDropsQueuedOnes) {
    mproc::ThreadPool pool(1);
    auto running = pool.apply_async([] {
        std::this_thread::sleep_for(200ms);
        return 1;
    });
    std::this_thread::sleep_for(50ms); // let the only worker take it
    auto queued = pool.apply_async([] { return 2; });
    pool.terminate();
    ASSERT_TRUE(queued.wait(10s));
    EXPECT_THROW(queued.get(), mproc::PoolTerminated);
    ASSERT_TRUE(running.wait(10s));
    EXPECT_EQ(running.get(), 1); // a thread cannot be interrupted: the task ran to its end
    pool.join();
}

std::size_t virtual_memory_bytes() {
    std::ifstream status("/proc/self/status");
    std::string key;
    while (status >> key) {
        if (key == "VmSize:") {
            std::size_t kib = 0;
            status >> kib;
            return kib * 1024;
        }
    }
    return 0;
}

TEST(ThreadBackend, AFailedThreadStartThrowsAndLeavesNoThreadBehind) {
    // In a child process (the limit must not hurt the rest of the suite), cap the address space
    // so that thread stacks run out part way through starting 2000 workers.
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        { mproc::ThreadPool warm_up(1); } // sanitizer helper threads start now, not below
        const std::size_t baseline = thread_count();
        const rlim_t cap = virtual_memory_bytes() + (64u << 20);
        const rlimit limit{cap, cap};
        if (setrlimit(RLIMIT_AS, &limit) != 0) {
            _exit(10);
        }
        try {
            mproc::ThreadPool pool(2000);
            _exit(11); // every thread started: the cap did not bite
        } catch (const std::system_error&) {
            _exit(thread_count() == baseline ? 0 : 12);
        } catch (...) {
            _exit(13);
        }
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "child died of signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setrlimit failed, 11: no failure provoked, "
                                         "12: threads left behind, 13: wrong exception";
}

struct Point {
    int x;
    int y;
    int sum() const { return x + y; }
    int scaled(int factor) const { return x * factor; }
};

// A pool calls what it is given as std::invoke would: a member function or a data member,
// on an object or through a pointer to one.
TEST(ThreadPoolCalls, MemberPointersWorkAsWithStdInvoke) {
    mproc::ThreadPool pool(2);
    const std::vector<Point> points{{1, 2}, {3, 4}};
    EXPECT_EQ(pool.map(&Point::sum, points), (std::vector<int>{3, 7}));
    EXPECT_EQ(pool.map(&Point::y, points), (std::vector<int>{2, 4}));
    std::vector<const Point*> pointers{&points[0], &points[1]};
    EXPECT_EQ(pool.map(&Point::sum, pointers), (std::vector<int>{3, 7}));
    EXPECT_EQ(pool.apply(&Point::scaled, points[1], 10), 30);
    EXPECT_EQ(pool.apply(&Point::scaled, &points[0], 5), 5);
}

// A null function pointer as initializer is no initializer, as a null std::function would be;
// an initializer that was called would crash the worker.
TEST(ThreadPoolCalls, ANullFunctionPointerInitializerIsNone) {
    void (*none)() = nullptr;
    const mproc::Initializer initializer(none);
    EXPECT_FALSE(initializer);
    EXPECT_TRUE(initializer.portable().empty());
    mproc::ThreadPool pool({.workers = 1, .initializer = none});
    EXPECT_EQ(pool.apply([](int x) { return x + 1; }, 1), 2);
    mproc::Pool processes({.workers = 1, .initializer = none});
    EXPECT_EQ(processes.apply([](int x) { return x + 1; }, 2), 3);
}

} // namespace
