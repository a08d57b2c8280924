// SPDX-License-Identifier: MIT
// mproc::wait and mproc::as_completed: one observer on each result, counting or queueing them
// as they become ready.

#include "mproc/wait.hpp"

#include "mproc/detail/wait_helper.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

namespace {

/// What the observers of one wait count; shared, since an observer may run after the wait
/// returned.
struct Tally {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t ready = 0;
    bool failed = false;
};

} // namespace

WaitOutcome wait_for(const std::vector<CompletionSource*>& results, ReturnWhen when,
                     Clock::time_point deadline) {
    const auto tally = std::make_shared<Tally>();
    std::vector<CompletionSource::ObserverId> observers;
    observers.reserve(results.size());
    for (CompletionSource* result : results) {
        observers.push_back(result->when_ready([tally, result] {
            const bool failed = !result->successful();
            std::lock_guard lock(tally->mutex);
            ++tally->ready;
            tally->failed = tally->failed || failed;
            tally->changed.notify_all();
        }));
    }
    const auto met = [&] {
        switch (when) {
        case ReturnWhen::first_completed:
            return tally->ready > 0 || results.empty();
        case ReturnWhen::first_exception:
            return tally->failed || tally->ready == results.size();
        case ReturnWhen::all_completed:
            break;
        }
        return tally->ready == results.size();
    };
    if (WaitHelper* helper = current_wait_helper()) {
        help_until(
            *helper, deadline,
            [&] {
                std::lock_guard lock(tally->mutex);
                return met();
            },
            [&](Clock::time_point until) {
                std::unique_lock lock(tally->mutex);
                tally->changed.wait_until(lock, until, met);
            });
    } else {
        std::unique_lock lock(tally->mutex);
        if (deadline == Clock::time_point::max()) {
            tally->changed.wait(lock, met);
        } else {
            tally->changed.wait_until(lock, deadline, met);
        }
    }
    WaitOutcome outcome;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (observers[i] != 0) {
            results[i]->forget(observers[i]);
        }
        (results[i]->ready() ? outcome.done : outcome.not_done).push_back(i);
    }
    return outcome;
}

void Arrivals::push(std::size_t position) {
    std::lock_guard lock(mutex_);
    positions_.push_back(position);
    arrived_.notify_one();
}

std::size_t Arrivals::pop(Clock::time_point deadline) {
    const auto arrived = [&] { return !positions_.empty(); };
    if (WaitHelper* helper = current_wait_helper()) {
        help_until(
            *helper, deadline,
            [&] {
                std::lock_guard lock(mutex_);
                return arrived();
            },
            [&](Clock::time_point until) {
                std::unique_lock lock(mutex_);
                arrived_.wait_until(lock, until, arrived);
            });
    }
    std::unique_lock lock(mutex_);
    if (deadline == Clock::time_point::max()) {
        arrived_.wait(lock, arrived);
    } else if (!arrived_.wait_until(lock, deadline, arrived)) {
        throw TimeoutError("mproc: as_completed: no result finished within the timeout");
    }
    const std::size_t position = positions_.front();
    positions_.pop_front();
    return position;
}

} // namespace mproc::detail
