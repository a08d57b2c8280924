// SPDX-License-Identifier: MIT
#pragma once
// The seam between the front end and the backends.
//
// The front end turns every call (apply, map, imap, ...) into a Job that owns the callable, the
// arguments and the result storage, and splits its items into Chunks. A backend only moves
// Chunks to workers and tells the Job when each one ran or was dropped; it knows nothing about
// chunking, ordering, callbacks or result objects. A backend that runs chunks in other processes
// also needs the job's wire half (detail/wire/wire_job.hpp), which only it includes: a
// ThreadPool's jobs have none and compile without the codec.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

namespace mproc::detail {

class Job;
class WireJob;
class Recorder;

/// A contiguous run of a job's items: the unit a backend executes (Python's "task").
struct Chunk {
    Job* job = nullptr;
    std::size_t first = 0; // index in the call's input of the chunk's first item
    std::size_t count = 0;
    // How often a backend re-ran it after losing its worker (PoolOptions::max_retries); a job
    // that reuses a settled chunk for new items resets it.
    std::uint32_t retries = 0;
    // When it was submitted, in its pool's Recorder::now_ns() terms; set only while the pool
    // records a timeline.
    std::int64_t submitted_ns = 0;
};

/// The chunks of one job handed over in one submit: `count` consecutive chunks (a map's), or
/// `count` chunks anywhere (the slots an imap stream refills, each on its own). A view: the
/// chunks and the array of them must outlive the submit call, not the batch.
class ChunkBatch {
  public:
    ChunkBatch(Chunk* first, std::size_t count) noexcept : consecutive_(first), count_(count) {}
    ChunkBatch(Chunk* const* chunks, std::size_t count) noexcept
        : scattered_(chunks), count_(count) {}

    std::size_t size() const noexcept { return count_; }
    Chunk* operator[](std::size_t i) const noexcept {
        return scattered_ == nullptr ? consecutive_ + i : scattered_[i];
    }
    /// Appends the chunks, in order, to a backend's queue (a container of Chunk*).
    template <class Queue>
    void append_to(Queue& queue) const {
        for (std::size_t i = 0; i < count_; ++i) {
            queue.push_back((*this)[i]);
        }
    }

  private:
    Chunk* consecutive_ = nullptr;
    Chunk* const* scattered_ = nullptr;
    std::size_t count_;
};

/// Base of every call's state. Reference counted: the caller's handle holds one reference and
/// every submitted chunk holds one until it is settled, so a job outlives the pool calls that
/// still touch it.
class Job {
  public:
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    /// Runs the chunk's items in this address space and settles the chunk. Called by exactly
    /// one worker per chunk; never throws (item exceptions become item results).
    virtual void run_chunk(const Chunk& chunk) noexcept = 0;

    /// False once nobody will read the job's results (an imap stream was left early): backends
    /// then cancel its chunks instead of running them.
    virtual bool wanted() const noexcept { return true; }

    /// Settles the chunk without running it; every item in it ends with `reason`.
    virtual void cancel_chunk(const Chunk& chunk, std::exception_ptr reason) noexcept = 0;

    /// The index, within the caller's call, of item `offset` of `chunk` (what errors report).
    virtual std::size_t task_index(const Chunk& chunk, std::size_t offset) const noexcept {
        return chunk.first + offset;
    }

    /// The job's wire half (encode a chunk for a worker process, decode its answer), or null for
    /// a job built for an in-process backend.
    virtual WireJob* wire() noexcept { return nullptr; }

    // ---- cancellation (AsyncResult::cancel) ------------------------------------------------
    // One word orders the three events that decide it: a chunk starts, the call is cancelled,
    // the call ends. Whichever comes first wins, on every thread.

    /// Called as a worker starts one of the job's chunks: false when the job is cancelled (the
    /// chunk is then cancelled instead of run).
    bool start_chunk() noexcept {
        std::uint8_t state = gate_.load(std::memory_order_acquire);
        if ((state & started) == 0) {
            state = gate_.fetch_or(started, std::memory_order_acq_rel);
        }
        return (state & cancelled_bit) == 0;
    }

    /// Marks the job cancelled unless it has ended, or (with `only_if_unstarted`: a backend
    /// that cannot stop a running chunk) one of its chunks has started. True when the job is
    /// cancelled now (or was already).
    bool request_cancel(bool only_if_unstarted) noexcept {
        std::uint8_t state = gate_.load(std::memory_order_acquire);
        for (;;) {
            if ((state & cancelled_bit) != 0) {
                return true;
            }
            if ((state & finished) != 0 || (only_if_unstarted && (state & started) != 0)) {
                return false;
            }
            if (gate_.compare_exchange_weak(state, state | cancelled_bit,
                                            std::memory_order_acq_rel)) {
                return true;
            }
        }
    }

    /// Whether the job was cancelled: its chunks are to be dropped, or killed where they run.
    bool cancelled() const noexcept {
        return (gate_.load(std::memory_order_acquire) & cancelled_bit) != 0;
    }

    /// Called once, as the job's outcome is stored: false when it was cancelled first (the
    /// outcome is then mproc::Cancelled, whatever the chunks gave).
    bool mark_finished() noexcept {
        return (gate_.fetch_or(finished, std::memory_order_acq_rel) & cancelled_bit) == 0;
    }

    /// Process backends: the hard time limit of each of this call's chunks, zero for the pool's
    /// own (`mproc::with_timeout`). Set by the front end before the first chunk is submitted.
    std::chrono::nanoseconds task_timeout() const noexcept { return task_timeout_; }
    void set_task_timeout(std::chrono::nanoseconds limit) noexcept { task_timeout_ = limit; }

    /// Which call this is, numbered in the order calls were made in this process (timelines
    /// tell calls apart by it).
    std::uint64_t call_number() const noexcept { return call_number_; }

    void acquire(std::size_t count = 1) noexcept {
        references_.fetch_add(count, std::memory_order_relaxed);
    }
    void release() noexcept {
        if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

  protected:
    Job() noexcept : call_number_(next_call_number()) {}
    virtual ~Job() = default;

  private:
    static constexpr std::uint8_t started = 1, cancelled_bit = 2, finished = 4;
    static std::uint64_t next_call_number() noexcept;

    std::atomic<std::size_t> references_{1};
    std::atomic<std::uint8_t> gate_{0};
    std::chrono::nanoseconds task_timeout_{0};
    const std::uint64_t call_number_;
};

/// The reason given to a chunk cancelled because its job is no longer wanted.
std::exception_ptr unwanted_chunk_reason();

/// The outcome of a cancelled call, and the reason given to its chunks (mproc::Cancelled).
std::exception_ptr cancelled_call_error();

/// Why a chunk that a worker is about to start must not run (null when it may): its job was
/// cancelled, or nobody reads its results any more. Marks the job started otherwise.
inline std::exception_ptr reason_not_to_run(Job& job) {
    if (!job.start_chunk()) {
        return cancelled_call_error();
    }
    if (!job.wanted()) {
        return unwanted_chunk_reason();
    }
    return nullptr;
}

/// Owning handle to a Job (or a class derived from it); adopts the reference it is built from.
template <class T>
class JobRef {
  public:
    JobRef() = default;
    explicit JobRef(T* adopted) noexcept : job_(adopted) {}
    JobRef(const JobRef& other) noexcept : job_(other.job_) {
        if (job_) job_->acquire();
    }
    JobRef(JobRef&& other) noexcept : job_(other.detach()) {}
    template <class U>
    requires std::is_convertible_v<U*, T*> JobRef(JobRef<U>&& other)
    noexcept : job_(other.detach()) {}
    JobRef& operator=(JobRef other) noexcept {
        std::swap(job_, other.job_);
        return *this;
    }
    ~JobRef() {
        if (job_) job_->release();
    }

    T* get() const noexcept { return job_; }
    T* operator->() const noexcept { return job_; }
    T& operator*() const noexcept { return *job_; }
    explicit operator bool() const noexcept { return job_ != nullptr; }
    /// Gives up ownership without releasing the reference.
    T* detach() noexcept { return std::exchange(job_, nullptr); }

  private:
    T* job_ = nullptr;
};

/// Creates a job with its first reference owned by the returned handle.
template <class T, class... Args>
JobRef<T> make_job(Args&&... args) {
    return JobRef<T>(new T(std::forward<Args>(args)...));
}

/// A job that reads its input lazily and submits chunks while the caller consumes results
/// (imap). The pool keeps the open ones so that join() and terminate() can stop their feeding.
class Feeder {
  public:
    /// Stops reading input: results of chunks already submitted still arrive, then the
    /// consumer sees `reason`. Safe to call concurrently with feeding, any number of times.
    virtual void cut(std::exception_ptr reason) noexcept = 0;
    virtual Job& job() noexcept = 0;

  protected:
    ~Feeder() = default;
};

/// Where jobs send chunks: the front end implements it over its backend.
class ChunkSink {
  public:
    /// Hands chunks of one job to the backend, which then holds one job reference per chunk
    /// until it settles the chunk. Returns false (and takes nothing) when the pool no longer
    /// accepts chunks.
    virtual bool submit(ChunkBatch chunks) = 0;
    /// A Feeder has read its whole input, been cut, or been abandoned: it submits no more.
    virtual void feeder_finished(Feeder& feeder) noexcept = 0;

  protected:
    ~ChunkSink() = default;
};

struct ValidatedOptions;

/// What BasicPool asks of a backend, and nothing more: run chunks somewhere, settle each one
/// exactly once (run_chunk, the wire half's complete_chunk, or cancel_chunk), and follow the
/// lifecycle.
///  - `Backend(ValidatedOptions)` starts the workers; throws std::system_error if it cannot.
///  - `job_type<CoreJob>`: the job the front end builds for a call: the core job itself for an
///    in-process backend, the core job with its wire half (wire_job_t) for one that crosses
///    processes.
///  - `kills_running_tasks`: whether it enforces a job's hard time limit (with_timeout).
///  - `submit(batch)` takes the chunks, or returns false once closed.
///  - `cancel(job)`: AsyncResult::cancel (job.request_cancel decides), then drops the job's
///    queued chunks and, where it kills running tasks, stops its running ones; every chunk
///    ends with cancelled_call_error(), soon. True when the job is cancelled.
///  - `close()`: no more submissions; workers exit when the queued work is done.
///  - `terminate()`: no more submissions; queued chunks are cancelled with
///    mproc::PoolTerminated; running ones end as the backend can (threads run to their end).
///  - `join()`: waits until every worker is gone; needs close() or terminate() first.
///  - `recorder()`: its Recorder (recorder.hpp), told of every chunk that ran on a worker and
///    of every worker's start and end; `queue_depth()`: chunks queued and not yet taken.
template <class B>
concept PoolBackend = std::constructible_from<B, ValidatedOptions> &&
    requires(B& backend, ChunkBatch chunks, Job& job) {
    { backend.recorder() } -> std::same_as<Recorder&>;
    { backend.queue_depth() } -> std::same_as<std::size_t>;
    { B::kills_running_tasks } -> std::convertible_to<bool>;
    { std::as_const(backend).worker_count() } -> std::same_as<std::size_t>;
    { backend.submit(chunks) } -> std::same_as<bool>;
    { backend.cancel(job) } -> std::same_as<bool>;
    backend.close();
    backend.terminate();
    backend.join();
};

/// A backend whose chunks can run on the calling thread (PoolOptions::caller_runs_chunks):
/// `take_queued_chunk(job)` removes a chunk of `job` that no worker has started from its queue
/// and returns it (nullptr when none is left), for the thread that submitted it to run.
template <class B>
concept CallerRunnableBackend = requires(B& backend, const Job& job, Chunk& chunk) {
    { backend.take_queued_chunk(job) } -> std::same_as<Chunk*>;
    backend.run_taken_chunk(chunk);
};

/// A backend that can run tasks in the processes it dispatches to rather than in worker
/// processes of theirs (PoolOptions::in_rank): it says so with `runs_tasks_in_rank`.
template <class B>
concept InRankBackend = B::runs_tasks_in_rank;

} // namespace mproc::detail
