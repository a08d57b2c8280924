#include "mproc/detail/process_backend.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fork_server.hpp"
#include "mproc/detail/channel.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/remote_exception.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/errors.hpp"
#include "mproc/this_worker.hpp"
#include "spawn.hpp"

namespace mproc::detail {
namespace {

/// One worker process as the caller sees it. Owned and touched by the I/O thread only.
struct WorkerProcess {
    std::uint64_t id = 0;
    pid_t pid = -1;
    int fd = -1;
    bool ready = false;       // its hello arrived
    bool stopping = false;    // told to stop (retired, or the pool is closing)
    Chunk* running = nullptr; // the chunk it holds, if any
    std::size_t tasks_done = 0;

    ~WorkerProcess() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

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
                } else {
                    exit_status_[static_cast<pid_t>(event.pid)] = event.status;
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

    bool submit(Chunk* chunks, std::size_t count) {
        {
            std::lock_guard lock(mutex_);
            if (closed_) {
                return false;
            }
            for (std::size_t i = 0; i < count; ++i) {
                queue_.push_back(&chunks[i]);
            }
        }
        wake();
        return true;
    }

    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        wake();
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
        cancel_all(dropped, terminated_error());
        wake();
    }

    void join() {
        if (io_thread_.joinable()) {
            io_thread_.join();
        }
    }

  private:
    static std::unique_ptr<WorkerLauncher> make_launcher(const ValidatedOptions& options) {
        refuse_pool_in_unserved_worker();
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
            pollfd channel{worker->fd, POLLIN, 0};
            if (::poll(&channel, 1, 60'000) <= 0 || !receive_frame(worker->fd, kind, response_) ||
                kind != FrameKind::hello) {
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
            chunk->job->cancel_chunk(*chunk, reason);
        }
        chunks.clear();
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
        MPROC_TRACE_EVENT("process worker %llu spawned as pid %d",
                          static_cast<unsigned long long>(worker->id), worker->pid);
        workers_.push_back(std::move(worker));
    }

    // ---- the I/O thread ------------------------------------------------------------------

    void run_io() {
        std::vector<pollfd> watched;
        for (;;) {
            bool terminating;
            bool closed;
            {
                std::lock_guard lock(mutex_);
                terminating = terminating_;
                closed = closed_;
            }
            if (terminating && !kill_requested_) {
                // The launcher kills the workers: it alone knows which pids are still theirs.
                kill_requested_ = true;
                if (launcher_alive_) {
                    try {
                        launcher_->request_worker(0);
                    } catch (const std::system_error&) {
                        launcher_alive_ = false;
                    }
                }
            }
            if (!terminating) {
                dispatch_queued();
            }
            if (closed) {
                stop_idle_workers();
                if (workers_.empty() && pending_spawns_ == 0) {
                    break;
                }
            }
            watched.clear();
            watched.push_back({wake_fd_, POLLIN, 0});
            if (launcher_alive_) {
                watched.push_back({launcher_->fd(), POLLIN, 0});
            }
            for (const auto& worker : workers_) {
                watched.push_back({worker->fd, POLLIN, 0});
            }
            if (::poll(watched.data(), watched.size(), -1) < 0) {
                continue; // EINTR
            }
            std::size_t next = 0;
            if (watched[next++].revents != 0) {
                std::uint64_t count;
                [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof(count));
            }
            if (launcher_alive_ && watched[next++].revents != 0) {
                handle_launcher_event();
            }
            // Collect first: handling a worker may remove it from workers_.
            std::vector<WorkerProcess*> readable;
            for (const auto& worker : workers_) {
                if (watched[next++].revents != 0) {
                    readable.push_back(worker.get());
                }
            }
            for (WorkerProcess* worker : readable) {
                handle_worker(*worker);
            }
        }
        MPROC_TRACE_EVENT("process backend: every worker is gone");
        launcher_->shut_down();
    }

    /// Gives every idle worker a chunk, while there are chunks.
    void dispatch_queued() {
        for (const auto& worker : workers_) {
            if (!worker->ready || worker->stopping || worker->running != nullptr) {
                continue;
            }
            for (;;) {
                Chunk* chunk;
                {
                    std::lock_guard lock(mutex_);
                    if (queue_.empty()) {
                        return;
                    }
                    chunk = queue_.front();
                    queue_.pop_front();
                }
                if (send_chunk(*worker, chunk)) {
                    break;
                }
            }
        }
    }

    /// False when the chunk was settled here instead (nobody wants it, or it does not encode):
    /// the worker is still idle.
    bool send_chunk(WorkerProcess& worker, Chunk* chunk) {
        if (!chunk->job->wanted()) {
            chunk->job->cancel_chunk(*chunk, unwanted_chunk_reason());
            return false;
        }
        request_.clear();
        try {
            chunk->job->encode_chunk(*chunk, request_);
        } catch (...) {
            chunk->job->cancel_chunk(*chunk, std::current_exception()); // e.g. cereal refused
            return false;
        }
        worker.running = chunk;
        try {
            send_frame(worker.fd, FrameKind::run, request_.data(), request_.size());
        } catch (const std::system_error&) {
            // The worker is gone; its channel's end of stream reports it (and the chunk) next.
        }
        return true;
    }

    void stop_idle_workers() {
        {
            std::lock_guard lock(mutex_);
            if (!queue_.empty()) {
                return;
            }
        }
        for (const auto& worker : workers_) {
            if (worker->ready && !worker->stopping && worker->running == nullptr) {
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
            // The server died (killed from outside): its workers die with it (they asked the
            // kernel to be killed when their parent goes), and no replacement can come.
            launcher_alive_ = false;
            pending_spawns_ = 0;
            fail_queue_if_no_worker_left();
            return;
        }
        switch (event.kind) {
        case WorkerLauncher::Event::Kind::spawned:
            --pending_spawns_;
            adopt_worker(event);
            break;
        case WorkerLauncher::Event::Kind::spawn_failed:
            --pending_spawns_;
            fail_queue_if_no_worker_left();
            break;
        case WorkerLauncher::Event::Kind::exited:
            exit_status_[static_cast<pid_t>(event.pid)] = event.status;
            break;
        }
    }

    void handle_worker(WorkerProcess& worker) {
        FrameKind kind{};
        bool received = false;
        std::exception_ptr error;
        try {
            received = receive_frame(worker.fd, kind, response_);
        } catch (...) {
            error = std::current_exception(); // garbage on the channel: never trusted
        }
        if (!received) {
            lose(worker, error);
            return;
        }
        WireReader in(response_.data(), response_.size());
        if (kind == FrameKind::hello) {
            try {
                if (in.read<std::uint64_t>() != this_program_id()) {
                    throw Error("mproc: worker runs a different program");
                }
                worker.ready = true;
            } catch (...) {
                lose(worker, std::current_exception());
            }
            return;
        }
        if ((kind != FrameKind::done && kind != FrameKind::failed) || worker.running == nullptr) {
            lose(worker, std::make_exception_ptr(WireError("mproc: unexpected frame from worker")));
            return;
        }
        Chunk* chunk = std::exchange(worker.running, nullptr);
        ++worker.tasks_done;
        if (kind == FrameKind::done) {
            chunk->job->complete_chunk(*chunk, in, worker.pid);
        } else {
            std::exception_ptr reason;
            try {
                reason = decode_exception(in, worker.pid, chunk->first);
            } catch (...) {
                reason = std::current_exception();
            }
            // Moved, not copied: the caller must hold the last reference, or this thread could
            // destroy the exception while the caller reads it (ThreadSanitizer cannot see the
            // reference count inside libstdc++ and reports it).
            chunk->job->cancel_chunk(*chunk, std::move(reason));
        }
        if (options_.max_tasks_per_child != 0 &&
            worker.tasks_done >= options_.max_tasks_per_child) {
            MPROC_TRACE_EVENT("process worker %llu retired after %zu tasks",
                              static_cast<unsigned long long>(worker.id), worker.tasks_done);
            stop(worker); // replaced when its end of stream arrives
        }
    }

    /// The worker's channel closed (it exited, was killed, or sent garbage): end its chunk,
    /// forget it, and start a replacement if work may still need one.
    void lose(WorkerProcess& worker, std::exception_ptr error) {
        launcher_->channel_closed(worker.pid);
        bool terminating;
        bool closed;
        bool queue_empty;
        {
            std::lock_guard lock(mutex_);
            terminating = terminating_;
            closed = closed_;
            queue_empty = queue_.empty();
        }
        if (!worker.stopping || worker.running != nullptr) {
            MPROC_TRACE_EVENT("process worker %llu (pid %d) lost",
                              static_cast<unsigned long long>(worker.id), worker.pid);
        }
        if (Chunk* chunk = std::exchange(worker.running, nullptr)) {
            std::exception_ptr reason = terminating ? terminated_error() : error;
            if (!reason) {
                reason = std::make_exception_ptr(WorkerLost(lost_message(worker)));
            }
            chunk->job->cancel_chunk(*chunk, std::move(reason)); // moved: see handle_worker
        }
        const bool replace = !terminating && !(closed && queue_empty) && launcher_alive_;
        std::erase_if(workers_, [&](const auto& candidate) { return candidate.get() == &worker; });
        if (replace) {
            try {
                launcher_->request_worker(next_worker_id());
                ++pending_spawns_;
            } catch (const std::system_error&) {
                launcher_alive_ = false;
            }
        }
        fail_queue_if_no_worker_left();
    }

    std::string lost_message(const WorkerProcess& worker) {
        std::string message =
            "mproc: worker process " + std::to_string(worker.pid) + " died while running a task";
        // The exit status comes from the launcher, possibly just after the end of stream.
        if (launcher_alive_) {
            for (int attempt = 0; attempt < 50 && !exit_status_.contains(worker.pid); ++attempt) {
                pollfd server{launcher_->fd(), POLLIN, 0};
                if (::poll(&server, 1, 2) > 0) {
                    handle_launcher_event();
                }
            }
        }
        if (auto status = exit_status_.find(worker.pid); status != exit_status_.end()) {
            message += " (" + describe_exit(status->second) + ")";
            exit_status_.erase(status);
        }
        return message;
    }

    /// With no worker and none coming, queued chunks could wait for ever: end them.
    void fail_queue_if_no_worker_left() {
        if (!workers_.empty() || pending_spawns_ != 0) {
            return;
        }
        std::deque<Chunk*> stranded;
        {
            std::lock_guard lock(mutex_);
            stranded.swap(queue_);
        }
        if (!stranded.empty()) {
            cancel_all(stranded, std::make_exception_ptr(WorkerLost(
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

    std::vector<std::unique_ptr<WorkerProcess>> workers_;
    std::size_t pending_spawns_ = 0;
    bool kill_requested_ = false;
    bool launcher_alive_ = true;
    std::unordered_map<pid_t, int> exit_status_;
    WireWriter request_;
    std::vector<std::byte> response_;
    std::thread io_thread_;
};

ProcessBackend::ProcessBackend(ValidatedOptions options)
    : worker_count_(options.workers), impl_(std::make_unique<Impl>(std::move(options))) {}

ProcessBackend::~ProcessBackend() = default;

bool ProcessBackend::submit(Chunk* chunks, std::size_t count) {
    return impl_->submit(chunks, count);
}
void ProcessBackend::close() { impl_->close(); }
void ProcessBackend::terminate() { impl_->terminate(); }
void ProcessBackend::join() { impl_->join(); }

} // namespace mproc::detail
