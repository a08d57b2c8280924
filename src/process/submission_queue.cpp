// SPDX-License-Identifier: MIT
#include "submission_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "take_job_chunks.hpp"

namespace mproc::detail {

SubmissionQueue::SubmissionQueue() : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "eventfd");
    }
}

SubmissionQueue::~SubmissionQueue() { ::close(wake_fd_); }

std::optional<std::size_t> SubmissionQueue::submit(ChunkBatch chunks) {
    bool asleep;
    std::size_t depth;
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return std::nullopt;
        }
        chunks.append_to(queue_);
        depth = queue_.size();
        asleep = tell_io_thread_locked();
    }
    if (asleep) {
        wake();
    }
    return depth;
}

std::size_t SubmissionQueue::size() {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void SubmissionQueue::close() {
    bool asleep;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        asleep = tell_io_thread_locked();
    }
    if (asleep) {
        wake();
    }
}

std::optional<std::deque<Chunk*>> SubmissionQueue::terminate() {
    std::deque<Chunk*> dropped;
    {
        std::lock_guard lock(mutex_);
        if (terminating_) {
            return std::nullopt;
        }
        closed_ = terminating_ = true;
        news_ = true;
        dropped.swap(queue_);
    }
    return dropped;
}

void SubmissionQueue::wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

SubmissionQueue::State SubmissionQueue::look() {
    std::lock_guard lock(mutex_);
    const State state{closed_, terminating_, news_};
    news_ = false;
    io_asleep_ = false;
    return state;
}

bool SubmissionQueue::ready_to_sleep(bool spins) {
    std::lock_guard lock(mutex_);
    if (news_) {
        return false;
    }
    io_asleep_ = !spins;
    return true;
}

void SubmissionQueue::drain_wake() noexcept {
    std::uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof(count));
}

bool SubmissionQueue::push_front(std::span<Chunk* const> chunks) {
    std::lock_guard lock(mutex_);
    if (terminating_) {
        return false;
    }
    queue_.insert(queue_.begin(), chunks.begin(), chunks.end());
    return true;
}

bool SubmissionQueue::empty() {
    std::lock_guard lock(mutex_);
    return queue_.empty();
}

bool SubmissionQueue::terminating() {
    std::lock_guard lock(mutex_);
    return terminating_;
}

bool SubmissionQueue::closed_and_empty() {
    std::lock_guard lock(mutex_);
    return closed_ && queue_.empty();
}

std::deque<Chunk*> SubmissionQueue::take_all() {
    std::deque<Chunk*> taken;
    std::lock_guard lock(mutex_);
    taken.swap(queue_);
    return taken;
}

std::deque<Chunk*> SubmissionQueue::take_job(const Job& job) {
    std::lock_guard lock(mutex_);
    return take_job_chunks(queue_, job);
}

bool SubmissionQueue::tell_io_thread_locked() noexcept {
    if (io_asleep_) {
        io_asleep_ = false;
        return true;
    }
    news_ = true;
    return false;
}

} // namespace mproc::detail
