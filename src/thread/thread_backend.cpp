// SPDX-License-Identifier: MIT
#include "mproc/detail/thread_backend.hpp"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <string>
#include <utility>

#include "mproc/detail/spin_wait.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wait_helper.hpp"
#include "mproc/errors.hpp"
#include "mproc/this_worker.hpp"
#include "take_job_chunks.hpp"

namespace mproc::detail {

namespace {

// Chunks this thread is running: more than one while a worker that waits helps meanwhile.
thread_local unsigned chunks_running_here = 0;

/// Runs a chunk as a worker does, on the recorder's `lane`: cancelled when the worker's
/// initializer failed, the call was cancelled or nobody wants its results any more.
void run_or_cancel(Chunk& chunk, const std::exception_ptr& initializer_error, Recorder& recorder,
                   std::size_t lane) {
    // Settling may free the chunk, and its call's result must find it counted: counted before,
    // timed after.
    const Recorder::ChunkFacts facts = Recorder::facts_of(chunk);
    const std::int64_t start = recorder.now_ns();
    ChunkEnd end = ChunkEnd::cancelled;
    if (initializer_error) {
        recorder.chunk_counted(lane, facts, end = ChunkEnd::failed);
        chunk.job->cancel_chunk(chunk, initializer_error);
    } else if (std::exception_ptr reason = reason_not_to_run(*chunk.job)) {
        recorder.chunk_counted(lane, facts, end);
        chunk.job->cancel_chunk(chunk, std::move(reason));
    } else {
        recorder.chunk_counted(lane, facts, end = ChunkEnd::finished);
        ++chunks_running_here;
        chunk.job->run_chunk(chunk);
        --chunks_running_here;
    }
    recorder.chunk_timed(
        lane, facts, end,
        {.start_ns = start, .end_ns = recorder.now_ns(), .counts_busy = chunks_running_here == 0});
}

} // namespace

/// A worker's help while it waits on a result (wait_helper.hpp): the chunks queued in its pool.
class ThreadBackend::Helper final : public WaitHelper {
  public:
    Helper(ThreadBackend& backend, const std::exception_ptr& initializer_error, std::size_t lane)
        : backend_(backend), initializer_error_(initializer_error), lane_(lane) {
        set_current_wait_helper(this);
    }
    ~Helper() { set_current_wait_helper(nullptr); }
    Helper(const Helper&) = delete;
    Helper& operator=(const Helper&) = delete;

    bool run_one_queued_chunk() override {
        Chunk* chunk = backend_.take_any_queued_chunk();
        if (chunk == nullptr) {
            return false;
        }
        run_or_cancel(*chunk, initializer_error_, backend_.recorder_, lane_);
        return true;
    }

  private:
    ThreadBackend& backend_;
    const std::exception_ptr& initializer_error_;
    const std::size_t lane_;
};

ThreadBackend::ThreadBackend(ValidatedOptions options)
    : worker_count_(options.workers), initializer_(std::move(options.initializer)),
      max_tasks_per_child_(options.max_tasks_per_child), threads_(options.workers),
      recorder_("mproc::ThreadPool", options.workers + (options.caller_runs_chunks ? 1 : 0),
                options) {
    for (std::size_t slot = 0; slot < worker_count_; ++slot) {
        recorder_.name_lane(slot, "thread worker " + std::to_string(slot));
    }
    if (options.caller_runs_chunks) {
        // The callers' lane lives as long as the pool: it may run chunks at any time.
        recorder_.name_lane(worker_count_, "calling threads");
        recorder_.share_lane(worker_count_);
        recorder_.worker_started(worker_count_, static_cast<long>(::getpid()));
    }
    refuse_unsupported_options(options, {.pool = "mproc::ThreadPool",
                                         .why = "its workers are threads, which cannot be "
                                                "killed and share their process's memory",
                                         .kill_running_task = kills_running_tasks,
                                         .retry_lost_task = true, // a thread is never lost
                                         .limit_worker_memory = false});
    try {
        std::lock_guard lock(mutex_);
        for (std::size_t slot = 0; slot < worker_count_; ++slot) {
            start_worker(slot, std::thread());
        }
    } catch (...) {
        // The system refused a thread (std::system_error): stop the ones already running, or
        // their std::thread objects would abort the program and they would outlive *this.
        terminate();
        join();
        throw;
    }
}

ThreadBackend::~ThreadBackend() {
    terminate();
    join();
}

// Caller holds mutex_.
void ThreadBackend::start_worker(std::size_t slot, std::thread predecessor) {
    threads_[slot] = std::thread(&ThreadBackend::run_worker, this, slot, std::move(predecessor));
    ++running_workers_;
}

void ThreadBackend::run_worker(std::size_t slot, std::thread predecessor) {
    if (predecessor.joinable()) {
        predecessor.join(); // the retired worker this one replaces; it is already on its way out
    }
    const std::uint64_t id = next_worker_id();
    become_worker(id);
    MPROC_TRACE_EVENT("thread worker %llu started in slot %zu", static_cast<unsigned long long>(id),
                      slot);
    recorder_.worker_started(slot, static_cast<long>(::getpid()));
    std::exception_ptr initializer_error;
    if (initializer_) {
        try {
            initializer_();
        } catch (...) {
            initializer_error = std::current_exception();
            MPROC_TRACE_EVENT("thread worker %llu: initializer threw",
                              static_cast<unsigned long long>(id));
        }
    }
    std::size_t tasks_done = 0;
    const Helper helper(*this, initializer_error, slot);
    while (Chunk* chunk = next_chunk()) {
        run_or_cancel(*chunk, initializer_error, recorder_, slot);
        if (max_tasks_per_child_ != 0 && ++tasks_done == max_tasks_per_child_ && retire(slot)) {
            MPROC_TRACE_EVENT("thread worker %llu retired after %zu tasks",
                              static_cast<unsigned long long>(id), tasks_done);
            return;
        }
    }
    MPROC_TRACE_EVENT("thread worker %llu exiting", static_cast<unsigned long long>(id));
    recorder_.worker_stopped(slot);
    {
        std::lock_guard lock(mutex_);
        --running_workers_;
    }
    worker_exited_.notify_all();
}

Chunk* ThreadBackend::next_chunk() {
    spin_until(
        [this] {
            return work_queued_.load(std::memory_order_relaxed) ||
                   closed_flag_.load(std::memory_order_relaxed);
        },
        worker_spin_budget);
    std::unique_lock lock(mutex_);
    while (queue_.empty() && !closed_) {
        ++idle_workers_;
        work_available_.wait(lock);
        --idle_workers_;
    }
    if (terminating_ || queue_.empty()) {
        return nullptr;
    }
    Chunk* chunk = queue_.front();
    queue_.pop_front();
    work_queued_.store(!queue_.empty(), std::memory_order_relaxed);
    return chunk;
}

Chunk* ThreadBackend::take_queued_chunk(const Job& job) {
    // The job's chunks were queued by this thread, which saw its own store of true; a false read
    // since then was stored once the queue was empty, with every chunk of the job gone.
    if (!work_queued_.load(std::memory_order_relaxed)) {
        return nullptr;
    }
    std::lock_guard lock(mutex_);
    // The job's chunks are queued together (one submit), usually at the front: the scan is short.
    const auto found = std::find_if(queue_.begin(), queue_.end(),
                                    [&job](const Chunk* chunk) { return chunk->job == &job; });
    if (found == queue_.end()) {
        return nullptr;
    }
    Chunk* chunk = *found;
    queue_.erase(found);
    work_queued_.store(!queue_.empty(), std::memory_order_relaxed);
    return chunk;
}

void ThreadBackend::run_taken_chunk(Chunk& chunk) {
    run_or_cancel(chunk, nullptr, recorder_, worker_count_);
}

std::size_t ThreadBackend::queue_depth() {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

bool ThreadBackend::cancel(Job& job) {
    if (!job.request_cancel(/*only_if_unstarted=*/true)) {
        return false;
    }
    // Its chunks still queued end here; one a worker has just taken ends there (run_or_cancel).
    std::deque<Chunk*> dropped;
    {
        std::lock_guard lock(mutex_);
        dropped = take_job_chunks(queue_, job);
        work_queued_.store(!queue_.empty(), std::memory_order_relaxed);
    }
    for (Chunk* chunk : dropped) {
        chunk->job->cancel_chunk(*chunk, cancelled_call_error());
    }
    return true;
}

Chunk* ThreadBackend::take_any_queued_chunk() {
    if (!work_queued_.load(std::memory_order_relaxed)) {
        return nullptr; // a stale read only delays the help: the helper looks again
    }
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
        return nullptr;
    }
    Chunk* chunk = queue_.front();
    queue_.pop_front();
    work_queued_.store(!queue_.empty(), std::memory_order_relaxed);
    return chunk;
}

bool ThreadBackend::retire(std::size_t slot) {
    std::lock_guard lock(mutex_);
    if (terminating_) {
        return false; // exit through the normal path instead; no replacement needed
    }
    recorder_.worker_ended(slot, TimelineEvent::Kind::worker_retired);
    // Our own handle may already have been taken by join(); then it joins us itself.
    std::thread self = std::move(threads_[slot]);
    --running_workers_;
    start_worker(slot, std::move(self));
    return true;
}

bool ThreadBackend::submit(ChunkBatch chunks) {
    const std::size_t count = chunks.size();
    std::size_t sleepers;
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return false;
        }
        chunks.append_to(queue_);
        recorder_.queue_depth_seen(queue_.size());
        work_queued_.store(true, std::memory_order_relaxed);
        sleepers = idle_workers_;
    }
    // A wake-up is a system call: make none when no worker sleeps (spinning workers see the
    // queue by themselves), and wake no more sleepers than there are chunks.
    if (sleepers == 0) {
        return true;
    }
    if (count >= sleepers) {
        work_available_.notify_all();
    } else {
        for (std::size_t i = 0; i < count; ++i) {
            work_available_.notify_one();
        }
    }
    return true;
}

void ThreadBackend::close() {
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            return;
        }
        closed_ = true;
        closed_flag_.store(true, std::memory_order_relaxed);
    }
    MPROC_TRACE_EVENT("thread backend closed");
    work_available_.notify_all();
}

void ThreadBackend::terminate() {
    std::deque<Chunk*> dropped;
    {
        std::lock_guard lock(mutex_);
        if (terminating_) {
            return;
        }
        closed_ = true;
        closed_flag_.store(true, std::memory_order_relaxed);
        terminating_ = true;
        dropped.swap(queue_);
        work_queued_.store(false, std::memory_order_relaxed);
    }
    MPROC_TRACE_EVENT("thread backend terminating: %zu queued chunks dropped", dropped.size());
    work_available_.notify_all();
    if (!dropped.empty()) {
        const auto reason =
            std::make_exception_ptr(PoolTerminated("mproc: the pool was terminated before this "
                                                   "task ran"));
        for (Chunk* chunk : dropped) {
            chunk->job->cancel_chunk(*chunk, reason);
        }
    }
}

void ThreadBackend::join() {
    std::unique_lock lock(mutex_);
    for (;;) {
        std::thread joinable;
        for (std::thread& thread : threads_) {
            if (thread.joinable()) {
                joinable = std::move(thread);
                break;
            }
        }
        if (joinable.joinable()) {
            lock.unlock();
            joinable.join();
            lock.lock();
            continue;
        }
        if (running_workers_ == 0) {
            if (recorder_.lanes() > worker_count_) {
                recorder_.worker_stopped(worker_count_); // the callers' lane
            }
            return;
        }
        // A retiring worker is between giving up its slot and its replacement taking it.
        worker_exited_.wait(lock);
    }
}

} // namespace mproc::detail
