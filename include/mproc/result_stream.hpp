// SPDX-License-Identifier: MIT
#pragma once
/// @file result_stream.hpp
/// `mproc::ResultStream<T>`: what `imap` and `imap_unordered` return (Python's IMapIterator).

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/resumer.hpp"
#include "mproc/detail/stream_job.hpp"
#include "mproc/errors.hpp"

namespace mproc {

/// The results of an `imap` (input order) or `imap_unordered` (completion order) call, as a
/// single-pass input range: each result is available as soon as it (and, for `imap`, every one
/// before it) is ready.
///
/// The input is read lazily, only as workers need it: at most a bounded number of chunks are
/// in flight or waiting to be consumed, so an endless input works and memory stays flat.
///
/// Errors are per item: when the task for item k threw, dereferencing the iterator at k (or
/// `next()`) throws that exception, and iteration can go on to item k+1. When reading the input
/// throws at item k, the results before k come first, then that exception, then the end.
///
/// Destroying the stream early (leaving a range-for with `break`) cancels the chunks not yet
/// started and drops their results; the pool is free for the next call at once.
///
/// Example:
/// @code
///   for (int r : pool.imap_unordered([](int x) { return x * x; }, std::views::iota(0, 100)))
///       std::cout << r << '\n';
/// @endcode
template <class T>
class ResultStream {
    using Job = detail::StreamJob<T>;

  public:
    /// Input iterator over the stream; `*it` returns the current result or throws its error.
    class iterator {
      public:
        /// What `std::input_iterator` asks of an iterator.
        ///@{
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;

        T& operator*() const {
            if (stream_->current_error_) {
                std::rethrow_exception(stream_->current_error_);
            }
            return *stream_->current_;
        }
        T* operator->() const { return &**this; }
        iterator& operator++() {
            stream_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return it.finished();
        }
        ///@}

      private:
        friend class ResultStream;
        explicit iterator(ResultStream* stream) noexcept : stream_(stream) {}
        bool finished() const noexcept { return stream_ == nullptr || stream_->at_end_; }
        ResultStream* stream_ = nullptr;
    };

    /// Fetches the first result (blocking) and returns an iterator to it. Call once: the stream
    /// is single-pass.
    iterator begin() {
        advance();
        return iterator(this);
    }
    /// The end of the stream.
    std::default_sentinel_t end() const noexcept { return {}; }

    /// The next result, or an empty optional at the end. Throws the item's exception when its
    /// task failed (iteration may go on after that). Python's `next(it)`.
    std::optional<T> next() { return next_until(detail::Clock::time_point::max()); }

    /// As `next()`, but throws `mproc::TimeoutError` if no result arrives within `timeout`; the
    /// stream stays usable. Python's `it.next(timeout)`.
    template <class Rep, class Period>
    std::optional<T> next(std::chrono::duration<Rep, Period> timeout) {
        return next_until(detail::deadline_after(timeout));
    }

    /// `co_await stream.next_async()` in a C++20 coroutine: `next()` with no thread waiting.
    /// Gives the next result, or an empty optional at the end, or throws the item's exception;
    /// goes on at once when a result is there already, else suspends the coroutine until one
    /// is. It resumes where a `co_await` on an `AsyncResult` of the same pool would. The stream
    /// must outlive the suspension, and one `next_async` at a time may be pending.
    ///
    /// Example:
    /// @code
    ///   auto stream = pool.imap_unordered(f, xs);
    ///   while (std::optional<int> r = co_await stream.next_async()) { ... }
    /// @endcode
    auto next_async() noexcept { return NextAwaiter{this}; }

    /// For the pool front end, which creates streams.
    explicit ResultStream(detail::JobRef<Job> job) noexcept : job_(std::move(job)) {}

    /// Moves the stream; assigning over a stream abandons its call first (as destroying it
    /// does).
    ///@{
    ResultStream(ResultStream&& other) noexcept = default;
    ResultStream& operator=(ResultStream&& other) noexcept {
        if (this != &other) {
            abandon();
            job_ = std::move(other.job_);
            current_ = std::move(other.current_);
            current_error_ = std::move(other.current_error_);
            at_end_ = other.at_end_;
        }
        return *this;
    }
    ///@}
    ResultStream(const ResultStream&) = delete;
    ResultStream& operator=(const ResultStream&) = delete;
    ~ResultStream() { abandon(); }

  private:
    struct NextAwaiter {
        ResultStream* stream;
        std::optional<T> value{};
        std::exception_ptr error{};
        bool taken = false;

        bool await_ready() {
            take_if_there();
            return taken;
        }
        bool await_suspend(std::coroutine_handle<> coroutine) {
            return stream->job_->observe_next([coroutine] { detail::resume_coroutine(coroutine); });
        }
        std::optional<T> await_resume() {
            if (!taken) {
                return stream->next(); // does not wait: a result is there, or the end
            }
            if (error) {
                std::rethrow_exception(error);
            }
            return std::move(value);
        }

        // As next(), without waiting: `taken` unless no result is there yet.
        void take_if_there() {
            if (stream->at_end_) {
                taken = true;
                return;
            }
            try {
                switch (stream->job_->fetch(detail::Clock::now(), &value)) {
                case Job::Fetched::item:
                    taken = true;
                    break;
                case Job::Fetched::end:
                    stream->at_end_ = true;
                    taken = true;
                    break;
                case Job::Fetched::timeout:
                    break;
                }
            } catch (...) {
                error = std::current_exception();
                taken = true;
            }
        }
    };

    std::optional<T> next_until(detail::Clock::time_point deadline) {
        std::optional<T> value;
        if (at_end_) {
            return value;
        }
        switch (job_->fetch(deadline, &value)) {
        case Job::Fetched::item:
            return value;
        case Job::Fetched::end:
            at_end_ = true;
            return value;
        case Job::Fetched::timeout:
            break;
        }
        throw TimeoutError("mproc: no imap result within the timeout");
    }

    // Iterator protocol: fetch the next outcome and keep it (value or error) for operator*.
    void advance() {
        current_.reset();
        current_error_ = nullptr;
        try {
            current_ = next();
            at_end_ = !current_.has_value();
        } catch (...) {
            current_error_ = std::current_exception();
        }
    }

    void abandon() noexcept {
        if (job_) {
            job_->abandon();
            job_ = {};
        }
    }

    detail::JobRef<Job> job_;
    std::optional<T> current_;
    std::exception_ptr current_error_;
    bool at_end_ = false;
};

} // namespace mproc
