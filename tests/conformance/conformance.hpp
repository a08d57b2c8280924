// SPDX-License-Identifier: MIT
#pragma once
// What every conformance test shares: the fixture (with a watchdog), the task functions, and a
// few assertion helpers.
//
// The same tests run against every pool class, including pools whose workers are other
// processes. So tasks are plain functions or stateless lambdas; state goes in as arguments and
// comes back as results; a task never writes to a variable of the test. Callbacks run in the
// caller's process and may capture by reference.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "pool_types.hpp"

namespace cereal {
class access; // lets a serialiser reach a private default constructor; no cereal include needed
}

namespace conformance {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// The bound for every wait that should succeed: generous, so that a slow machine (or a
/// sanitizer) never fails a test, but finite, so that a bug fails instead of hanging.
inline constexpr auto long_wait = std::chrono::seconds(10);

/// The most chunks a stream with the default buffersize may hold, for `workers` workers and
/// the given chunksize: what its window grows to at most (the documented public limits).
inline std::size_t grown_window_limit(std::size_t workers, std::size_t chunksize) {
    return std::max(mproc::stream_chunks_per_worker * workers,
                    std::min(mproc::stream_max_chunks_per_worker * workers,
                             mproc::stream_max_grown_items / chunksize));
}

/// Ends the test program with a message if a test is still running after `limit`: pools fail by
/// hanging, and some calls (join, destructors, blocking map) take no timeout. A SIGALRM timer,
/// not a thread: a suite that counts threads, or a pool that forks, sees none of it (and a
/// forked child does not inherit the pending alarm).
class Watchdog {
  public:
    explicit Watchdog(std::chrono::seconds limit) {
        const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
        const int n = std::snprintf(
            message(), message_capacity,
            "\nconformance watchdog: %s.%s still running after %lld s: hung\n",
            test != nullptr ? test->test_suite_name() : "?", test != nullptr ? test->name() : "?",
            static_cast<long long>(limit.count()));
        message_size() = n < 0 ? 0 : std::min(static_cast<std::size_t>(n), message_capacity - 1);
        struct sigaction action {};
        action.sa_handler = &Watchdog::on_alarm;
        sigemptyset(&action.sa_mask);
        sigaction(SIGALRM, &action, nullptr);
        alarm(static_cast<unsigned>(limit.count()));
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog() { alarm(0); }

  private:
    static constexpr std::size_t message_capacity = 512;
    static char* message() {
        static char text[message_capacity];
        return text;
    }
    static std::size_t& message_size() {
        static std::size_t size = 0;
        return size;
    }
    // Async-signal-safe: write(2) and _exit(2) only.
    static void on_alarm(int) {
        [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, message(), message_size());
        _exit(3);
    }
};

/// Base of every typed fixture: a test that hangs fails after 30 s with its name.
class PoolTest : public ::testing::Test {
  private:
    Watchdog watchdog_{std::chrono::seconds(30)};
};

// ---- task functions (plain functions: they can cross a process boundary) ----------------------

inline int square(int x) { return x * x; }
inline int add(int a, int b) { return a + b; }
inline int negate(int x) { return -x; }

/// Sleeps `ms` milliseconds and returns `ms`: "a slow task".
inline int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

/// The worker that ran the task.
inline std::uint64_t worker_id(int) { return mproc::this_worker::id(); }

/// Sleeps `ms` milliseconds, then returns the worker that ran the task.
inline std::uint64_t worker_id_after(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return mproc::this_worker::id();
}

/// Returns x, but throws std::runtime_error("bad item <x>") for a negative x.
inline int fail_if_negative(int x) {
    if (x < 0) {
        throw std::runtime_error("bad item " + std::to_string(x));
    }
    return x;
}

/// Sleeps |x| ms; then throws std::runtime_error("bad item <x>") for a negative x, else returns x.
inline int sleep_then_fail_if_negative(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x < 0 ? -x : x));
    return fail_if_negative(x);
}

/// A task that must never run (for "f is not called" checks).
inline int never_called(int) { throw std::logic_error("mproc called f, which it must not"); }

/// An exception type of the test's own, derived from std::exception.
class CustomError : public std::exception {
  public:
    explicit CustomError(std::string message) : message_(std::move(message)) {}
    const char* what() const noexcept override { return message_.c_str(); }

  private:
    std::string message_;
};

/// A single-pass input range of unknown length, like a Python generator: yields `first`,
/// `first + 1`, ... up to `last` (exclusive), and throws std::out_of_range("input failed at <k>")
/// when item `k == throw_at` is read. Not sized, not a forward range.
class Generator {
  public:
    explicit Generator(int first, int last, int throw_at = -1)
        : next_(first), last_(last), throw_at_(throw_at) {}

    class iterator {
      public:
        using value_type = int;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        int operator*() const {
            ++source_->items_read_;
            if (source_->next_ == source_->throw_at_) {
                throw std::out_of_range("input failed at " + std::to_string(source_->next_));
            }
            return source_->next_;
        }
        iterator& operator++() {
            ++source_->next_;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

      private:
        friend class Generator;
        explicit iterator(Generator* source) : source_(source) {}
        bool at_end() const { return source_->next_ >= source_->last_; }
        Generator* source_ = nullptr;
    };

    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() { return {}; }

    /// The item the next read would yield: how far the input has been read.
    int position() const { return next_; }
    /// How many items have been read (dereferenced) so far.
    int items_read() const { return items_read_; }

  private:
    int next_;
    int items_read_ = 0;
    int last_;
    int throw_at_;
};

/// `first`, `first + 1`, ..., `last - 1`.
inline std::vector<int> range_vector(int first, int last) {
    std::vector<int> v;
    for (int i = first; i < last; ++i)
        v.push_back(i);
    return v;
}

/// `f(x)` for each x of `input`, computed here (the expected result of a map).
template <class F>
auto expected_map(F f, const std::vector<int>& input) {
    std::vector<decltype(f(0))> out;
    for (int x : input)
        out.push_back(f(x));
    return out;
}

/// The lengths of the runs of equal consecutive values. With `max_tasks_per_child = 1` every
/// chunk runs on a fresh worker, so the runs of `this_worker::id()` results are the chunks.
inline std::vector<std::size_t> run_lengths(const std::vector<std::uint64_t>& ids) {
    std::vector<std::size_t> runs;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i == 0 || ids[i] != ids[i - 1]) {
            runs.push_back(0);
        }
        ++runs.back();
    }
    return runs;
}

/// Every remaining result of an imap stream, each fetched with a bounded wait (a result that
/// does not come throws mproc::TimeoutError, which fails the test instead of hanging it).
template <class T>
std::vector<T> drain(mproc::ResultStream<T>& stream) {
    std::vector<T> out;
    while (std::optional<T> value = stream.next(long_wait)) {
        out.push_back(std::move(*value));
    }
    return out;
}

// ---- assertion helpers
// ---------------------------------------------------------------------------

/// Whether `f()` throws an `E` whose what() contains `text`.
template <class E, class F>
::testing::AssertionResult throws_with(F&& f, std::string_view text) {
    try {
        std::forward<F>(f)();
    } catch (const E& e) {
        if (std::string_view(e.what()).find(text) == std::string_view::npos) {
            return ::testing::AssertionFailure()
                   << "threw " << typeid(E).name() << " with what() \"" << e.what()
                   << "\", which lacks \"" << text << "\"";
        }
        return ::testing::AssertionSuccess();
    } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "threw " << typeid(e).name() << " (\"" << e.what()
                                             << "\") instead of " << typeid(E).name();
    } catch (...) {
        return ::testing::AssertionFailure()
               << "threw a non-std exception instead of " << typeid(E).name();
    }
    return ::testing::AssertionFailure() << "threw nothing; expected " << typeid(E).name();
}

/// Whether `error` holds an `E`.
template <class E>
bool holds(std::exception_ptr error) {
    try {
        std::rethrow_exception(std::move(error));
    } catch (const E&) {
        return true;
    } catch (...) {
        return false; // some other type: the answer, not an error to report
    }
}

/// The what() of the std::exception in `error` ("(not a std::exception)" otherwise).
inline std::string message_of(std::exception_ptr error) {
    try {
        std::rethrow_exception(std::move(error));
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "(not a std::exception)";
    }
}

/// Whether `f()` throws an `E` (any message).
template <class E, class F>
::testing::AssertionResult throws(F&& f) {
    return throws_with<E>(std::forward<F>(f), "");
}

} // namespace conformance
