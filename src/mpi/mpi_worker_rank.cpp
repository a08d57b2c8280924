#include "mpi_worker_rank.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpi_link.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/process_backend.hpp"
#include "mproc/detail/remote_exception.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/errors.hpp"
#include "mproc/initializer.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/this_worker.hpp"

namespace mproc::detail {
namespace {

/// Messages for rank 0 from the local pools' I/O threads; the serving loop sends them (only it
/// talks MPI).
class Outbox {
  public:
    void post(MpiTag tag, WireWriter message) {
        bool first;
        {
            std::lock_guard lock(mutex_);
            first = messages_.empty();
            messages_.emplace_back(tag, std::move(message.bytes()));
        }
        if (first) { // a later one finds the serving loop already woken, and goes with the first
            posted_.notify_one();
        }
    }
    /// Hands every posted message to `link`; returns how many.
    std::size_t send_all(MpiLink& link) {
        std::deque<std::pair<MpiTag, std::vector<std::byte>>> messages;
        {
            std::lock_guard lock(mutex_);
            messages.swap(messages_);
        }
        for (auto& [tag, payload] : messages) {
            link.send(0, tag, std::move(payload));
        }
        return messages.size();
    }
    /// Waits up to `us` microseconds for a message to be posted (0: not at all).
    void wait(unsigned us) {
        if (us == 0) {
            return;
        }
        std::unique_lock lock(mutex_);
        posted_.wait_for(lock, std::chrono::microseconds(us), [&] { return !messages_.empty(); });
    }

  private:
    std::mutex mutex_;
    std::condition_variable posted_;
    std::deque<std::pair<MpiTag, std::vector<std::byte>>> messages_;
};

/// One request rank 0 sent: the chunk's request for a worker process, as rank 0 encoded it.
struct RelayedRequest {
    std::uint64_t id;
    std::vector<std::byte> bytes;
};

/// The requests for one pool that arrived in one turn of the serving loop, as one job of the
/// local process pool, one chunk per request: handed over together, so that the process backend
/// can send them to its worker processes back to back. Each request goes to a worker process
/// unchanged, and whatever settles it goes back to rank 0 as it comes.
class RelayJob final : public Job {
  public:
    RelayJob(Outbox& outbox, const std::string& where, std::uint64_t pool,
             std::vector<RelayedRequest> requests)
        : outbox_(outbox), where_(where), pool_(pool), requests_(std::move(requests)),
          chunks_(requests_.size()) {
        for (std::size_t i = 0; i < chunks_.size(); ++i) {
            chunks_[i] = Chunk{this, i, 1};
        }
        acquire(chunks_.size() - 1); // one reference per chunk; the first is the constructor's
    }

    std::vector<Chunk>& chunks() noexcept { return chunks_; }

    void run_chunk(const Chunk&) noexcept override { wire_call_on_in_process_job(); }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        const std::vector<std::byte>& bytes = requests_[chunk.first].bytes;
        request.write_bytes(bytes.data(), bytes.size());
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if (lost) {
            // The worker process died part-way and reported it: rank 0 gets the chunk as lost,
            // whole (the outcomes it finished are not relayed).
            settle_with(chunk, std::move(lost));
            return true;
        }
        try {
            WireWriter message = header(chunk);
            message.write(static_cast<std::int64_t>(worker_pid));
            const std::size_t size = response.remaining();
            message.write_bytes(response.take(size), size);
            outbox_.post(MpiTag::done, std::move(message));
        } catch (...) {
            settle_with(chunk, std::current_exception());
            return true;
        }
        release();   // the chunk's reference: the last use of this
        return true; // relayed as it came: rank 0 decodes it
    }

    void cancel_chunk(const Chunk& chunk, std::exception_ptr reason) noexcept override {
        settle_with(chunk, std::move(reason));
    }

    /// Item positions are the relayed chunk's own (rank 0 knows where that chunk starts).
    std::size_t task_index(const Chunk&, std::size_t offset) const noexcept override {
        return offset;
    }

  private:
    WireWriter header(const Chunk& chunk) const {
        WireWriter message;
        message.write(pool_);
        message.write(requests_[chunk.first].id);
        return message;
    }

    void settle_with(const Chunk& chunk, std::exception_ptr reason) noexcept {
        try {
            WireWriter message = header(chunk);
            MpiTag tag = MpiTag::failed;
            try {
                std::rethrow_exception(reason);
            } catch (const WorkerLost& lost) {
                tag = MpiTag::lost;
                message.write_string(std::string(lost.what()) + " on " + where_);
            } catch (const RemoteError& remote) {
                message.write(std::int64_t{remote.worker_pid()});
                encode_remote_error(message, remote); // the task's own exception, not ours
            } catch (...) {
                message.write(std::int64_t{0});
                encode_exception(message, reason);
            }
            outbox_.post(tag, std::move(message));
        } catch (...) {
            std::terminate(); // out of memory for an error report: nothing sensible is left
        }
        release();
    }

    Outbox& outbox_;
    const std::string& where_;
    const std::uint64_t pool_;
    const std::vector<RelayedRequest> requests_;
    std::vector<Chunk> chunks_;
};

class WorkerRank {
  public:
    explicit WorkerRank(MpiLink& link)
        : link_(link),
          where_("MPI rank " + std::to_string(link.rank()) + " (host " + link.host() + ")") {
        // Worker ids stay unique across the job: each rank counts in a range of its own.
        start_worker_ids_at(static_cast<std::uint64_t>(link.rank()) << 40);
    }

    void serve() {
        PollBackoff backoff(200);
        for (;;) {
            // Every chunk settles with exactly one message for rank 0.
            chunks_here_ -= outbox_.send_all(link_);
            // Everything that has arrived, so that the requests among it reach the local pools
            // together (a batch from rank 0 arrives as its messages, one after another).
            bool received = false;
            MpiMessage message;
            while (link_.receive(message)) {
                received = true;
                if (message.tag == MpiTag::run) {
                    collect_request(message);
                    continue;
                }
                submit_collected(); // before a close or terminate of their pool
                if (!handle(message)) {
                    return;
                }
            }
            submit_collected();
            if (received) {
                backoff.reset();
                continue;
            }
            if (link_.sending()) {
                continue; // a large message leaves in pieces, each needing a poll: no sleep
            }
            if (pools_.empty()) {
                outbox_.wait(2000); // idle: nothing comes but rank 0's next pool, or the end
            } else if (chunks_here_ >= workers_here_) {
                // Every worker here has a chunk (and rank 0 may send more ahead): wait for one
                // to finish (the I/O thread's post wakes this at once), checking for new
                // messages now and then, without taking the CPU the busy workers need.
                outbox_.wait(1000);
            } else {
                outbox_.wait(backoff.next_wait_us());
            }
        }
    }

  private:
    /// False once rank 0 says the job ends.
    bool handle(MpiMessage& message) {
        WireReader in(message.payload.data(), message.payload.size());
        if (message.tag == MpiTag::shutdown) {
            for (auto& [id, pool] : pools_) {
                pool->terminate();
                pool->join();
            }
            pools_.clear();
            outbox_.send_all(link_);
            return false;
        }
        const auto pool = in.read<std::uint64_t>();
        switch (message.tag) {
        case MpiTag::open:
            open(pool, in);
            break;
        case MpiTag::close:
        case MpiTag::terminate:
            end(pool, message.tag == MpiTag::terminate);
            break;
        default:
            MPROC_TRACE_EVENT("mpi rank %d: unexpected message tag %d ignored", link_.rank(),
                              static_cast<int>(message.tag));
            break;
        }
        return true;
    }

    void open(std::uint64_t pool, WireReader& in) {
        WireWriter reply;
        reply.write(pool);
        try {
            const auto program = in.read<std::uint64_t>();
            const auto workers = in.read<std::uint64_t>();
            const auto max_tasks_per_child = in.read<std::uint64_t>();
            const std::size_t initializer_size = in.remaining();
            const std::byte* initializer_bytes = in.take(initializer_size);
            if (program != this_program_id()) {
                throw Error("mproc: " + where_ +
                            " runs a different program than rank 0 (every rank must run the "
                            "same binary, built once, at the same path on every host); it "
                            "refuses to serve the pool");
            }
            std::function<void()> initializer = initializer_from_portable(
                std::vector<std::byte>(initializer_bytes, initializer_bytes + initializer_size));
            ValidatedOptions options{.workers = workers,
                                     .initializer = {},
                                     .max_tasks_per_child = max_tasks_per_child,
                                     .start_method = StartMethod::fork};
            if (initializer) {
                options.initializer = Initializer(std::move(initializer));
            }
            pools_.emplace(pool, std::make_unique<ProcessBackend>(std::move(options)));
            workers_here_ += workers;
            MPROC_TRACE_EVENT("mpi rank %d: pool %llu opened with %llu worker processes",
                              link_.rank(), static_cast<unsigned long long>(pool),
                              static_cast<unsigned long long>(workers));
        } catch (const std::exception& error) {
            reply.write_string(error.what());
            link_.send(0, MpiTag::refused, std::move(reply.bytes()));
            return;
        }
        reply.write_string(link_.host());
        link_.send(0, MpiTag::opened, std::move(reply.bytes()));
    }

    void collect_request(const MpiMessage& message) {
        WireReader in(message.payload.data(), message.payload.size());
        const auto pool = in.read<std::uint64_t>();
        const auto id = in.read<std::uint64_t>();
        const std::size_t size = in.remaining();
        const std::byte* request = in.take(size);
        collected_[pool].push_back({id, std::vector<std::byte>(request, request + size)});
        ++chunks_here_;
    }

    /// Hands the collected requests to their pools, one job per pool.
    void submit_collected() {
        for (auto& [pool, requests] : collected_) {
            auto* job = new RelayJob(outbox_, where_, pool, std::move(requests));
            Chunk* chunks = job->chunks().data();
            const std::size_t count = job->chunks().size();
            const auto found = pools_.find(pool);
            if (found == pools_.end() || !found->second->submit(chunks, count)) {
                const auto refusal = std::make_exception_ptr(
                    PoolNotRunning("mproc: " + where_ + " serves no such pool"));
                for (std::size_t i = 0; i < count; ++i) { // the last one deletes the job
                    job->cancel_chunk(chunks[i], refusal);
                }
            }
        }
        collected_.clear();
    }

    void end(std::uint64_t pool, bool terminate) {
        if (const auto found = pools_.find(pool); found != pools_.end()) {
            if (terminate) {
                found->second->terminate();
            } else {
                found->second->close();
            }
            found->second->join();
            workers_here_ -= found->second->worker_count();
            pools_.erase(found);
        }
        chunks_here_ -= outbox_.send_all(link_); // every result of the pool leaves before `closed`
        WireWriter reply;
        reply.write(pool);
        link_.send(0, MpiTag::closed, std::move(reply.bytes()));
        MPROC_TRACE_EVENT("mpi rank %d: pool %llu closed", link_.rank(),
                          static_cast<unsigned long long>(pool));
    }

    MpiLink& link_;
    const std::string where_;
    Outbox outbox_;
    std::map<std::uint64_t, std::unique_ptr<ProcessBackend>> pools_;
    std::size_t workers_here_ = 0; // worker processes of the open pools
    std::size_t chunks_here_ = 0;  // chunks received and not yet answered
    // Requests received in this turn of the loop, by pool, not handed to the pool yet.
    std::map<std::uint64_t, std::vector<RelayedRequest>> collected_;
};

} // namespace

void serve_worker_rank(MpiLink& link) { WorkerRank(link).serve(); }

} // namespace mproc::detail
