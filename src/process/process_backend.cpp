#include "mproc/detail/process_backend.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fork_server.hpp"
#include "held_answers.hpp"
#include "mproc/detail/channel.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/crash_report.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/remote_exception.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/errors.hpp"
#include "mproc/this_worker.hpp"
#include "spawn.hpp"
#include "standard_streams.hpp"

namespace mproc::detail {
namespace {

/// A chunk sent to a worker and not yet answered.
struct SentChunk {
    Chunk* chunk;
    std::size_t frame_bytes; // its request, header included
};

/// One worker process as the caller sees it. Owned and touched by the I/O thread only.
struct WorkerProcess {
    std::uint64_t id = 0;
    pid_t pid = -1;
    std::uint64_t server_generation = 0; // the fork server it came from (see launcher_failed)
    int fd = -1;
    bool ready = false;    // its hello arrived
    bool stopping = false; // told to stop (retired, or the pool is closing)
    // The chunks sent to it and not yet answered, in the order it runs (and answers) them: the
    // front one is running, the others wait in its socket (a pipelined window).
    std::deque<SentChunk> window;
    std::size_t waiting_bytes = 0;     // the requests of the chunks behind the front one
    bool window_refused_bytes = false; // a request too big to wait there: none until an answer
    bool refilling = false;            // dispatch_queued is filling its window up
    std::size_t tasks_done = 0;
    Clock::time_point deadline = Clock::time_point::max(); // of the front chunk
    bool timed_out = false;                                // killed for passing it
    std::optional<CrashReport> crash;         // its last words, from its fatal-signal handler
    std::vector<std::byte> finished_outcomes; // sent with them: items done before the crash
    FrameReader answers;                      // its frames, read a batch at a time
    std::optional<HeldAnswersView> held;      // where it holds answers back, once it said
    WireWriter outbox;                        // requests for it, sent together by flush()

    WorkerProcess() { outbox.allow_borrowing(); } // flush() sends it in the turn it was filled

    // How deep its window may be (window_limit()): measured on the chunks of one job, the one
    // of the back of its window, which therefore stays alive while the figures are used.
    const Job* measured_job = nullptr;
    std::size_t short_runs = 0; // its chunks in a row that ran under queue_behind_below
    Clock::duration service{0}; // their time per chunk (as the worker timed them), averaged

    ~WorkerProcess() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

/// How long the I/O thread waits for the rest of a frame a worker has started to send: a worker
/// sends each frame in one go, so one that stops half-way is broken (or hostile).
constexpr timeval frame_stall_limit{5, 0};

// The pipelined window. Every chunk costs a round trip through the I/O thread (10-20 us on 2
// cores); a worker whose chunks take less than that would idle most of the time. So short
// chunks are queued at their worker ahead of time, enough to cover this much of its time:
constexpr Clock::duration latency_to_hide = std::chrono::microseconds(30);
// ... but never more chunks than this beyond the running one;
constexpr std::size_t max_waiting_chunks = 32;
// ... nor more request bytes than this beyond the running one: they must fit in the socket's
// buffer, so that the I/O thread never blocks writing to a worker that is itself blocked
// writing an answer the I/O thread has not read yet.
constexpr std::size_t max_waiting_bytes = std::size_t{32} << 10;
// Chunks longer than that, up to this long, have one chunk queued behind the running one: the
// round trip costs such a chunk 5-70% of its time (30-75 us measured on this project's 2-core
// VMs), and one chunk waiting costs a call at most one such chunk's time at its end (a worker
// that has run out while another still has one waiting). Longer chunks run alone.
constexpr Clock::duration queue_behind_below = std::chrono::milliseconds(1);
// ... and only once this many chunks of the job in a row ran below that: a chunk queued at a
// worker runs even if nobody wants its result any more (an imap left early), so one short
// chunk before long ones must not fill a window.
constexpr std::size_t min_short_runs = 4;

// How long the I/O thread keeps polling without sleeping after it last had something to do,
// while no worker has a chunk. A caller that waits for each result before it submits the next
// (apply in a loop, a fork-join of small maps) submits again within microseconds; if the I/O
// thread slept meanwhile, its core went idle, and waking an idle core takes far longer than the
// round trip itself (about 35 us of a 30 us apply on this project's 2-core VM, where a virtual
// CPU that halts must be rescheduled by the host). No worker needs the core while none has a
// chunk, so the spin takes nothing from the tasks; it yields between polls all the same.
constexpr Clock::duration io_idle_spin = std::chrono::microseconds(100);

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int signal = WTERMSIG(status);
        const char* name = sigdescr_np(signal);
        return "killed by signal " + std::to_string(signal) +
               (name ? std::string(" (") + name + ")" : "");
    }
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return "ended";
}

} // namespace

class ProcessBackend::Impl {
  public:
    explicit Impl(ValidatedOptions options)
        : options_(std::move(options)), launcher_(make_launcher(options_)),
          wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (wake_fd_ < 0) {
            throw std::system_error(errno, std::generic_category(), "eventfd");
        }
        try {
            for (std::size_t i = 0; i < options_.workers; ++i) {
                launcher_->request_worker(next_worker_id());
            }
            // Wait for every first worker, so that a refused fork throws from the constructor.
            for (std::size_t started = 0; started < options_.workers;) {
                WorkerLauncher::Event event = read_first_event();
                if (event.kind == WorkerLauncher::Event::Kind::spawn_failed) {
                    throw std::system_error(event.status, std::generic_category(), "fork");
                }
                if (event.kind == WorkerLauncher::Event::Kind::spawned) {
                    adopt_worker(event);
                    ++started;
                } else if (event.kind != WorkerLauncher::Event::Kind::standby_ready) {
                    record_exit(event);
                }
            }
            if (options_.start_method != StartMethod::fork) {
                await_first_hellos();
            }
        } catch (...) {
            ::close(wake_fd_);
            throw; // the launcher's destructor kills and reaps whatever was started
        }
        io_thread_ = std::thread(&Impl::run_io, this);
    }

    ~Impl() {
        terminate();
        join();
        ::close(wake_fd_);
    }

    bool submit(ChunkBatch chunks) {
        bool asleep;
        {
            std::lock_guard lock(mutex_);
            if (closed_) {
                return false;
            }
            chunks.append_to(queue_);
            asleep = tell_io_thread_locked();
        }
        if (asleep) {
            wake();
        }
        return true;
    }

    void close() {
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

    void terminate() {
        std::deque<Chunk*> dropped;
        {
            std::lock_guard lock(mutex_);
            if (terminating_) {
                return;
            }
            closed_ = terminating_ = true;
            dropped.swap(queue_);
        }
        MPROC_TRACE_EVENT("process backend terminating: %zu queued chunks dropped", dropped.size());
        // The launcher kills the workers (it alone knows which pids are still theirs), from
        // here rather than from the I/O thread once it wakes: the teardown starts sooner, and
        // the I/O thread, reading terminating_ under the mutex, settles every chunk it had
        // sent with PoolTerminated when their workers' channels close.
        launcher_->terminate_workers();
        cancel_all(dropped, terminated_error());
        wake();
    }

    void join() {
        if (io_thread_.joinable()) {
            io_thread_.join();
        }
        // The server is reaped here rather than by the I/O thread as it ends: when the pool was
        // terminated, the server exits by itself as soon as it has reaped the workers, and
        // waiting for it on this thread spares one hand-off (server -> I/O thread -> caller)
        // at the end of every pool's life.
        launcher_->shut_down();
    }

  private:
    static std::unique_ptr<WorkerLauncher> make_launcher(const ValidatedOptions& options) {
        refuse_pool_in_unserved_worker();
        reserve_standard_streams(); // before the launcher opens its first descriptor
        if (options.start_method == StartMethod::spawn) {
            return std::make_unique<SpawnLauncher>(options.initializer);
        }
        return std::make_unique<ForkServer>(options.start_method, options.initializer);
    }

    static constexpr const char* unserved_worker_hint =
        "mproc: a worker process of the pool ended before it started serving; with the spawn and "
        "forkserver start methods, main() must call mproc::serve_if_worker(argc, argv) first";

    WorkerLauncher::Event read_first_event() {
        try {
            return launcher_->read_event();
        } catch (const std::system_error&) {
            if (options_.start_method == StartMethod::forkserver) {
                throw Error(unserved_worker_hint); // the re-executed server never served
            }
            throw;
        }
    }

    /// A re-executed worker proves it runs the worker loop by saying hello; one that runs the
    /// program's own main instead never will.
    void await_first_hellos() {
        for (const auto& worker : workers_) {
            FrameKind kind{};
            std::span<const std::byte> payload;
            pollfd channel{worker->fd, POLLIN, 0};
            if (::poll(&channel, 1, 60'000) <= 0 ||
                !worker->answers.next(worker->fd, kind, payload) || kind != FrameKind::hello) {
                throw Error(unserved_worker_hint);
            }
            worker->ready = true;
        }
    }

    static std::exception_ptr terminated_error() {
        return std::make_exception_ptr(
            PoolTerminated("mproc: the pool was terminated before this task finished"));
    }

    static void cancel_all(std::deque<Chunk*>& chunks, const std::exception_ptr& reason) {
        for (Chunk* chunk : chunks) {
            chunk->retries = 0;
            chunk->job->cancel_chunk(*chunk, reason);
        }
        chunks.clear();
    }

    /// Called with mutex_ held after changing what it guards. The I/O thread looks again before
    /// it sleeps, so only a thread that finds it asleep (true) pays for the system call that
    /// wakes it.
    bool tell_io_thread_locked() noexcept {
        if (io_asleep_) {
            io_asleep_ = false;
            return true;
        }
        news_for_io_ = true;
        return false;
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    }

    void adopt_worker(const WorkerLauncher::Event& event) {
        auto worker = std::make_unique<WorkerProcess>();
        worker->id = event.worker_id;
        worker->pid = static_cast<pid_t>(event.pid);
        worker->fd = event.channel_fd;
        worker->server_generation = server_generation_;
        MPROC_TRACE_EVENT("process worker %llu spawned as pid %d",
                          static_cast<unsigned long long>(worker->id), worker->pid);
        setsockopt(worker->fd, SOL_SOCKET, SO_RCVTIMEO, &frame_stall_limit,
                   sizeof(frame_stall_limit));
        const pid_t pid = worker->pid;
        workers_.push_back(std::move(worker));
        if (options_.worker_memory_limit != 0) {
            // Before its first task (tasks go only to workers that said hello, read later).
            const rlimit limit{options_.worker_memory_limit, options_.worker_memory_limit};
            if (prlimit(pid, RLIMIT_AS, &limit, nullptr) != 0) {
                workers_.back()->stopping = true; // it must never take a task
                throw std::system_error(errno, std::generic_category(), "prlimit");
            }
        }
    }

    // ---- the I/O thread ------------------------------------------------------------------

    void run_io() {
        std::vector<pollfd> watched;
        std::vector<WorkerProcess*> polled_workers; // those of watched, in its order
        std::vector<WorkerProcess*> readable;
        Clock::time_point last_busy = Clock::now(); // news or an event last seen
        for (;;) {
            bool terminating;
            bool closed;
            {
                std::lock_guard lock(mutex_);
                terminating = terminating_;
                closed = closed_;
                if (news_for_io_) {
                    last_busy = Clock::now();
                }
                news_for_io_ = false;
                io_asleep_ = false;
            }
            if (!launcher_alive_) {
                fail_queue_if_no_worker_left(); // chunks submitted since the pool broke
            }
            if (!terminating) {
                dispatch_queued();
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
            watched.push_back({wake_fd_, POLLIN, 0});
            if (launcher_alive_) {
                watched.push_back({launcher_->fd(), POLLIN, 0});
            }
            polled_workers.clear();
            for (const auto& worker : workers_) {
                watched.push_back({worker->fd, POLLIN, 0});
                polled_workers.push_back(worker.get());
            }
            const bool spin = !closed && no_chunk_out() && Clock::now() - last_busy < io_idle_spin;
            {
                std::lock_guard lock(mutex_);
                if (news_for_io_) {
                    continue; // something came since the top of the loop: see to it first
                }
                io_asleep_ = !spin; // a spinning thread sees news without the wake-up call
            }
            const int polled = ::poll(watched.data(), watched.size(), spin ? 0 : poll_timeout_ms());
            kill_overdue_workers();
            if (polled <= 0) {
                if (spin) {
                    std::this_thread::yield();
                }
                continue; // nothing yet (spinning), a deadline passed, or EINTR
            }
            last_busy = Clock::now();
            std::size_t next = 0;
            if (watched[next++].revents != 0) {
                std::uint64_t count;
                [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof(count));
            }
            if (launcher_alive_ && watched[next++].revents != 0) {
                handle_launcher_event();
            }
            // Collect first: handling a worker may remove it from workers_. Only the workers that
            // were polled: one adopted just above (handle_launcher_event) has no poll result,
            // and reading its channel now could block (up to frame_stall_limit) before it wrote.
            readable.clear();
            for (WorkerProcess* worker : polled_workers) {
                if (watched[next++].revents != 0) {
                    readable.push_back(worker);
                }
            }
            for (WorkerProcess* worker : readable) {
                handle_readable(*worker);
            }
        }
        MPROC_TRACE_EVENT("process backend: every worker is gone");
    }

    /// Gives every idle worker a chunk, while there are chunks; then tops up the windows of
    /// the workers whose chunks are short (breadth first: a window grows only when no worker is
    /// idle).
    void dispatch_queued() {
        for (const auto& worker : workers_) {
            if (worker->window.empty() && may_take(*worker) && !take_queued(*worker, false) &&
                worker->ready) {
                break; // the queue is empty (a worker not ready yet may refuse a timed chunk)
            }
        }
        for (const auto& worker : workers_) {
            worker->refilling = needs_refill(*worker);
        }
        for (bool grown = true; grown;) {
            grown = false;
            for (const auto& worker : workers_) {
                worker->refilling =
                    worker->refilling && has_room_behind(*worker) && take_queued(*worker, true);
                grown = grown || worker->refilling;
            }
        }
        for (const auto& worker : workers_) {
            flush(*worker);
        }
    }

    /// Whether the worker may be given a chunk. Also before its hello: the request waits in its
    /// socket while it starts, so the first task of a new worker (of a new pool) does not wait
    /// a round trip more for the hello to be read here (take_queued keeps timed chunks back).
    bool may_take(const WorkerProcess& worker) const noexcept {
        // A worker of a lost server is dying with it (its parent-death signal).
        return !worker.stopping && worker.server_generation == server_generation_ &&
               (options_.max_tasks_per_child == 0 ||
                worker.tasks_done + worker.window.size() < options_.max_tasks_per_child);
    }

    /// Whether a chunk may be queued behind the worker's running one now.
    bool has_room_behind(const WorkerProcess& worker) const noexcept {
        return !worker.window.empty() && !worker.window_refused_bytes && may_take(worker) &&
               worker.window.size() < window_limit(worker);
    }

    /// Whether the worker's window has run down to half of what it may hold: then it is filled
    /// up again, in one send. Topping it up chunk by chunk as they come would cost a system
    /// call on each side per chunk; half a window still covers latency_to_hide / 2.
    bool needs_refill(const WorkerProcess& worker) const noexcept {
        return has_room_behind(worker) &&
               worker.window.size() - 1 <= (window_limit(worker) - 1) / 2;
    }

    /// How many chunks the worker's window may hold: enough of the short chunks of
    /// worker.measured_job to cover latency_to_hide; two for chunks under queue_behind_below;
    /// one for longer or unmeasured ones.
    static std::size_t window_limit(const WorkerProcess& worker) noexcept {
        if (worker.short_runs < min_short_runs) {
            return 1;
        }
        if (worker.service >= latency_to_hide) {
            return 2;
        }
        const auto chunks =
            (latency_to_hide + worker.service - Clock::duration{1}) / worker.service;
        return 1 + std::min<std::size_t>(max_waiting_chunks, static_cast<std::size_t>(chunks));
    }

    std::chrono::nanoseconds time_limit(const Chunk& chunk) const noexcept {
        const auto own = chunk.job->task_timeout();
        return own.count() != 0 ? own : options_.task_timeout;
    }

    /// Moves the chunk at the front of the queue into the worker's window and outbox; with
    /// `behind`, only if it may wait behind the worker's running chunk: a chunk of the job
    /// measured there (whose chunk at the back of the window keeps it alive, so the comparison
    /// is exact) without a time limit (a time limit counts from the start of the chunk, which
    /// the caller only knows for the front one). False when no chunk was moved.
    bool take_queued(WorkerProcess& worker, bool behind) {
        for (;;) {
            Chunk* chunk;
            {
                std::lock_guard lock(mutex_);
                if (queue_.empty()) {
                    return false;
                }
                chunk = queue_.front();
                if (behind &&
                    (chunk->job != worker.measured_job || time_limit(*chunk).count() != 0)) {
                    return false;
                }
                if (!worker.ready && time_limit(*chunk).count() != 0) {
                    // Its time limit counts from when it is sent: only to a worker that runs.
                    return false;
                }
                queue_.pop_front();
            }
            switch (add_to_outbox(worker, chunk, behind)) {
            case Added::sent:
                return true;
            case Added::settled:
                continue;
            case Added::too_big: {
                std::lock_guard lock(mutex_);
                queue_.push_front(chunk);
                return false;
            }
            }
        }
    }

    enum class Added { sent, settled, too_big };

    /// Encodes the chunk's request into the worker's outbox and puts the chunk in its window;
    /// or settles it here (nobody wants it, or it does not encode); or, `behind` its running
    /// chunk, refuses it when its request would not fit in what may wait in the socket.
    Added add_to_outbox(WorkerProcess& worker, Chunk* chunk, bool behind) {
        if (!chunk->job->wanted()) {
            settle_cancelled(*chunk, unwanted_chunk_reason());
            return Added::settled;
        }
        const std::size_t header = begin_frame(worker.outbox);
        try {
            chunk->job->encode_chunk(*chunk, worker.outbox);
        } catch (...) {
            worker.outbox.truncate(header);
            settle_cancelled(*chunk, std::current_exception()); // e.g. cereal refused
            return Added::settled;
        }
        end_frame(worker.outbox, header, FrameKind::run);
        const std::size_t bytes = worker.outbox.size() - header;
        if (behind && worker.waiting_bytes + bytes > max_waiting_bytes) {
            worker.outbox.truncate(header);
            worker.window_refused_bytes = true; // until its next answer
            return Added::too_big;
        }
        if (worker.window.empty()) {
            const auto limit = time_limit(*chunk);
            worker.deadline = limit.count() != 0 ? Clock::now() + limit : Clock::time_point::max();
        } else {
            worker.waiting_bytes += bytes;
        }
        if (chunk->job != worker.measured_job) {
            // Another job's chunks: their time is not known. (Compared while the old job is
            // still alive: its chunk is in the window, or being answered.)
            worker.measured_job = chunk->job;
            worker.short_runs = 0;
        }
        worker.window.push_back({chunk, bytes});
        return Added::sent;
    }

    /// Sends what the worker's outbox holds, in one system call.
    static void flush(WorkerProcess& worker) {
        if (worker.outbox.size() == 0) {
            return;
        }
        try {
            send_writer(worker.fd, worker.outbox); // refers to the inputs of large blocks
        } catch (const std::system_error&) {
            // The worker is gone; its channel's end of stream reports it (and its chunks) next.
        }
        worker.outbox.clear();
    }

    void stop_idle_workers() {
        {
            std::lock_guard lock(mutex_);
            if (!queue_.empty()) {
                return;
            }
        }
        for (const auto& worker : workers_) {
            if (worker->ready && !worker->stopping && worker->window.empty()) {
                stop(*worker);
            }
        }
    }

    void stop(WorkerProcess& worker) {
        worker.stopping = true;
        try {
            send_frame(worker.fd, FrameKind::stop, nullptr, 0);
        } catch (const std::system_error&) {
            // Already gone: its end of stream comes next.
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
            record_exit(event);
            break;
        case WorkerLauncher::Event::Kind::standby_ready:
            break;
        }
    }

    void record_exit(const WorkerLauncher::Event& event) {
        exit_status_[static_cast<pid_t>(event.pid)] =
            event.kind == WorkerLauncher::Event::Kind::exited ? std::optional<int>(event.status)
                                                              : std::nullopt;
    }

    /// Handles every frame the worker has sent (one recv may bring several).
    void handle_readable(WorkerProcess& worker) {
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
        if (kind == FrameKind::hello) {
            try {
                if (in.read<std::uint64_t>() != this_program_id()) {
                    throw Error("mproc: worker runs a different program");
                }
                worker.ready = true;
            } catch (...) {
                lose(worker, std::current_exception());
                return false;
            }
            return true;
        }
        if (kind == FrameKind::held_answers && !worker.held) {
            try {
                const int fd = worker.answers.take_received_fd();
                if (fd < 0) {
                    throw WireError("mproc: a worker's held answers came without their memory");
                }
                worker.held.emplace(fd);
            } catch (...) {
                lose(worker, std::current_exception());
                return false;
            }
            return true;
        }
        if (kind == FrameKind::crashed && !worker.crash) {
            // Its end of stream follows; lose() reports the crash with it.
            try {
                worker.crash = read_crash_report(in);
                const std::size_t size = in.remaining();
                const std::byte* finished = in.take(size);
                worker.finished_outcomes.assign(finished, finished + size);
            } catch (...) {
                lose(worker, std::current_exception());
                return false;
            }
            return true;
        }
        if ((kind != FrameKind::done && kind != FrameKind::failed) || worker.window.empty() ||
            worker.crash) {
            lose(worker, std::make_exception_ptr(WireError("mproc: unexpected frame from worker")));
            return false;
        }
        Chunk* chunk = answered(worker, worker.answers.run_ns());
        // Held until the window is refilled below: the comparisons there (take_queued,
        // add_to_outbox) are by address, which only a live job keeps unique.
        JobRef<Job> answered_job(chunk->job);
        answered_job->acquire();
        if (!settle_answer(worker, *chunk, kind, in)) {
            lose(worker, std::make_exception_ptr(
                             WireError("mproc: worker sent a response that does not decode")));
            return false;
        }
        // Refilled after the chunk is settled, not before: its callbacks may terminate the
        // pool, and then nothing more may start.
        if (worker.window.empty() && may_take(worker)) {
            take_queued(worker, false);
        }
        if (needs_refill(worker) && !any_idle_worker()) {
            while (has_room_behind(worker) && take_queued(worker, true)) {
            }
        }
        flush(worker);
        if (worker.window.empty()) {
            worker.measured_job = nullptr; // its job may end now: never compared again
        }
        if (options_.max_tasks_per_child != 0 &&
            worker.tasks_done >= options_.max_tasks_per_child) {
            MPROC_TRACE_EVENT("process worker %llu retired after %zu tasks",
                              static_cast<unsigned long long>(worker.id), worker.tasks_done);
            stop(worker); // replaced when its end of stream arrives
        }
        return true;
    }

    /// Settles `chunk` (just taken from the worker's window) with its answer, a done or failed
    /// frame; false when a done frame did not decode (its items end with that error, and the
    /// worker is not to be believed again).
    bool settle_answer(WorkerProcess& worker, Chunk& chunk, FrameKind kind, WireReader& in) {
        chunk.retries = 0;
        if (kind == FrameKind::done) {
            return chunk.job->complete_chunk(chunk, in, worker.pid, nullptr);
        }
        std::exception_ptr reason;
        try {
            reason = decode_exception(in, worker.pid, chunk.first);
        } catch (...) {
            reason = std::current_exception();
        }
        // Moved, not copied: the caller must hold the last reference, or this thread could
        // destroy the exception while the caller reads it (ThreadSanitizer cannot see the
        // reference count inside libstdc++ and reports it).
        chunk.job->cancel_chunk(chunk, std::move(reason));
        return true;
    }

    /// A worker that ended may have died holding answers back (held_answers.hpp): they settle
    /// the front of its window, in order, before the chunk after them is blamed for its end.
    void settle_held_answers(WorkerProcess& worker) {
        if (!worker.held) {
            return;
        }
        std::vector<std::byte> frames;
        try {
            frames = worker.held->unread_frames(worker.tasks_done);
        } catch (const WireError&) {
            return; // not believed: its window is blamed as if nothing was held
        }
        WireReader held(frames.data(), frames.size());
        while (held.remaining() >= sizeof(FrameHeader) && !worker.window.empty()) {
            FrameHeader header{};
            FrameKind kind{};
            try {
                header = held.read<FrameHeader>();
                kind = checked_frame_kind(header);
                if ((kind != FrameKind::done && kind != FrameKind::failed) ||
                    header.size > held.remaining()) {
                    return;
                }
            } catch (const WireError&) {
                return;
            }
            const std::byte* payload = held.take(header.size);
            WireReader in(payload, header.size);
            Chunk* chunk = answered(worker, header.run_ns);
            if (!settle_answer(worker, *chunk, kind, in)) {
                return; // it ended with the decoding error; the rest is not believed
            }
        }
    }

    /// Takes the answered front chunk out of the worker's window and learns from the time it
    /// ran (`run_ns`, as the worker timed it).
    Chunk* answered(WorkerProcess& worker, std::uint32_t run_ns) {
        Chunk* chunk = worker.window.front().chunk;
        worker.window.pop_front();
        ++worker.tasks_done;
        worker.window_refused_bytes = false;
        if (chunk->job == worker.measured_job) {
            const Clock::duration ran = std::chrono::nanoseconds(run_ns);
            if (ran >= queue_behind_below) {
                worker.short_runs = 0; // a long one: depth 1 at once
                worker.service = ran;
            } else {
                // Averaged, but a slower chunk counts at once: better too shallow than too deep.
                worker.service = worker.short_runs == 0 || ran > worker.service
                                     ? ran
                                     : (7 * worker.service + ran) / 8;
                ++worker.short_runs;
            }
        }
        worker.deadline = Clock::time_point::max(); // chunks with a time limit run alone
        if (!worker.window.empty()) {
            worker.waiting_bytes -= worker.window.front().frame_bytes;
        }
        return chunk;
    }

    bool any_idle_worker() const noexcept {
        return std::ranges::any_of(workers_, [this](const auto& worker) {
            return worker->window.empty() && may_take(*worker);
        });
    }

    /// The worker's channel closed (it exited, was killed, or sent garbage, `untrusted`): end or
    /// re-queue its chunk, forget it, and start a replacement if work may still need one.
    void lose(WorkerProcess& worker, std::exception_ptr untrusted) {
        if (untrusted) {
            kill_worker(worker); // it may still be alive, and is never to be believed again
        }
        launcher_->channel_closed(worker.pid);
        bool terminating;
        {
            std::lock_guard lock(mutex_);
            terminating = terminating_;
        }
        if (!untrusted) {
            settle_held_answers(worker);
        }
        if (!worker.stopping || !worker.window.empty()) {
            MPROC_TRACE_EVENT("process worker %llu (pid %d) lost",
                              static_cast<unsigned long long>(worker.id), worker.pid);
        }
        if (!worker.window.empty()) {
            std::vector<Chunk*> requeued;
            Chunk* chunk = worker.window.front().chunk;
            if (terminating) {
                settle_cancelled(*chunk, terminated_error());
            } else if (worker.timed_out) {
                settle_cancelled(*chunk, timeout_error(worker, *chunk));
            } else if (chunk->retries < options_.max_retries && launcher_alive_) {
                ++chunk->retries; // run whole again, on another worker
                MPROC_TRACE_EVENT("process backend: chunk re-queued (retry %u)", chunk->retries);
                requeued.push_back(chunk);
            } else {
                settle_lost(worker, *chunk, untrusted);
            }
            // The chunks behind it never started: they go back to the front of the queue, in
            // their order, and the loss is not theirs (no retry counted).
            for (auto waiting = worker.window.begin() + 1; waiting != worker.window.end();
                 ++waiting) {
                if (terminating) {
                    settle_cancelled(*waiting->chunk, terminated_error());
                } else {
                    requeued.push_back(waiting->chunk);
                }
            }
            worker.window.clear();
            if (!requeued.empty()) {
                MPROC_TRACE_EVENT("process backend: %zu chunks re-queued", requeued.size());
                bool terminated_since = false;
                {
                    std::lock_guard lock(mutex_);
                    // terminate() may have emptied the queue since `terminating` was read: then
                    // nobody would ever take these from it.
                    terminated_since = terminating_;
                    if (!terminated_since) {
                        queue_.insert(queue_.begin(), requeued.begin(), requeued.end());
                    }
                }
                if (terminated_since) {
                    for (Chunk* waiting : requeued) {
                        settle_cancelled(*waiting, terminated_error());
                    }
                }
            }
        }
        bool closed;
        bool queue_empty;
        {
            std::lock_guard lock(mutex_);
            closed = closed_;
            queue_empty = queue_.empty();
        }
        const bool replace = !terminating && !(closed && queue_empty) && launcher_alive_;
        std::erase_if(workers_, [&](const auto& candidate) { return candidate.get() == &worker; });
        if (replace) {
            request_worker();
        }
        fail_queue_if_no_worker_left();
    }

    static void settle_cancelled(Chunk& chunk, std::exception_ptr reason) {
        chunk.retries = 0;
        chunk.job->cancel_chunk(chunk, std::move(reason)); // moved: see handle_worker
    }

    /// Ends a chunk whose worker died: the items it finished keep their outcomes (when its crash
    /// report sent them), the others end with WorkerLost.
    void settle_lost(WorkerProcess& worker, Chunk& chunk, const std::exception_ptr& untrusted) {
        WorkerLost::Details details;
        details.worker_pid = worker.pid;
        details.retries = chunk.retries;
        const bool crash_names_item = worker.crash && worker.crash->item < chunk.count;
        const std::size_t offset = crash_names_item ? worker.crash->item : 0;
        details.task_index = chunk.job->task_index(chunk, offset);
        std::string message = "mproc: worker process " + std::to_string(worker.pid) + " died";
        const std::optional<int> status = exit_status_of(worker); // may learn of a lost server
        if (worker.server_generation != server_generation_) {
            // Its parent-death signal killed it; its status went with the server.
            message += " with " + lost_server_;
        } else if (status) {
            message += " (" + describe_exit(*status) + ")";
            if (WIFSIGNALED(*status)) {
                details.signal = WTERMSIG(*status);
            } else if (WIFEXITED(*status)) {
                details.exit_status = WEXITSTATUS(*status);
            }
        } else if (worker.crash) {
            details.signal = worker.crash->signal;
        }
        message += " while running task " + std::to_string(details.task_index);
        if (!crash_names_item && chunk.count > 1) {
            message +=
                " or one of the " + std::to_string(chunk.count - 1) + " after it (its chunk)";
        }
        if (details.retries != 0) {
            message += ", after " + std::to_string(details.retries) + " retries";
        }
        if (untrusted) {
            try {
                std::rethrow_exception(untrusted);
            } catch (const std::exception& e) {
                message +=
                    "; it was killed for sending a malformed frame: " + std::string(e.what());
            }
        }
        if (worker.crash) {
            details.backtrace = std::move(worker.crash->frames);
        }
        chunk.retries = 0;
        auto lost = std::make_exception_ptr(WorkerLost(message, std::move(details)));
        if (crash_names_item) {
            WireReader finished(worker.finished_outcomes.data(), worker.finished_outcomes.size());
            // Whether it decodes or not, the worker is gone already.
            (void)chunk.job->complete_chunk(chunk, finished, worker.pid, std::move(lost));
        } else {
            chunk.job->cancel_chunk(chunk, std::move(lost));
        }
    }

    std::exception_ptr timeout_error(const WorkerProcess& worker, const Chunk& chunk) {
        const std::size_t index = chunk.job->task_index(chunk, 0);
        return std::make_exception_ptr(TaskTimeout(
            "mproc: task " + std::to_string(index) +
                (chunk.count > 1 ? " (a chunk of " + std::to_string(chunk.count) + ")" : "") +
                " ran past its time limit; its worker process " + std::to_string(worker.pid) +
                " was killed",
            worker.pid, index));
    }

    /// The worker's wait status, from the launcher, which may report it just after the end of
    /// stream; empty if it does not come within a moment, if the kernel reaped the worker
    /// unseen (exited_unseen), or if its server was lost meanwhile.
    std::optional<int> exit_status_of(const WorkerProcess& worker) {
        const pid_t pid = worker.pid;
        if (launcher_alive_) {
            for (int attempt = 0; attempt < 50 && !exit_status_.contains(pid) &&
                                  worker.server_generation == server_generation_;
                 ++attempt) {
                pollfd server{launcher_->fd(), POLLIN, 0};
                if (::poll(&server, 1, 2) > 0) {
                    handle_launcher_event();
                }
            }
        }
        const auto status = exit_status_.find(pid);
        if (status == exit_status_.end()) {
            return std::nullopt;
        }
        const std::optional<int> value = status->second; // empty: the kernel reaped it unseen
        exit_status_.erase(status);
        return value;
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
        std::deque<Chunk*> stranded;
        {
            std::lock_guard lock(mutex_);
            stranded.swap(queue_);
        }
        if (!stranded.empty()) {
            cancel_all(stranded,
                       broken_ ? broken_
                               : std::make_exception_ptr(WorkerLost(
                                     "mproc: no worker process could be started for this task")));
        }
    }

    const ValidatedOptions options_;
    const std::unique_ptr<WorkerLauncher> launcher_; // fork server, or spawner
    const int wake_fd_;

    std::mutex mutex_; // guards the three below; the rest belongs to the I/O thread
    std::deque<Chunk*> queue_;
    bool closed_ = false;
    bool terminating_ = false;
    bool io_asleep_ = false;   // the I/O thread sleeps in poll: wake it (wake_fd_) for news
    bool news_for_io_ = false; // changed since the I/O thread last looked

    std::vector<std::unique_ptr<WorkerProcess>> workers_;
    std::size_t pending_spawns_ = 0;
    bool launcher_alive_ = true;
    std::exception_ptr broken_; // PoolBroken, once the launcher is lost for good
    // Counts the fork servers lost and replaced; lost_server_ says how the last one ended.
    std::uint64_t server_generation_ = 0;
    std::string lost_server_;
    std::unordered_map<pid_t, std::optional<int>> exit_status_;
    std::thread io_thread_;
};

ProcessBackend::ProcessBackend(ValidatedOptions options)
    : worker_count_(options.workers), impl_(std::make_unique<Impl>(std::move(options))) {}

ProcessBackend::~ProcessBackend() = default;

bool ProcessBackend::submit(ChunkBatch chunks) { return impl_->submit(chunks); }
void ProcessBackend::close() { impl_->close(); }
void ProcessBackend::terminate() { impl_->terminate(); }
void ProcessBackend::join() { impl_->join(); }

} // namespace mproc::detail
