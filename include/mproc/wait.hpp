// SPDX-License-Identifier: MIT
#pragma once
/// @file wait.hpp
/// `mproc::wait` and `mproc::as_completed`: Python's `concurrent.futures.wait` and
/// `as_completed`, over the `AsyncResult`s of any pool class.
///
/// @code
///   std::vector<mproc::AsyncResult<int>> results;
///   for (int x : xs) results.push_back(pool.apply_async(f, x));
///   for (auto& r : mproc::as_completed(results))      // each as it finishes
///       use(r.get());
///   auto [done, not_done] = mproc::wait(results, mproc::FirstCompleted, 1s);
/// @endcode

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <type_traits>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/detail/completion.hpp"
#include "mproc/detail/deadline.hpp"

namespace mproc {

/// When `mproc::wait` returns (Python's `return_when`).
enum class ReturnWhen {
    first_completed, ///< as soon as any result is ready
    first_exception, ///< as soon as any result ends with an error, or when all are ready
    all_completed,   ///< when all results are ready
};
/// Python's names for the `ReturnWhen` values.
///@{
inline constexpr ReturnWhen FirstCompleted = ReturnWhen::first_completed;
inline constexpr ReturnWhen FirstException = ReturnWhen::first_exception;
inline constexpr ReturnWhen AllCompleted = ReturnWhen::all_completed;
///@}

/// What `mproc::wait` found: the positions, in its input, of the results that were ready when it
/// returned and of those that were not, each in input order.
struct WaitOutcome {
    std::vector<std::size_t> done;     ///< ready (with a value or an error)
    std::vector<std::size_t> not_done; ///< still running or queued
};

/// A reference to an `AsyncResult` of any value type, for waiting on results of different
/// types together: `std::vector<mproc::AnyResult> all{ints, strings};`. The result must outlive
/// it.
class AnyResult {
  public:
    /// Refers to `result`.
    template <class T>
    AnyResult(const AsyncResult<T>& result) noexcept : completion_(&result.completion()) {}
    /// A temporary result would be gone before the wait.
    template <class T>
    AnyResult(const AsyncResult<T>&& result) = delete;

    /// Whether the call has ended. Never blocks.
    bool ready() const { return completion_->ready(); }
    /// For `mproc::wait` and `mproc::as_completed`: the result's completion.
    detail::CompletionSource& completion() const noexcept { return *completion_; }

  private:
    detail::CompletionSource* completion_;
};

namespace detail {

/// A range of results `wait` and `as_completed` take: `AsyncResult`s of one type, or
/// `AnyResult`s.
template <class R>
concept ResultRange = std::ranges::input_range<R> && requires(std::ranges::range_reference_t<R> r) {
    { r.completion() } -> std::same_as<CompletionSource&>;
};

WaitOutcome wait_for(const std::vector<CompletionSource*>& results, ReturnWhen when,
                     Clock::time_point deadline);

template <class R>
std::vector<CompletionSource*> completions_of(R& results) {
    std::vector<CompletionSource*> completions;
    for (auto&& result : results) {
        completions.push_back(&result.completion());
    }
    return completions;
}

/// The positions of results in the order they became ready, for `as_completed`; shared with
/// the observers, which may run after the consumer is gone.
class Arrivals {
  public:
    void push(std::size_t position);
    /// The next position to arrive; throws `mproc::TimeoutError` at `deadline`.
    std::size_t pop(Clock::time_point deadline);

  private:
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::deque<std::size_t> positions_;
};

} // namespace detail

/// Waits until `results` (an lvalue range of `AsyncResult`s of one type, or of `AnyResult`s)
/// meet `when`, or `timeout` has passed, and says which are ready (Python's
/// `concurrent.futures.wait`). A timeout is not an error: the outcome then lists what was not
/// ready. No result is consumed: `get()` them afterwards.
template <class R>
requires detail::ResultRange<R&> WaitOutcome wait(R& results, ReturnWhen when = AllCompleted) {
    return detail::wait_for(detail::completions_of(results), when,
                            detail::Clock::time_point::max());
}

/// As the other `wait`, with a timeout.
template <class R, class Rep, class Period>
requires detail::ResultRange<R&> WaitOutcome wait(R& results, ReturnWhen when,
                                                  std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_for(detail::completions_of(results), when, detail::deadline_after(timeout));
}

/// The results of a range in the order they finish; made by `mproc::as_completed`. A single
/// pass; the results must outlive it. Leaving a loop over it early is fine.
template <class R>
class AsCompleted {
    using Element = std::remove_reference_t<std::ranges::range_reference_t<R>>;

  public:
    /// An input iterator over the results; `*it` is the result that finished.
    class iterator {
      public:
        /// What `std::input_iterator` asks of an iterator.
        ///@{
        using value_type = std::remove_cv_t<Element>;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;
        iterator() = default;
        Element& operator*() const noexcept { return *owner_->current_; }
        Element* operator->() const noexcept { return owner_->current_; }
        iterator& operator++() {
            owner_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return it.at_end();
        }
        ///@}

      private:
        // A member (with the view's access), where the operator above is not.
        bool at_end() const noexcept { return owner_->current_ == nullptr; }
        friend class AsCompleted;
        explicit iterator(AsCompleted* owner) noexcept : owner_(owner) {}
        AsCompleted* owner_ = nullptr;
    };

    /// Starts watching `results`; see `mproc::as_completed`.
    AsCompleted(R& results, detail::Clock::time_point deadline) : deadline_(deadline) {
        for (auto&& result : results) {
            elements_.push_back(&result);
        }
        observers_.reserve(elements_.size());
        for (std::size_t i = 0; i < elements_.size(); ++i) {
            observers_.push_back(elements_[i]->completion().when_ready(
                [arrivals = arrivals_, i] { arrivals->push(i); }));
        }
    }
    ~AsCompleted() {
        for (std::size_t i = 0; i < observers_.size(); ++i) {
            if (observers_[i] != 0) {
                elements_[i]->completion().forget(observers_[i]);
            }
        }
    }
    AsCompleted(const AsCompleted&) = delete;
    AsCompleted& operator=(const AsCompleted&) = delete;

    /// Waits for the first result to finish (once: a single pass); throws
    /// `mproc::TimeoutError` when none finishes before the deadline.
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    /// The end: every result has been given.
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    void advance() {
        if (given_ == elements_.size()) {
            current_ = nullptr;
            return;
        }
        current_ = elements_[arrivals_->pop(deadline_)];
        ++given_;
    }

    std::shared_ptr<detail::Arrivals> arrivals_ = std::make_shared<detail::Arrivals>();
    std::vector<Element*> elements_;
    std::vector<detail::CompletionSource::ObserverId> observers_;
    detail::Clock::time_point deadline_;
    Element* current_ = nullptr;
    std::size_t given_ = 0;
    bool started_ = false;
};

/// The results of `results` (an lvalue range of `AsyncResult`s of one type, or of
/// `AnyResult`s), each as it finishes, those finished already first (Python's
/// `concurrent.futures.as_completed`). Waiting for the next one throws `mproc::TimeoutError`
/// once `timeout`, counted from this call, has passed.
template <class R>
requires detail::ResultRange<R&> AsCompleted<R> as_completed(R& results) {
    return AsCompleted<R>(results, detail::Clock::time_point::max());
}

/// As the other `as_completed`, with a timeout.
template <class R, class Rep, class Period>
requires detail::ResultRange<R&> AsCompleted<R>
as_completed(R& results, std::chrono::duration<Rep, Period> timeout) {
    return AsCompleted<R>(results, detail::deadline_after(timeout));
}

} // namespace mproc
