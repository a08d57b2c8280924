// SPDX-License-Identifier: MIT
#include "in_rank_pool.hpp"

#include <unistd.h>

#include <span>
#include <utility>

#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/this_worker.hpp"
#include "process/run_request.hpp"
#include "take_job_chunks.hpp"
#include "terminated_error.hpp"

namespace mproc::detail {
namespace {

/// The serving thread is this pool's worker while it runs the initializer or a task (what
/// this_worker::id() says there), and no worker otherwise.
class WorkerScope {
  public:
    explicit WorkerScope(std::uint64_t id) noexcept { become_worker(id); }
    ~WorkerScope() { become_worker(0); }
    WorkerScope(const WorkerScope&) = delete;
    WorkerScope& operator=(const WorkerScope&) = delete;
};

void cancel_all(std::deque<Chunk*>& chunks, const std::exception_ptr& reason) {
    for (Chunk* chunk : chunks) {
        chunk->job->cancel_chunk(*chunk, reason);
    }
}

} // namespace

InRankPool::InRankPool(const std::function<void()>& initializer, std::uint64_t worker_id)
    : worker_id_(worker_id), pid_(static_cast<long>(getpid())) {
    if (initializer) {
        const WorkerScope worker(worker_id_);
        try {
            initializer();
        } catch (...) {
            initializer_error_ = std::current_exception();
        }
    }
}

bool InRankPool::submit(ChunkBatch chunks) {
    std::lock_guard lock(mutex_);
    if (closed_) {
        return false;
    }
    chunks.append_to(queue_);
    return true;
}

bool InRankPool::run_next() {
    Chunk* chunk = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            return false;
        }
        chunk = queue_.front();
        queue_.pop_front();
    }
    if (std::exception_ptr reason = reason_not_to_run(*chunk->job)) {
        chunk->job->cancel_chunk(*chunk, std::move(reason));
        return true;
    }
    // The request as a worker process would receive it: the code that runs it is the same.
    WireJob& job = wire_of(*chunk->job);
    request_.clear();
    response_.clear();
    FrameKind answer = FrameKind::failed;
    try {
        job.encode_chunk(*chunk, request_);
        const WorkerScope worker(worker_id_);
        const auto started = std::chrono::steady_clock::now();
        answer =
            run_request(std::span(request_.data(), request_.size()), response_, initializer_error_);
        last_run_ = std::chrono::steady_clock::now() - started;
    } catch (...) {
        chunk->job->cancel_chunk(*chunk, std::current_exception()); // out of memory
        return true;
    }
    // Settled as the process backend settles a worker's answer (WorkerProcess::settle_answer),
    // with this process as the worker.
    WireReader in(response_.data(), response_.size());
    if (answer == FrameKind::done) {
        static_cast<void>(job.complete_chunk(*chunk, in, pid_, nullptr));
        return true;
    }
    std::exception_ptr reason;
    try {
        reason = decode_exception(in, pid_, chunk->job->task_index(*chunk, 0));
    } catch (...) {
        reason = std::current_exception();
    }
    chunk->job->cancel_chunk(*chunk, std::move(reason));
    return true;
}

bool InRankPool::cancel(Job& job) {
    if (!job.request_cancel(/*only_if_unstarted=*/false)) {
        return false;
    }
    std::deque<Chunk*> dropped;
    {
        std::lock_guard lock(mutex_);
        dropped = take_job_chunks(queue_, job);
    }
    cancel_all(dropped, cancelled_call_error());
    return true;
}

void InRankPool::close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
}

void InRankPool::join() {
    while (run_next()) {
    }
}

void InRankPool::terminate() {
    std::deque<Chunk*> dropped;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        dropped.swap(queue_);
    }
    cancel_all(dropped, terminated_error());
}

} // namespace mproc::detail
