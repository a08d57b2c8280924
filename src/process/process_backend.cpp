// SPDX-License-Identifier: MIT
#include "mproc/detail/process_backend.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "dispatcher.hpp"
#include "fast_lane.hpp"
#include "fork_server.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/recorder.hpp"
#include "mproc/detail/resumer.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wait_helper.hpp"
#include "mproc/detail/wire/worker_loss.hpp"
#include "mproc/errors.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/this_worker.hpp"
#include "pool_start.hpp"
#include "process/channel.hpp"
#include "submission_queue.hpp"
#include "terminated_error.hpp"
#include "worker_failures.hpp"
#include "worker_state.hpp"

namespace mproc::detail {
namespace {

/// How long the I/O thread waits for the rest of a frame a worker has started to send: a worker
/// sends each frame in one go, so one that stops half-way is broken (or hostile).
constexpr timeval frame_stall_limit{5, 0};

// How long the I/O thread keeps polling without sleeping after it last had something to do,
// while no worker has a chunk. A caller that waits for each result before it submits the next
// (apply in a loop, a fork-join of small maps) submits again within microseconds; if the I/O
// thread slept meanwhile, its core went idle, and waking an idle core takes far longer than the
// round trip itself (on a virtual machine, whose halted CPU the host must reschedule, it takes
// longer than a whole apply). No worker needs the core while none has a chunk, so the spin
// takes nothing from the tasks; it yields between polls all the same.
constexpr Clock::duration io_idle_spin = std::chrono::microseconds(100);

// How long the I/O thread looks for an answer in a worker's fast lane (fast_lane.hpp) after it
// posted the request, before it sleeps in poll and has the worker wake it: about what the
// worker itself looks for its next request. A short task's answer is then taken without a
// system call on either side; a long task costs the I/O thread this much of a core, once.
constexpr Clock::duration io_lane_spin = std::chrono::microseconds(50);

} // namespace

class ProcessBackend::Impl {
  public:
    explicit Impl(ValidatedOptions options)
        : options_(std::move(options)), launcher_(make_launcher(options_)) {
        // Should this throw, the launcher's destructor kills and reaps whatever was started.
        for (std::size_t i = 0; i < options_.workers; ++i) {
            launcher_->request_worker(next_worker_id());
        }
        // Wait for every first worker, so that a refused fork throws from the constructor.
        for (std::size_t started = 0; started < options_.workers;) {
            WorkerLauncher::Event event = read_first_event(*launcher_, options_.start_method);
            if (event.kind == WorkerLauncher::Event::Kind::spawn_failed) {
                throw std::system_error(event.status, std::generic_category(), "fork");
            }
            if (event.kind == WorkerLauncher::Event::Kind::spawned) {
                adopt_worker(event);
                ++started;
            } else if (event.kind != WorkerLauncher::Event::Kind::standby_ready) {
                exit_statuses_.record(event);
            }
        }
        if (options_.start_method != StartMethod::fork) {
            for (const auto& worker : workers_) {
                await_hello(*worker);
            }
        }
        io_thread_ = std::thread(&Impl::run_io, this);
    }

    ~Impl() {
        terminate();
        join();
    }

    bool submit(ChunkBatch chunks) {
        const std::optional<std::size_t> depth = queue_.submit(chunks);
        if (depth) {
            recorder_.queue_depth_seen(*depth);
        }
        return depth.has_value();
    }
    Recorder& recorder() noexcept { return recorder_; }
    std::size_t queue_depth() { return queue_.size(); }
    void close() { queue_.close(); }

    bool cancel(Job& job) {
        if (!job.request_cancel(/*only_if_unstarted=*/false)) {
            return false;
        }
        std::deque<Chunk*> dropped = queue_.take_job(job);
        cancel_all(dropped, cancelled_call_error());
        queue_.wake(); // the I/O thread kills the workers running its chunks
        return true;
    }

    void terminate() {
        std::optional<std::deque<Chunk*>> dropped = queue_.terminate();
        if (!dropped) {
            return; // terminated before
        }
        MPROC_TRACE_EVENT("process backend terminating: %zu queued chunks dropped",
                          dropped->size());
        // The launcher kills the workers (it alone knows which pids are still theirs), from
        // here rather than from the I/O thread once it wakes: the teardown starts sooner, and
        // the I/O thread, seeing the queue terminating, settles every chunk it had
        // sent with PoolTerminated when their workers' channels close.
        launcher_->terminate_workers();
        cancel_all(*dropped, terminated_error());
        queue_.wake();
    }

    void join() {
        if (io_thread_.joinable()) {
            io_thread_.join();
        }
        resumer_.stop(); // every result has ended: the coroutines that awaited one go on
        // The server is reaped here rather than by the I/O thread as it ends: when the pool was
        // terminated, the server exits by itself as soon as it has reaped the workers, and
        // waiting for it on this thread spares one hand-off (server -> I/O thread -> caller)
        // at the end of every pool's life.
        launcher_->shut_down();
    }

  private:
    static void cancel_all(std::deque<Chunk*>& chunks, const std::exception_ptr& reason) {
        for (Chunk* chunk : chunks) {
            chunk->retries = 0;
            chunk->job->cancel_chunk(*chunk, reason);
        }
        chunks.clear();
    }

    void adopt_worker(const WorkerLauncher::Event& event) {
        auto worker = std::make_unique<WorkerProcess>();
        worker->id = event.worker_id;
        worker->pid = static_cast<pid_t>(event.pid);
        worker->fd = event.channel_fd;
        worker->server_generation = server_generation_;
        worker->lane = take_free_lane();
        recorder_.worker_started(worker->lane, static_cast<long>(worker->pid));
        MPROC_TRACE_EVENT("process worker %llu spawned as pid %d",
                          static_cast<unsigned long long>(worker->id), worker->pid);
        setsockopt(worker->fd, SOL_SOCKET, SO_RCVTIMEO, &frame_stall_limit,
                   sizeof(frame_stall_limit));
        const pid_t pid = worker->pid;
        workers_.push_back(std::move(worker));
        if (options_.worker_memory_limit != 0) {
            // Before its first task (tasks go only to workers that said hello, read later).
            if (const int refused = limit_address_space(pid, options_.worker_memory_limit)) {
                workers_.back()->stopping = true; // it must never take a task
                throw std::system_error(refused, std::generic_category(), "prlimit");
            }
        }
    }

    // ---- the I/O thread ------------------------------------------------------------------

    void run_io() {
        refuse_waits_on_this_thread(); // callbacks run here: a wait would wait for this thread
        resumer_.serve_this_thread();  // coroutines do not: they go on on the resumer's thread
        std::vector<pollfd> watched;
        std::vector<WorkerProcess*> polled_workers; // those of watched, in its order
        Clock::time_point last_busy = Clock::now(); // news or an event last seen
        for (;;) {
            const auto [closed, terminating, news] = queue_.look();
            if (news) {
                last_busy = Clock::now();
            }
            if (!launcher_alive_) {
                fail_queue_if_no_worker_left(); // chunks submitted since the pool broke
            }
            if (!terminating) {
                dispatcher_.dispatch(workers_);
                kill_workers_of_cancelled_calls();
            }
            if (closed) {
                stop_idle_workers();
                // Once terminating, a worker still being started is not waited for: the server
                // kills it as it ends, or dies with it (shut_down).
                if (workers_.empty() && (pending_spawns_ == 0 || terminating)) {
                    break;
                }
            }
            watched.clear();
            watched.push_back({queue_.wake_fd(), POLLIN, 0});
            // The launcher polled, if any: its server may be lost or replaced before the results
            // are read (kill_overdue_workers), and a result is only for the server polled.
            const PolledServer polled_server{launcher_alive_, server_generation_};
            if (polled_server.polled) {
                watched.push_back({launcher_->fd(), POLLIN, 0});
            }
            polled_workers.clear();
            for (const auto& worker : workers_) {
                watched.push_back({worker->fd, POLLIN, 0});
                polled_workers.push_back(worker.get());
            }
            const auto now = Clock::now();
            bool spin = (!closed && no_chunk_out() && now - last_busy < io_idle_spin) ||
                        lane_answer_due(now);
            // Asleep, it must be woken by a worker that posts in its lane: unless one just did.
            const bool sleeps_on_lanes = !spin && sleep_on_lanes();
            spin = spin || (!sleeps_on_lanes && any_lane_awaited());
            if (!queue_.ready_to_sleep(spin)) {
                wake_on_lanes(sleeps_on_lanes);
                continue; // something came since the top of the loop: see to it first
            }
            const int polled = ::poll(watched.data(), watched.size(), spin ? 0 : poll_timeout_ms());
            wake_on_lanes(sleeps_on_lanes);
            kill_overdue_workers();
            if (polled > 0) {
                last_busy = Clock::now();
                handle_polled(watched, polled_server, polled_workers);
            }
            // After the sockets: a worker lost here is no longer among those polled.
            if (take_lane_answers()) {
                last_busy = Clock::now();
            } else if (polled <= 0 && spin) {
                std::this_thread::yield(); // nothing yet (spinning)
            }
        }
        MPROC_TRACE_EVENT("process backend: every worker is gone");
    }

    /// Sees to what poll found in `watched`: the wake-up call, a launcher event (when the
    /// launcher was polled and serves still with the server polled), then the workers of
    /// `polled_workers` (whose results follow, in its order).
    struct PolledServer {
        bool polled;
        std::uint64_t generation;
    };

    void handle_polled(const std::vector<pollfd>& watched, PolledServer polled_server,
                       const std::vector<WorkerProcess*>& polled_workers) {
        std::size_t next = 0;
        if (watched[next++].revents != 0) {
            queue_.drain_wake();
        }
        if (polled_server.polled && watched[next++].revents != 0 && launcher_alive_ &&
            server_generation_ == polled_server.generation) {
            handle_launcher_event();
        }
        // Collect first: handling a worker may remove it from workers_. Only the workers that
        // were polled: one adopted just above (handle_launcher_event) has no poll result, and
        // reading its channel now could block (up to frame_stall_limit) before it wrote.
        readable_.clear();
        for (WorkerProcess* worker : polled_workers) {
            if (watched[next++].revents != 0) {
                readable_.push_back(worker);
            }
        }
        for (WorkerProcess* worker : readable_) {
            handle_readable(*worker);
        }
    }

    void stop_idle_workers() {
        if (!queue_.empty()) {
            return;
        }
        for (const auto& worker : workers_) {
            if (worker->ready && !worker->stopping && worker->window.empty()) {
                worker->stop();
            }
        }
    }

    void handle_launcher_event() {
        WorkerLauncher::Event event;
        try {
            event = launcher_->read_event();
        } catch (const std::system_error&) {
            // The server died (killed from outside, or it ended after terminate_workers): its
            // workers die with it (they asked the kernel to be killed when their parent goes).
            launcher_failed();
            return;
        }
        switch (event.kind) {
        case WorkerLauncher::Event::Kind::spawned:
            --pending_spawns_;
            try {
                adopt_worker(event);
            } catch (const std::system_error&) {
                kill_worker(*workers_.back()); // no limit could be set: replaced when it ends
            }
            break;
        case WorkerLauncher::Event::Kind::spawn_failed:
            --pending_spawns_;
            fail_queue_if_no_worker_left();
            break;
        case WorkerLauncher::Event::Kind::exited:
        case WorkerLauncher::Event::Kind::exited_unseen:
            exit_statuses_.record(event);
            break;
        case WorkerLauncher::Event::Kind::standby_ready:
            break;
        }
    }

    /// Handles every frame the worker has sent (one recv may bring several), after the answer
    /// it posted in its lane, if any: that one came first.
    void handle_readable(WorkerProcess& worker) {
        if (!take_lane_answer(worker)) {
            return; // the worker is lost
        }
        do {
            if (!handle_frame(worker)) {
                return; // the worker is lost (and forgotten)
            }
        } while (worker.answers.has_buffered_bytes());
    }

    /// Handles one frame from the worker; false when the worker was lost instead.
    bool handle_frame(WorkerProcess& worker) {
        FrameKind kind{};
        std::span<const std::byte> payload;
        bool received = false;
        std::exception_ptr error;
        try {
            received = worker.answers.next(worker.fd, kind, payload);
        } catch (...) {
            error = std::current_exception(); // garbage on the channel: never trusted
        }
        if (!received) {
            lose(worker, error);
            return false;
        }
        WireReader in(payload.data(), payload.size());
        if (kind == FrameKind::lane_posted) {
            return take_lane_answer(worker);
        }
        // An answer on the socket comes after the lane's, if the front chunk was posted there
        // and answered there; or it is that chunk's answer, too big for the lane.
        if (is_answer(kind) && !take_lane_answer(worker)) {
            return false;
        }
        if (!is_answer(kind)) {
            error = worker.take_notice(kind, in);
        } else if (worker.window.empty() || worker.crash || !worker.may_answer(kind)) {
            error = std::make_exception_ptr(WireError("mproc: unexpected frame from worker"));
        } else {
            return handle_answer(worker, kind, in, worker.answers.run_ns());
        }
        if (error) {
            lose(worker, error);
            return false;
        }
        return true;
    }

    /// Takes the answer the worker posted in its lane, if its front chunk was posted there and
    /// it has; false when the worker was lost instead (the answer cannot be true).
    bool take_lane_answer(WorkerProcess& worker) {
        std::exception_ptr error;
        try {
            if (!worker.take_lane_answer(lane_answer_)) {
                return true;
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            lose(worker, error);
            return false;
        }
        WireReader in(lane_answer_.payload.data(), lane_answer_.payload.size());
        return handle_answer(worker, lane_answer_.kind, in, lane_answer_.run_ns);
    }

    /// Takes every answer posted in a lane; whether there was any.
    bool take_lane_answers() {
        posted_.clear();
        for (const auto& worker : workers_) {
            if (worker->awaits_lane_answer() && worker->fast_lane->answer_posted()) {
                posted_.push_back(worker.get());
            }
        }
        for (WorkerProcess* worker : posted_) {
            take_lane_answer(*worker); // (taking one never loses another)
        }
        return !posted_.empty();
    }

    /// Whether an answer is awaited in a lane whose request was posted less than io_lane_spin
    /// ago: then the I/O thread keeps looking rather than sleep (not on a single CPU, where the
    /// worker needs it).
    bool lane_answer_due(Clock::time_point now) const noexcept {
        return looks_in_lanes_ && std::ranges::any_of(workers_, [&](const auto& worker) {
                   return worker->awaits_lane_answer() &&
                          now - worker->window.front().sent < io_lane_spin;
               });
    }

    bool any_lane_awaited() const noexcept {
        return std::ranges::any_of(workers_,
                                   [](const auto& worker) { return worker->awaits_lane_answer(); });
    }

    /// Tells every worker whose lane answer is awaited that this thread sleeps; false (and
    /// none is told) if an answer was posted meanwhile.
    bool sleep_on_lanes() {
        for (const auto& worker : workers_) {
            if (worker->awaits_lane_answer() && !worker->fast_lane->sleep_on_answers()) {
                wake_on_lanes(true);
                return false;
            }
        }
        return true;
    }

    void wake_on_lanes(bool slept) {
        if (!slept) {
            return;
        }
        for (const auto& worker : workers_) {
            if (worker->fast_lane) {
                worker->fast_lane->awake_on_answers();
            }
        }
    }

    /// Settles the chunk the worker answered (`run_ns`: how long it ran there), then gives it
    /// more; false when the worker was lost instead.
    bool handle_answer(WorkerProcess& worker, FrameKind kind, WireReader& in,
                       std::uint32_t run_ns) {
        record_front_chunk(worker,
                           kind == FrameKind::failed ? ChunkEnd::failed : ChunkEnd::finished,
                           in.remaining());
        Chunk* chunk = worker.answered(run_ns);
        // Held until the window is refilled below: the dispatcher compares jobs by address,
        // which only a live job keeps unique.
        JobRef<Job> answered_job(chunk->job);
        answered_job->acquire();
        if (kind == FrameKind::done_lent) {
            in.read_lent_from(worker.pid);
        }
        if (!worker.settle_answer(*chunk, kind, in)) {
            lose(worker, std::make_exception_ptr(
                             WireError("mproc: worker sent a response that does not decode")));
            return false;
        }
        if (kind == FrameKind::done_lent) {
            worker.release_lent(); // sent by the refill's flush below
        }
        // Refilled after the chunk is settled, not before: its callbacks may terminate the
        // pool, and then nothing more may start.
        dispatcher_.refill(worker, workers_);
        if (worker.window.empty()) {
            worker.pipeline.forget_job(); // its job may end now: never compared again
        }
        if (options_.max_tasks_per_child != 0 &&
            worker.tasks_done >= options_.max_tasks_per_child) {
            MPROC_TRACE_EVENT("process worker %llu retired after %zu tasks",
                              static_cast<unsigned long long>(worker.id), worker.tasks_done);
            worker.stop(); // replaced when its end of stream arrives
        }
        return true;
    }

    /// The worker's channel closed (it exited, was killed, or sent garbage, `untrusted`): end or
    /// re-queue its chunks, forget it, and start a replacement if work may still need one.
    void lose(WorkerProcess& worker, std::exception_ptr untrusted) {
        if (untrusted) {
            kill_worker(worker); // it may still be alive, and is never to be believed again
        }
        launcher_->channel_closed(worker.pid);
        const bool terminating = queue_.terminating();
        if (!untrusted) {
            settle_lane_answer(worker);
            settle_held_answers(worker);
        }
        if (!worker.stopping || !worker.window.empty()) {
            MPROC_TRACE_EVENT("process worker %llu (pid %d) lost",
                              static_cast<unsigned long long>(worker.id), worker.pid);
        }
        record_loss(worker, terminating);
        dispatcher_.requeue(
            settle_lost_window(worker, {.terminating = terminating,
                                        .retry_allowed = launcher_alive_,
                                        .max_retries = options_.max_retries,
                                        .end = [&] { return end_of(worker, untrusted); }}));
        const bool replace = !terminating && !queue_.closed_and_empty() && launcher_alive_;
        std::erase_if(workers_, [&](const auto& candidate) { return candidate.get() == &worker; });
        if (replace) {
            request_worker();
        }
        fail_queue_if_no_worker_left();
    }

    /// The lowest worker slot no live worker holds (a replacement takes its predecessor's).
    std::size_t take_free_lane() {
        for (std::size_t lane = 0; lane < lane_taken_.size(); ++lane) {
            if (!lane_taken_[lane]) {
                lane_taken_[lane] = true;
                return lane;
            }
        }
        return 0; // (never: a replacement is asked for only once its predecessor is gone)
    }

    /// Tells the recorder how the chunk at the front of the worker's window ended (before it
    /// is settled, which may free it): it ran from when it was sent, or from the worker's
    /// previous answer if that came later (the worker runs its window one chunk at a time).
    void record_front_chunk(WorkerProcess& worker, ChunkEnd end, std::size_t answer_bytes) {
        const SentChunk& sent = worker.window.front();
        const std::int64_t now = recorder_.now_ns();
        recorder_.chunk_ended(
            worker.lane, Recorder::facts_of(*sent.chunk), end,
            {.start_ns = std::max(recorder_.ns_at(sent.sent), worker.last_answer_ns),
             .end_ns = now,
             .bytes_in = sent.frame_bytes,
             .bytes_out = answer_bytes});
        worker.last_answer_ns = now;
    }

    /// The worker's channel closed: its running chunk (if any) ended with it, and its slot is
    /// free for a replacement.
    void record_loss(WorkerProcess& worker, bool terminating) {
        const bool retired = options_.max_tasks_per_child != 0 &&
                             worker.tasks_done >= options_.max_tasks_per_child &&
                             worker.window.empty();
        if (!worker.window.empty()) {
            record_front_chunk(worker,
                               terminating || worker.cancelled ? ChunkEnd::cancelled
                               : worker.timed_out              ? ChunkEnd::timed_out
                                                               : ChunkEnd::lost,
                               0);
        }
        if (retired) {
            recorder_.worker_ended(worker.lane, TimelineEvent::Kind::worker_retired);
        } else if (terminating || (worker.stopping && worker.window.empty())) {
            recorder_.worker_stopped(worker.lane); // the pool is ending
        } else {
            recorder_.worker_ended(worker.lane, TimelineEvent::Kind::worker_lost);
        }
        lane_taken_[worker.lane] = false;
    }

    /// What is known of how a lost worker ended. Its wait status comes from the launcher, which
    /// may report it just after the end of stream (or report its server lost meanwhile).
    WorkerEnd end_of(const WorkerProcess& worker, const std::exception_ptr& untrusted) {
        WorkerEnd end;
        end.status = exit_statuses_.take(worker.pid, [&] {
            // Read live: handling an event below may find the server lost (and replaced, or
            // not replaceable), and a lost server is not to be polled again.
            if (!launcher_alive_ || worker.server_generation != server_generation_) {
                return false;
            }
            pollfd server{launcher_->fd(), POLLIN, 0};
            if (::poll(&server, 1, 2) > 0) {
                handle_launcher_event();
            }
            return true;
        });
        if (worker.server_generation != server_generation_) {
            end.died_with = lost_server_; // its parent-death signal killed it
        }
        end.untrusted = untrusted;
        return end;
    }

    void kill_worker(WorkerProcess& worker) {
        if (launcher_alive_) {
            try {
                launcher_->kill_worker(worker.pid);
            } catch (const std::system_error&) {
                launcher_failed(); // and with it, its workers
            }
        }
    }

    /// Asks the launcher for one more worker, through a replacement server if it is gone.
    void request_worker() {
        while (launcher_alive_) {
            try {
                launcher_->request_worker(next_worker_id());
                ++pending_spawns_;
                return;
            } catch (const std::system_error&) {
                launcher_failed();
            }
        }
    }

    /// Whether no worker has a chunk (sent and not answered).
    bool no_chunk_out() const noexcept {
        return std::ranges::all_of(workers_,
                                   [](const auto& worker) { return worker->window.empty(); });
    }

    /// Milliseconds until the nearest task deadline (rounded up), or -1 for none.
    int poll_timeout_ms() const {
        auto nearest = Clock::time_point::max();
        for (const auto& worker : workers_) {
            if (!worker->window.empty() && !worker->timed_out) {
                nearest = std::min(nearest, worker->deadline);
            }
        }
        if (nearest == Clock::time_point::max()) {
            return -1;
        }
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(nearest - Clock::now());
        return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
    }

    /// Kills the workers whose task ran past its deadline; their end of stream ends the task
    /// with TaskTimeout (lose()).
    void kill_overdue_workers() {
        const auto now = Clock::now();
        for (const auto& worker : workers_) {
            if (!worker->window.empty() && !worker->timed_out && worker->deadline <= now) {
                MPROC_TRACE_EVENT("process worker %llu (pid %d) past its task's deadline: killed",
                                  static_cast<unsigned long long>(worker->id), worker->pid);
                worker->timed_out = true;
                kill_worker(*worker);
            }
        }
    }

    /// Kills the workers running a chunk of a cancelled call; their end of stream ends the chunk
    /// with mproc::Cancelled (lose()). A chunk of one waiting behind another call's running
    /// chunk is killed once it runs (this is looked at after every wake-up); its chunks still
    /// queued never start (the dispatcher drops them).
    void kill_workers_of_cancelled_calls() {
        for (const auto& worker : workers_) {
            if (!worker->window.empty() && !worker->timed_out && !worker->cancelled &&
                worker->window.front().chunk->job->cancelled()) {
                MPROC_TRACE_EVENT("process worker %llu (pid %d) runs a cancelled call: killed",
                                  static_cast<unsigned long long>(worker->id), worker->pid);
                worker->cancelled = true;
                kill_worker(*worker);
            }
        }
    }

    /// The launcher's process (the fork server) is gone, and its workers with it: its standby
    /// takes over, and the workers asked of the lost one are asked again. Without a standby the
    /// pool is broken: no worker will ever be started, and no answer to a request for one will
    /// come, so none may be counted as pending (the loop would wait for it for ever).
    void launcher_failed() {
        const std::optional<WorkerLauncher::LostServer> lost = launcher_->replace_lost_server();
        const std::string how =
            lost && lost->status ? "; " + describe_exit(*lost->status) : std::string();
        const std::size_t unanswered = std::exchange(pending_spawns_, 0);
        if (!lost) {
            MPROC_TRACE_EVENT("process backend: the fork server is lost and cannot be replaced");
            launcher_alive_ = false;
            broken_ = std::make_exception_ptr(PoolBroken(
                "mproc: the pool's fork server died and no new one could be started: the pool "
                "is broken"));
            fail_queue_if_no_worker_left();
            return;
        }
        ++server_generation_;
        lost_server_ = "the pool's fork server (pid " + std::to_string(lost->pid) + how + ")";
        MPROC_TRACE_EVENT("process backend: fork server %d lost%s; a new one serves",
                          static_cast<int>(lost->pid), how.c_str());
        for (std::size_t i = 0; i < unanswered && launcher_alive_; ++i) {
            request_worker();
        }
    }

    /// With no worker and none coming, queued chunks could wait for ever: end them. In a broken
    /// pool the workers left are dying with their server: nothing waits for them.
    void fail_queue_if_no_worker_left() {
        if (!broken_ && (!workers_.empty() || pending_spawns_ != 0)) {
            return;
        }
        std::deque<Chunk*> stranded = queue_.take_all();
        if (!stranded.empty()) {
            cancel_all(stranded,
                       broken_ ? broken_
                               : std::make_exception_ptr(WorkerLost(
                                     "mproc: no worker process could be started for this task")));
        }
    }

    const ValidatedOptions options_;
    const std::unique_ptr<WorkerLauncher> launcher_; // fork server, or spawner
    SubmissionQueue queue_;                          // the rest belongs to the I/O thread

    std::vector<std::unique_ptr<WorkerProcess>> workers_;
    std::size_t pending_spawns_ = 0;
    bool launcher_alive_ = true;
    std::exception_ptr broken_; // PoolBroken, once the launcher is lost for good
    // Counts the fork servers lost and replaced; lost_server_ says how the last one ended.
    std::uint64_t server_generation_ = 0;
    std::string lost_server_;
    ExitStatuses exit_statuses_;
    std::vector<WorkerProcess*> readable_; // handle_polled's (kept: no allocation)
    std::vector<WorkerProcess*> posted_;   // take_lane_answers' (kept: no allocation)
    FastLaneMessage lane_answer_;          // take_lane_answer's (kept: no allocation)
    const bool looks_in_lanes_ = cpu_count() > 1;
    Dispatcher dispatcher_{options_, queue_, server_generation_};
    Recorder recorder_{"mproc::Pool", options_.workers, options_};
    std::vector<bool> lane_taken_ = std::vector<bool>(options_.workers, false); // by live workers
    Resumer resumer_; // resumes coroutines whose result the I/O thread ended
    std::thread io_thread_;
};

ProcessBackend::ProcessBackend(ValidatedOptions options)
    : worker_count_(options.workers), impl_(std::make_unique<Impl>(std::move(options))) {}

ProcessBackend::~ProcessBackend() = default;

bool ProcessBackend::submit(ChunkBatch chunks) { return impl_->submit(chunks); }
bool ProcessBackend::cancel(Job& job) { return impl_->cancel(job); }
void ProcessBackend::close() { impl_->close(); }
void ProcessBackend::terminate() { impl_->terminate(); }
void ProcessBackend::join() { impl_->join(); }
Recorder& ProcessBackend::recorder() noexcept { return impl_->recorder(); }
std::size_t ProcessBackend::queue_depth() { return impl_->queue_depth(); }

} // namespace mproc::detail
