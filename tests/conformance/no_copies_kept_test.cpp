// SPDX-License-Identifier: MIT
// The pool keeps no copy of arguments or results once a call has returned them.
//
// `Counted` counts, in this process, the instances that hold a value: a copy adds one, a move
// hands the value (and the count) over, so a moved-from shell does not count. On a thread pool
// that covers the workers' copies too; on a process pool it covers the caller's side. Either
// way, once a call has returned and its result object is gone, only the objects the test itself
// holds may be counted.

#include <atomic>
#include <list>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace {

using namespace conformance;

class Counted {
  public:
    Counted() : Counted(0) {}
    explicit Counted(int value) : value_(value), holds_(true) { ++live; }
    Counted(const Counted& other) : value_(other.value_), holds_(other.holds_) {
        if (holds_) ++live;
        ++copies;
    }
    Counted(Counted&& other) noexcept
        : value_(other.value_), holds_(std::exchange(other.holds_, false)) {}
    Counted& operator=(const Counted& other) {
        if (holds_) --live;
        holds_ = other.holds_;
        if (holds_) ++live;
        value_ = other.value_;
        return *this;
    }
    Counted& operator=(Counted&& other) noexcept {
        if (this != &other) {
            if (holds_) --live;
            holds_ = std::exchange(other.holds_, false);
            value_ = other.value_;
        }
        return *this;
    }
    ~Counted() {
        if (holds_) --live;
    }

    int value() const { return value_; }

    template <class Archive>
    void serialize(Archive& archive) {
        archive(value_);
    }

    static inline std::atomic<int> live{0};
    static inline std::atomic<int> copies{0}; // copy constructions, ever

  private:
    int value_;
    bool holds_;
};

Counted doubled(const Counted& c) { return Counted(c.value() * 2); }
Counted pass_through(Counted c) { return c; }
int value_of(const Counted& c) { return c.value(); }
Counted fail_with(const Counted& c) {
    throw std::runtime_error("failed on " + std::to_string(c.value()));
}
Counted fail_on_five(const Counted& c) { return c.value() == 5 ? fail_with(c) : doubled(c); }
Counted add_counted(const Counted& c, int n) { return Counted(c.value() + n); }
Counted slow_doubled(const Counted& c) {
    sleep_ms(20);
    return doubled(c);
}

std::vector<Counted> counted_range(int n) {
    std::vector<Counted> v;
    v.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        v.emplace_back(i);
    return v;
}

template <class Pool>
class NoCopiesKeptTest : public PoolTest {
  protected:
    const int base_ = Counted::live; // whatever an earlier failed test left behind
    int live() const { return Counted::live - base_; }
};
TYPED_TEST_SUITE(NoCopiesKeptTest, PoolTypes);

TYPED_TEST(NoCopiesKeptTest, Apply) {
    TypeParam pool(2);
    {
        const Counted arg(3);
        Counted out = pool.apply(doubled, arg);
        EXPECT_EQ(out.value(), 6);
        EXPECT_EQ(this->live(), 2); // arg and out
        EXPECT_EQ(pool.apply(value_of, arg), 3);
        EXPECT_EQ(this->live(), 2);
        Counted moved = pool.apply(pass_through, Counted(5));
        EXPECT_EQ(this->live(), 3);
        EXPECT_TRUE(throws<std::runtime_error>([&] { pool.apply(fail_with, arg); }));
        EXPECT_EQ(this->live(), 3);
    }
    EXPECT_EQ(this->live(), 0);
}

// A blocking apply waits for its result, so a pool that sends the arguments to a worker encodes
// them from the caller's own objects: a large argument is not copied before it is sent. The
// thread pool moves them into the call (one copy of an lvalue), as apply_async does everywhere:
// its arguments may end before the call.
TYPED_TEST(NoCopiesKeptTest, BlockingApplyCopiesNoArgumentItSends) {
    constexpr bool copies_arguments = std::is_base_of_v<mproc::ThreadPool, TypeParam>;
    TypeParam pool(2);
    const Counted arg(3);
    const Counted other(4);
    const int before = Counted::copies;
    EXPECT_EQ(pool.apply(value_of, arg), 3);
    EXPECT_EQ(Counted::copies - before, copies_arguments ? 1 : 0);
    EXPECT_EQ(pool.apply(add_counted, other, 1).value(), 5);
    EXPECT_EQ(Counted::copies - before, copies_arguments ? 2 : 0);

    const int before_async = Counted::copies;
    auto result = pool.apply_async(value_of, arg);
    EXPECT_EQ(Counted::copies - before_async, 1) << "apply_async must keep its own copy";
    ASSERT_TRUE(result.wait(long_wait));
    EXPECT_EQ(result.get(), 3);
}

TYPED_TEST(NoCopiesKeptTest, ApplyAsync) {
    TypeParam pool(2);
    {
        const Counted arg(4);
        auto result = pool.apply_async(doubled, arg);
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_EQ(this->live(), 2) << "the argument is kept after the call ended";
        {
            Counted out = std::move(result).get();
            EXPECT_EQ(out.value(), 8);
            EXPECT_EQ(this->live(), 2); // arg and out; the handle gave its value away
        }
        auto failed = pool.apply_async(fail_with, arg);
        ASSERT_TRUE(failed.wait(long_wait));
        EXPECT_EQ(this->live(), 1) << "a failed call keeps its argument";
    }
    EXPECT_EQ(this->live(), 0);
}

TYPED_TEST(NoCopiesKeptTest, Map) {
    TypeParam pool(3);
    {
        const std::vector<Counted> input = counted_range(20);
        {
            const std::vector<Counted> out = pool.map(doubled, input, 3);
            ASSERT_EQ(out.size(), 20u);
            EXPECT_EQ(out[7].value(), 14);
            EXPECT_EQ(this->live(), 40);
        }
        EXPECT_EQ(this->live(), 20);
        // A list is copied into the call first: the copy must be gone when map returns.
        const std::list<Counted> list(input.begin(), input.end());
        {
            const std::vector<Counted> out = pool.map(doubled, list);
            EXPECT_EQ(this->live(), 60);
        }
        EXPECT_TRUE(throws<std::runtime_error>([&] { pool.map(fail_on_five, input, 2); }));
        EXPECT_EQ(this->live(), 40) << "a failed map keeps partial results or arguments";
        const std::vector<std::pair<Counted, int>> pairs{{Counted(1), 1}, {Counted(2), 2}};
        {
            const std::vector<Counted> out = pool.starmap(add_counted, pairs);
            EXPECT_EQ(out[1].value(), 4);
            EXPECT_EQ(this->live(), 44);
        }
    }
    EXPECT_EQ(this->live(), 0);
}

TYPED_TEST(NoCopiesKeptTest, MapAsync) {
    TypeParam pool(3);
    {
        const std::vector<Counted> input = counted_range(10);
        auto result = pool.map_async(doubled, input, 2);
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_EQ(this->live(), 20) << "map_async kept its copy of the input after it ended";
        {
            std::vector<Counted> out = std::move(result).get();
            EXPECT_EQ(out.size(), 10u);
            EXPECT_EQ(this->live(), 20);
        }
        EXPECT_EQ(this->live(), 10);

        auto failed = pool.map_async(fail_on_five, input, 1);
        ASSERT_TRUE(failed.wait(long_wait));
        EXPECT_EQ(this->live(), 10) << "a failed map_async keeps partial results or arguments";

        auto moved_in = pool.map_async(doubled, counted_range(10));
        ASSERT_TRUE(moved_in.wait(long_wait));
        EXPECT_EQ(this->live(), 20); // input, and the result in its handle
    }
    EXPECT_EQ(this->live(), 0);
}

TYPED_TEST(NoCopiesKeptTest, CallbacksDropWhatTheyCapturedOnceTheyRan) {
    TypeParam pool(2);
    {
        int seen = 0;
        Counted captured(7);
        auto result = pool.apply_async(
            mproc::on_success([&seen, captured](int v) { seen = v + captured.value(); }), square,
            2);
        ASSERT_TRUE(result.wait(long_wait));
        EXPECT_EQ(seen, 11);
        EXPECT_EQ(this->live(), 1) << "the pool keeps the callback's captures";
    }
    EXPECT_EQ(this->live(), 0);
}

TYPED_TEST(NoCopiesKeptTest, Imap) {
    TypeParam pool(2);
    {
        const std::vector<Counted> input = counted_range(30);
        for (std::ptrdiff_t chunksize : {1, 4}) {
            auto stream = pool.imap(doubled, input, chunksize);
            for (int i = 0; i < 30; ++i) {
                std::optional<Counted> out = stream.next(long_wait);
                ASSERT_TRUE(out.has_value());
                EXPECT_EQ(out->value(), 2 * i);
            }
            EXPECT_EQ(stream.next(long_wait), std::nullopt);
            EXPECT_EQ(this->live(), 30) << "the stream keeps results or arguments it handed over";
        }
        {
            auto unordered = pool.imap_unordered(fail_on_five, input, 3);
            int errors = 0;
            for (int i = 0; i < 30; ++i) {
                try {
                    ASSERT_TRUE(unordered.next(long_wait).has_value());
                } catch (const std::runtime_error&) {
                    ++errors;
                }
            }
            EXPECT_EQ(errors, 1);
            EXPECT_EQ(unordered.next(long_wait), std::nullopt);
            EXPECT_EQ(this->live(), 30);
        }
        {
            auto moved_in = pool.imap(doubled, counted_range(5));
            EXPECT_EQ(drain(moved_in).size(), 5u);
        }
        EXPECT_EQ(this->live(), 30);
    }
    EXPECT_EQ(this->live(), 0);
}

TYPED_TEST(NoCopiesKeptTest, ImapLeftEarly) {
    TypeParam pool(2);
    {
        const std::vector<Counted> input = counted_range(100);
        {
            auto stream = pool.imap(slow_doubled, input);
            EXPECT_TRUE(stream.next(long_wait).has_value());
        } // left with chunks in flight
        pool.close();
        pool.join(); // every chunk has settled
        EXPECT_EQ(this->live(), 100);
    }
    EXPECT_EQ(this->live(), 0);
}

} // namespace
