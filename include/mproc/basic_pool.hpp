// SPDX-License-Identifier: MIT
#pragma once
/// @file basic_pool.hpp
/// The front end shared by every pool class: Python's `multiprocessing.Pool` API and semantics,
/// written once over a backend that only runs chunks. Use it through `mproc::ThreadPool`,
/// `mproc::Pool` or `mproc::MpiPool`.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/callbacks.hpp"
#include "mproc/detail/apply_job.hpp"
#include "mproc/detail/call.hpp"
#include "mproc/detail/cancel_route.hpp"
#include "mproc/detail/chunking.hpp"
#include "mproc/detail/fork_generation.hpp"
#include "mproc/detail/imap_job.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/map_input.hpp"
#include "mproc/detail/map_job.hpp"
#include "mproc/detail/ranges.hpp"
#include "mproc/detail/recorder.hpp"
#include "mproc/detail/size_math.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/errors.hpp"
#include "mproc/fn.hpp"
#include "mproc/outcome.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/result_stream.hpp"
#include "mproc/task_timeout.hpp"
#include "mproc/timeline.hpp"

namespace mproc {

/// The chunksize of the map calls: a positive count of items, or `mproc::auto_chunksize`.
using Chunksize = std::optional<std::ptrdiff_t>;
/// Python's automatic chunksize (its `chunksize=None`): about four chunks per worker.
inline constexpr std::nullopt_t auto_chunksize = std::nullopt;

namespace detail {
template <class F, class... Args>
concept apply_callable = std::is_invocable_v < const callable_t<F>
&, std::decay_t<Args>&&... > ;

/// Storage map_into can write to: contiguous, sized and writable.
template <class Out>
concept output_storage = contiguous_range<Out> && sized_range<Out> &&
    !std::is_const_v<std::remove_reference_t<range_reference_t<Out>>>;

template <class Out>
auto storage_span(Out& out) {
    return std::span<std::remove_reference_t<range_reference_t<Out>>>(out);
}

template <class F>
concept not_callbacks = !is_callbacks<std::remove_cvref_t<F>>;

template <class F, class Range, Unpack unpack>
inline constexpr bool item_callable = ItemCall<callable_t<F>, range_value_t<Range>, unpack>::valid;
} // namespace detail

/// A pool of workers behind Python's Pool API. `Backend` decides where chunks run.
///
/// Lifecycle, as in Python: a running pool takes calls; `close()` refuses new calls but lets
/// queued work (and open `imap` streams) finish; `terminate()` drops queued work; `join()` waits
/// for the workers after either. The destructor is Python's `with` exit: `terminate()`, then
/// `join()`.
template <detail::PoolBackend Backend>
class BasicPool : private detail::ChunkSink, private detail::JobCanceller {
  public:
    /// Starts `mproc::cpu_count()` workers.
    BasicPool() : BasicPool(PoolOptions{}) {}
    /// Starts `workers` workers; throws std::invalid_argument unless `workers` > 0.
    explicit BasicPool(std::ptrdiff_t workers) : BasicPool(PoolOptions{.workers = workers}) {}
    /// Starts the workers `options` describes; throws std::invalid_argument for a non-positive
    /// `workers` or `max_tasks_per_child`, or options this pool class cannot honour.
    explicit BasicPool(PoolOptions options)
        : caller_runs_chunks_(options.caller_runs_chunks),
          backend_(std::make_unique<Backend>(checked_options(std::move(options)))) {
        MPROC_TRACE_EVENT("pool %p started with %zu workers", static_cast<void*>(this),
                          backend_->worker_count());
    }

    BasicPool(const BasicPool&) = delete;
    BasicPool& operator=(const BasicPool&) = delete;

    /// `terminate()` then `join()`: queued work is dropped (its results end with
    /// `mproc::PoolTerminated`) and every worker is gone when the destructor returns. In a
    /// process forked from the pool's owner (without exec), it does nothing: the workers are the
    /// owner's (see fork_generation.hpp). Virtual: the pool classes may be derived from (a
    /// pool with options of its own), and deleted through a pointer to their base.
    virtual ~BasicPool() {
        if (in_forked_child()) {
            // No thread of the pool runs here, its locks may have been held when the process
            // was forked, and its sockets are the owner's: touch none of it (this leaks the
            // copy's memory and descriptors, in this process only).
            (void)backend_.release();
            return;
        }
        cancel_route_->cut(); // a result that outlives the pool cancels nothing
        terminate();
        join();
    }

    /// Number of workers (Python's `pool._processes`).
    std::size_t workers() const noexcept { return backend_->worker_count(); }

    // ---- what the pool did (timeline.hpp) --------------------------------------------------

    /// Per worker: tasks and chunks run, busy and idle time, bytes moved, chunks lost or timed
    /// out, replacements and why; for the pool: the queue's depth now and at most. Always kept;
    /// readable at any time, also after `join()`.
    PoolStats stats() const { return backend_->recorder().stats(backend_->queue_depth()); }

    /// The events recorded so far (PoolOptions::timeline or MPROC_TIMELINE): one lane per
    /// worker, every chunk's span, worker starts, retirements and losses. Readable at any time,
    /// also after `join()`; write it with mproc::write_timeline. Throws mproc::Error when the
    /// pool records none.
    Timeline timeline() const {
        if (!backend_->recorder().timeline_on()) {
            throw Error("mproc: this pool records no timeline: build it with "
                        "PoolOptions::timeline = true, or set MPROC_TIMELINE");
        }
        return backend_->recorder().timeline();
    }

    // ---- apply -------------------------------------------------------------------------------

    /// Runs `f(args...)` on a worker and returns its result (`std::monostate` for void).
    /// Throws what `f` threw, or `mproc::PoolNotRunning` after `close()`/`terminate()`.
    /// The arguments are moved into the call; a process or MPI pool, which sends them to the
    /// worker, encodes them from where the caller holds them instead (it waits for the result,
    /// so they outlive the call): a large argument is not copied first.
    template <class F, class... Args>
    requires detail::not_callbacks<F>
    auto apply(F&& f, Args&&... args) {
        return apply(Callbacks<NoCallback, NoCallback>{}, std::forward<F>(f),
                     std::forward<Args>(args)...);
    }
    /// As above, with callbacks (see callbacks.hpp), which have run when `apply` returns.
    template <class S, class E, class F, class... Args>
    auto apply(Callbacks<S, E> callbacks, F&& f, Args&&... args) {
        return wait_for(submit_apply<true>(std::move(callbacks), std::forward<F>(f),
                                           std::forward<Args>(args)...));
    }

    /// Starts `f(args...)` on a worker and returns at once.
    template <class F, class... Args>
    requires detail::not_callbacks<F>
    auto apply_async(F&& f, Args&&... args) {
        return apply_async(Callbacks<NoCallback, NoCallback>{}, std::forward<F>(f),
                           std::forward<Args>(args)...);
    }
    /// As above, with callbacks.
    template <class S, class E, class F, class... Args>
    auto apply_async(Callbacks<S, E> callbacks, F&& f, Args&&... args) {
        return cancellable(submit_apply<false>(std::move(callbacks), std::forward<F>(f),
                                               std::forward<Args>(args)...));
    }

    // ---- map / starmap ------------------------------------------------------------------------

    /// `f(item)` for every item, results in input order. Blocks until every chunk has run, then
    /// throws the first failure that arrived, if any (Python does not fail fast). `chunksize`
    /// must be positive (else std::invalid_argument); `mproc::auto_chunksize` (the default) is
    /// Python's: the item count divided by four times the workers, rounded up (for a process
    /// pool, capped so that a chunk carries about a megabyte at most). A random-access sized
    /// input is read in place; any other input is copied first.
    template <class F, detail::input_range Input>
    auto map(F&& f, Input&& input, Chunksize chunksize = auto_chunksize) {
        return run_map<detail::Unpack::no>(std::forward<F>(f), std::forward<Input>(input),
                                           checked(chunksize));
    }

    /// `map` into storage the caller provides: item i's result is assigned to `out[i]`. Saves
    /// the allocation of a fresh result and its page faults, which cost more than the mapping
    /// itself when items are trivial. `out` is any contiguous range (a vector, an array, a
    /// span) with one element per input item, else std::invalid_argument. Blocks as `map`
    /// does; on failure throws the first failure, and `out` then holds the results of the items
    /// that ran.
    template <class F, detail::input_range Input, detail::output_storage Out>
    void map_into(F&& f, Input&& input, Out&& out, Chunksize chunksize = auto_chunksize) {
        run_map<detail::Unpack::no>(std::forward<F>(f), std::forward<Input>(input),
                                    checked(chunksize), detail::storage_span(out));
    }

    /// `map` that returns at once: an `AsyncResult<std::vector<R>>`. The input is copied (moved
    /// if it is an rvalue vector) so the caller need not keep it alive. The success callback gets
    /// the whole vector, once; on failure the error callback gets the first failure, once.
    /// Example: `pool.map_async(f, xs, mproc::auto_chunksize, mproc::on_success(show))`.
    template <class F, detail::input_range Input, class S = NoCallback, class E = NoCallback>
    auto map_async(F&& f, Input&& input, Chunksize chunksize = auto_chunksize,
                   Callbacks<S, E> callbacks = {}) {
        return start_map<detail::Unpack::no>(std::forward<F>(f), std::forward<Input>(input),
                                             checked(chunksize), std::move(callbacks));
    }

    /// `map` whose items are tuples (or pairs) unpacked into the arguments: `f(a, b)` for each
    /// `{a, b}` (Python's starmap).
    template <class F, detail::input_range Input>
    auto starmap(F&& f, Input&& input, Chunksize chunksize = auto_chunksize) {
        return run_map<detail::Unpack::yes>(std::forward<F>(f), std::forward<Input>(input),
                                            checked(chunksize));
    }
    /// `map_async` of `starmap`.
    template <class F, detail::input_range Input, class S = NoCallback, class E = NoCallback>
    auto starmap_async(F&& f, Input&& input, Chunksize chunksize = auto_chunksize,
                       Callbacks<S, E> callbacks = {}) {
        return start_map<detail::Unpack::yes>(std::forward<F>(f), std::forward<Input>(input),
                                              checked(chunksize), std::move(callbacks));
    }

    // ---- imap ---------------------------------------------------------------------------------

    /// Lazily maps `f` over `input` and streams the results in input order (see
    /// `ResultStream`). An lvalue input is referenced, not copied: it must outlive the stream.
    /// An rvalue input is moved into the stream.
    ///
    /// The input is read only as workers need it. `buffersize` (Python's name) bounds the
    /// chunks submitted whose results have not all been taken yet; the input is not read
    /// further until the consumer takes results (backpressure), so at most
    /// `buffersize * chunksize` items have been read and not yet consumed. It must be at least
    /// 1; below `workers()` some workers idle. Default: `default_buffersize()` to start with,
    /// growing while results come back faster than one per 20 us (short tasks, whose trips to
    /// the workers would otherwise cost more than their work) up to at most
    /// `stream_max_chunks_per_worker * workers()` chunks and `stream_max_grown_items` items.
    template <class F, detail::input_range Input>
    auto imap(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
              std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start_stream<detail::Unpack::no>(detail::Order::input, std::forward<F>(f),
                                                std::forward<Input>(input), chunksize, buffersize);
    }
    /// As `imap`, but each result comes as soon as it is ready (completion order).
    template <class F, detail::input_range Input>
    auto imap_unordered(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
                        std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start_stream<detail::Unpack::no>(detail::Order::completion, std::forward<F>(f),
                                                std::forward<Input>(input), chunksize, buffersize);
    }

    /// The `buffersize` an `imap` call without one starts with: a few chunks per worker, so
    /// every worker has its next chunk ready while the consumer catches up.
    std::size_t default_buffersize() const noexcept { return stream_chunks_per_worker * workers(); }

    // ---- per-item outcomes ----------------------------------------------------------------------

    /// `map` that keeps every good result: a vector, in input order, of one `mproc::Outcome<R>`
    /// per item, holding its value or its error (a task's exception, `mproc::WorkerLost`,
    /// `mproc::TaskTimeout`, ...). Never throws for an item; throws for the call itself
    /// (`mproc::PoolNotRunning`, an exception from reading the input, std::invalid_argument
    /// for a chunksize <= 0). `mproc::auto_chunksize` is `map`'s for a sized input, else 1.
    template <class F, detail::input_range Input>
    auto map_outcomes(F&& f, Input&& input, Chunksize chunksize = auto_chunksize) {
        const std::size_t size = chunksize ? detail::checked_chunksize(*chunksize)
                                           : auto_map_chunksize(std::as_const(input));
        auto stream = imap_outcomes(std::forward<F>(f), std::forward<Input>(input),
                                    static_cast<std::ptrdiff_t>(size), std::nullopt);
        std::vector<typename decltype(stream)::iterator::value_type> outcomes;
        while (auto outcome = stream.next()) {
            outcomes.push_back(std::move(*outcome));
        }
        return outcomes;
    }
    /// `imap` whose items are `mproc::Outcome<R>`: an item's error is its outcome, not an
    /// exception, so a loop over it never stops early. Errors of the call itself (the input
    /// threw, the pool was terminated) are still thrown, after the outcomes before them.
    template <class F, detail::input_range Input>
    auto imap_outcomes(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
                       std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start_stream<detail::Unpack::no, true>(detail::Order::input, std::forward<F>(f),
                                                      std::forward<Input>(input), chunksize,
                                                      buffersize);
    }
    /// `imap_unordered` whose items are `mproc::Outcome<R>`, as `imap_outcomes`.
    template <class F, detail::input_range Input>
    auto imap_unordered_outcomes(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
                                 std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start_stream<detail::Unpack::no, true>(detail::Order::completion, std::forward<F>(f),
                                                      std::forward<Input>(input), chunksize,
                                                      buffersize);
    }

    // ---- lifecycle ------------------------------------------------------------------------------

    /// No new calls from now on (they throw `mproc::PoolNotRunning`); queued work and open
    /// `imap` streams still run to the end. Idempotent.
    void close() {
        refuse_in_forked_child();
        bool close_backend = false;
        {
            std::lock_guard lock(lifecycle_mutex_);
            if (state_ == State::running) {
                state_ = State::closed;
                MPROC_TRACE_EVENT("pool %p closed", static_cast<void*>(this));
            }
            close_backend = state_ == State::closed && open_feeders_.empty();
        }
        if (close_backend) {
            backend_->close();
        }
    }

    /// Stops now: queued chunks are dropped and their results end with `mproc::PoolTerminated`;
    /// open `imap` streams deliver what already ran, then `PoolTerminated`. A task already
    /// running on a thread cannot be interrupted and runs to its end. Idempotent; does not wait
    /// (call `join()` for that).
    void terminate() {
        refuse_in_forked_child();
        {
            std::lock_guard lock(lifecycle_mutex_);
            if (state_ == State::terminated) {
                return;
            }
            state_ = State::terminated;
            MPROC_TRACE_EVENT("pool %p terminating", static_cast<void*>(this));
        }
        cut_open_feeders(std::make_exception_ptr(
            PoolTerminated("mproc: the pool was terminated before imap's input was fully read")));
        backend_->terminate();
    }

    /// Waits until every worker has exited. Only after `close()` or `terminate()` (else throws
    /// `mproc::PoolStillRunning`). An `imap` stream still reading its input when `join()` is
    /// called stops reading there (its consumer gets the results of what was submitted, then
    /// `mproc::PoolNotRunning`): Python would read the rest eagerly, or deadlock.
    void join() {
        refuse_in_forked_child();
        {
            std::lock_guard lock(lifecycle_mutex_);
            if (state_ == State::running) {
                throw PoolStillRunning("mproc: join() needs close() or terminate() first");
            }
        }
        cut_open_feeders(std::make_exception_ptr(
            PoolNotRunning("mproc: the pool was joined before imap's input was fully read")));
        backend_->close();
        backend_->join();
        backend_->recorder().write_file_if_asked();
        MPROC_TRACE_EVENT("pool %p joined", static_cast<void*>(this));
    }

  private:
    enum class State { running, closed, terminated };

    /// The job built for a call: the core job, with its wire half where the backend runs
    /// chunks in other processes (then what it sends must be transportable, checked at compile
    /// time).
    template <class CoreJob>
    using job_for = typename Backend::template job_type<CoreJob>;

    /// detail::validate, plus what depends on the backend: caller_runs_chunks needs one whose
    /// chunks can run on the calling thread.
    static detail::ValidatedOptions checked_options(PoolOptions options) {
        if constexpr (!detail::CallerRunnableBackend<Backend>) {
            if (options.caller_runs_chunks) {
                throw std::invalid_argument(
                    "mproc: caller_runs_chunks needs a ThreadPool: in a process or MPI pool a "
                    "task run by the caller would run without a worker process's isolation");
            }
        }
        if constexpr (!detail::InRankBackend<Backend>) {
            if (options.in_rank) {
                throw std::invalid_argument(
                    "mproc: in_rank needs an MpiPool: it runs tasks in the MPI worker ranks' own "
                    "processes, which this pool does not have");
            }
        }
        return detail::validate(std::move(options));
    }

    bool in_forked_child() const noexcept { return detail::fork_generation() != fork_generation_; }

    /// Before any lock: in a forked child, another thread may have held it at the fork.
    void refuse_in_forked_child() const {
        if (in_forked_child()) {
            throw PoolNotRunning(
                "mproc: this pool belongs to the process that created it; a process forked from "
                "that one (without exec) cannot use it: create a pool in the child instead");
        }
    }

    void throw_unless_running() const {
        refuse_in_forked_child();
        std::lock_guard lock(lifecycle_mutex_);
        if (state_ != State::running) {
            throw PoolNotRunning(state_ == State::closed
                                     ? "mproc: the pool is closed and takes no new work"
                                     : "mproc: the pool is terminated and takes no new work");
        }
    }

    // ChunkSink: every chunk reaches the backend through here.
    bool submit(detail::ChunkBatch chunks) override {
        detail::Job& job = *chunks[0]->job;
        job.acquire(chunks.size()); // one reference per chunk, released when the chunk settles
        detail::Recorder& recorder = backend_->recorder();
        recorder.chunks_submitted(chunks); // before a worker can see them
        if (backend_->submit(chunks)) {
            return true;
        }
        recorder.chunks_refused(chunks.size());
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            job.release(); // never the last: the caller holds its own reference
        }
        return false;
    }

    void submit_or_throw(detail::ChunkBatch chunks) {
        if (!submit(chunks)) {
            throw PoolNotRunning("mproc: the pool stopped and takes no new work");
        }
    }

    void feeder_finished(detail::Feeder& feeder) noexcept override {
        bool close_backend = false;
        {
            std::lock_guard lock(lifecycle_mutex_);
            std::erase(open_feeders_, &feeder);
            close_backend = state_ == State::closed && open_feeders_.empty();
        }
        if (close_backend) {
            backend_->close();
        }
    }

    void cut_open_feeders(std::exception_ptr reason) {
        std::vector<detail::JobRef<detail::Job>> keep_alive;
        std::vector<detail::Feeder*> feeders;
        {
            // Feeders leave the list before they can be destroyed, so each one is alive here;
            // the references keep it alive until it is cut, outside the lock (lock order:
            // a feeder's own mutex, then lifecycle_mutex_).
            std::lock_guard lock(lifecycle_mutex_);
            feeders.swap(open_feeders_);
            for (detail::Feeder* feeder : feeders) {
                feeder->job().acquire();
                keep_alive.emplace_back(&feeder->job());
            }
        }
        for (detail::Feeder* feeder : feeders) {
            feeder->cut(reason);
        }
    }

    /// `borrow`: the caller waits for the result (see apply), so a job that only encodes its
    /// arguments may take them by reference.
    template <bool borrow, class S, class E, class F, class... Args>
    auto submit_apply(Callbacks<S, E> callbacks, F&& f, Args&&... args) {
        static_assert(detail::apply_callable<F, Args...>,
                      "mproc: apply(f, args...) needs f to be callable as a const object with "
                      "the arguments (moved in)");
        using Job = job_for<detail::ApplyJob<detail::callable_t<F>, std::decay_t<Args>...>>;
        using Result = typename Job::Result;
        throw_unless_running();
        const auto time_limit = checked_time_limit(f);
        require_sendable<Job>();
        auto job = [&] {
            if constexpr (borrow && requires { Job::can_borrow_arguments; }) {
                return detail::make_job<Job>(detail::BorrowArguments{},
                                             detail::unwrap_callable(std::forward<F>(f)),
                                             std::as_const(args)...);
            } else {
                return detail::make_job<Job>(detail::unwrap_callable(std::forward<F>(f)),
                                             std::forward<Args>(args)...);
            }
        }();
        job->set_task_timeout(time_limit);
        install_callbacks<Result>(*job, std::move(callbacks));
        submit_or_throw({job->chunk(), 1});
        return detail::JobRef<detail::ResultState<Result>>(std::move(job));
    }

    template <class R, class S, class E>
    void install_callbacks(detail::ResultState<R>& state, Callbacks<S, E> callbacks) {
        constexpr bool has_success = !std::is_same_v<S, NoCallback>;
        constexpr bool has_error = !std::is_same_v<E, NoCallback>;
        static_assert(!has_success || std::is_invocable_v<S&, const R&>,
                      "mproc: the success callback must be callable with the result (const R&)");
        static_assert(!has_error || std::is_invocable_v<E&, std::exception_ptr>,
                      "mproc: the error callback must be callable with a std::exception_ptr");
        if constexpr (has_success || has_error) {
            detail::Function<void(const R&)> on_success;
            detail::Function<void(std::exception_ptr)> on_error;
            if constexpr (has_success) on_success = std::move(callbacks.on_success);
            if constexpr (has_error) on_error = std::move(callbacks.on_error);
            state.set_callbacks(std::move(on_success), std::move(on_error), &callback_mutex_);
        }
    }

    /// `out`: none (the result is a fresh vector) or one span (map_into).
    template <detail::Unpack unpack, class F, class Input, class... Out>
    auto run_map(F&& f, Input&& input, std::optional<std::size_t> chunksize,
                 std::span<Out>... out) {
        if constexpr (detail::borrowable_input<std::remove_cvref_t<Input>>) {
            // The caller blocks until every chunk has settled, so workers can read in place.
            using Borrowed = detail::BorrowedInput<std::remove_cvref_t<Input>>;
            return wait_for(submit_map<unpack>(std::forward<F>(f), Borrowed(input), chunksize,
                                               Callbacks<NoCallback, NoCallback>{}, out...));
        } else {
            return wait_for(submit_map_copy<unpack>(std::forward<F>(f), std::forward<Input>(input),
                                                    chunksize, Callbacks<NoCallback, NoCallback>{},
                                                    out...));
        }
    }

    template <detail::Unpack unpack, class F, class Input, class S, class E, class... Out>
    auto start_map(F&& f, Input&& input, std::optional<std::size_t> chunksize,
                   Callbacks<S, E> callbacks, std::span<Out>... out) {
        return cancellable(submit_map_copy<unpack>(std::forward<F>(f), std::forward<Input>(input),
                                                   chunksize, std::move(callbacks), out...));
    }

    /// The handle of an asynchronous call, whose cancel() reaches this pool. (Set after the
    /// submission: only that handle reads it.)
    template <class R>
    AsyncResult<R> cancellable(detail::JobRef<detail::ResultState<R>> job) {
        job->set_cancel_route(cancel_route_);
        return AsyncResult<R>(std::move(job));
    }

    // JobCanceller: AsyncResult::cancel, through cancel_route_.
    bool cancel_job(detail::Job& job) override { return backend_->cancel(job); }

    /// A map whose job holds its own copy of the input (moved in if it is an rvalue vector).
    template <detail::Unpack unpack, class F, class Input, class S, class E, class... Out>
    auto submit_map_copy(F&& f, Input&& input, std::optional<std::size_t> chunksize,
                         Callbacks<S, E> callbacks, std::span<Out>... out) {
        throw_unless_running(); // before copying the input
        return submit_map<unpack>(std::forward<F>(f),
                                  detail::materialise(std::forward<Input>(input)), chunksize,
                                  std::move(callbacks), out...);
    }

    template <detail::Unpack unpack, class F, class MapInput, class S, class E, class... Out>
    auto submit_map(F&& f, MapInput input, std::optional<std::size_t> chunksize,
                    Callbacks<S, E> callbacks, std::span<Out>... out) {
        static_assert(
            detail::ItemCall<detail::callable_t<F>, typename MapInput::value_type, unpack>::valid,
            "mproc: map/starmap need f callable (as a const object) with one input "
            "item (map) or with the elements of one tuple-like item (starmap)");
        using Value = detail::map_item_result_t<detail::callable_t<F>, MapInput, unpack>;
        static_assert((std::is_assignable_v<Out&, Value&&> && ...),
                      "mproc: map_into needs the result of f assignable to an element of out");
        using Slots = typename detail::MapSlotsFor<Value, Out...>::type;
        using Job = job_for<detail::MapJob<detail::callable_t<F>, MapInput, unpack, Slots>>;
        using Result = typename Slots::Result;
        throw_unless_running();
        const std::size_t size = chunksize ? *chunksize : auto_map_chunksize(input);
        const auto time_limit = checked_time_limit(f);
        require_sendable<Job>();
        auto job = detail::make_job<Job>(detail::unwrap_callable(std::forward<F>(f)),
                                         std::move(input), size, out...);
        job->set_task_timeout(time_limit);
        install_callbacks<Result>(*job, std::move(callbacks));
        if (job->chunks().empty()) {
            job->finish_empty(); // Python: empty input gives an empty result, f is not called
        } else {
            submit_or_throw({job->chunks().data(), job->chunks().size()});
        }
        return detail::JobRef<detail::ResultState<Result>>(std::move(job));
    }

    /// The chunksize of a map-like call that names none: Python's (about four chunks per
    /// worker); where the backend sends items (it has item_bytes) and they can be sampled
    /// (random access), capped so that large items travel a few at a time
    /// (detail::max_auto_chunk_bytes); 1 for an input of unknown size. At least 1.
    template <class Input>
    std::size_t auto_map_chunksize(const Input& input) const {
        if constexpr (detail::map_items<Input>) {
            using Item = typename Input::value_type;
            const std::size_t python = detail::auto_chunksize(input.size(), workers());
            if constexpr (requires(const Item& item) { Backend::item_bytes(item); }) {
                return detail::byte_capped_chunksize(
                    python, input, [](const Item& item) { return Backend::item_bytes(item); });
            } else {
                return python;
            }
        } else if constexpr (detail::borrowable_input<Input>) {
            return detail::larger(1, auto_map_chunksize(detail::BorrowedInput<Input>(input)));
        } else if constexpr (detail::sized_range<const Input>) {
            return detail::larger(1, detail::auto_chunksize(std::ranges::size(input), workers()));
        } else {
            return 1;
        }
    }

    /// A chunksize the caller chose, checked; empty for the automatic one.
    static std::optional<std::size_t> checked(Chunksize chunksize) {
        if (chunksize) {
            return detail::checked_chunksize(*chunksize);
        }
        return std::nullopt;
    }

    /// How a blocking call waits for the job it submitted. With caller_runs_chunks the caller
    /// first runs the job's chunks that no worker has started, exactly as a worker runs them, so
    /// the results, their order, errors and callbacks are the same.
    template <class R>
    R wait_for(detail::JobRef<detail::ResultState<R>> job) {
        if constexpr (detail::CallerRunnableBackend<Backend>) {
            if (caller_runs_chunks_) {
                while (detail::Chunk* chunk = backend_->take_queued_chunk(*job)) {
                    backend_->run_taken_chunk(*chunk);
                }
            }
        }
        return std::move(AsyncResult<R>(std::move(job))).get();
    }

    /// For a backend whose jobs cross a process boundary: fails compilation, with the message
    /// that says what to add, unless the job's callable, arguments and results can cross.
    /// Checked here, in the call the user made, so that the compiler's trail of instantiations
    /// ends at the user's line (a job's encoding is instantiated later, with no such trail).
    /// Every check on the way returns `auto`: a compiler instantiates such a body where it is
    /// called, while Clang leaves a `void` one to the end of the file and loses the trail.
    template <class Job>
    static auto require_sendable() {
        if constexpr (requires { Job::require_sendable(); }) {
            Job::require_sendable();
        }
    }

    /// A call's own hard time limit (mproc::with_timeout), refused where the backend cannot
    /// kill a running task.
    template <class F>
    static std::chrono::nanoseconds checked_time_limit(const F& f) noexcept {
        static_assert(Backend::kills_running_tasks || !detail::time_limited_v<F>,
                      "mproc: with_timeout needs a process pool (mproc::Pool): this pool cannot "
                      "kill a running task (ThreadPool: threads cannot be killed; MpiPool: not "
                      "supported yet)");
        return detail::time_limit_of(f);
    }

    template <detail::Unpack unpack, bool outcomes = false, class F, class Input>
    auto start_stream(detail::Order order, F&& f, Input&& input, std::ptrdiff_t chunksize,
                      std::optional<std::ptrdiff_t> buffersize) {
        static_assert(std::is_lvalue_reference_v<Input> || std::is_move_constructible_v<Input>,
                      "mproc: imap keeps an rvalue input range, so it must be movable");
        static_assert(detail::item_callable<F, Input, unpack>,
                      "mproc: imap needs f callable (as a const object) with one input item");
        using View = detail::HeldRange<Input>;
        using Job = job_for<detail::IMapJob<detail::callable_t<F>, View, unpack, outcomes>>;
        using Result = detail::imap_stream_item_t<detail::callable_t<F>, View, unpack, outcomes>;
        const std::size_t size = detail::checked_chunksize(chunksize);
        const auto window =
            buffersize
                ? detail::StreamWindow::fixed(detail::checked_buffersize(*buffersize), workers())
                : detail::StreamWindow::growing(workers(), size, Job::bytes_per_item);
        throw_unless_running();
        const auto time_limit = checked_time_limit(f);
        require_sendable<Job>();
        auto job = detail::make_job<Job>(static_cast<detail::ChunkSink&>(*this), order, size,
                                         window, detail::unwrap_callable(std::forward<F>(f)),
                                         View(std::forward<Input>(input)));
        job->set_task_timeout(time_limit);
        {
            std::lock_guard lock(lifecycle_mutex_);
            if (state_ != State::running) {
                throw PoolNotRunning("mproc: the pool stopped and takes no new work");
            }
            open_feeders_.push_back(job.get());
        }
        Job& feeder = *job;
        // Owned by the stream first: if filling the window throws (no memory for a slot, the
        // backend refusing), the stream's destructor takes the job off open_feeders_.
        ResultStream<Result> stream(std::move(job));
        feeder.fill_window(); // start now, as Python does, not at the first next()
        return stream;
    }

    mutable std::mutex lifecycle_mutex_;
    State state_ = State::running;
    std::vector<detail::Feeder*> open_feeders_; // imap streams still reading input
    // Callbacks run one at a time, as in Python. Recursive because a callback may call
    // terminate(), which ends the queued calls (and runs their callbacks) on the same thread.
    std::recursive_mutex callback_mutex_;
    const bool caller_runs_chunks_; // PoolOptions::caller_runs_chunks (blocking calls help)
    const std::uint64_t fork_generation_ = detail::fork_generation(); // the owner's
    // On the heap, so that a forked child's copy can leave it undestroyed (see ~BasicPool).
    std::unique_ptr<Backend> backend_;
    const std::shared_ptr<detail::CancelRoute> cancel_route_ =
        std::make_shared<detail::CancelRoute>(static_cast<detail::JobCanceller&>(*this));
};

} // namespace mproc
