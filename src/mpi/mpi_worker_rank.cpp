// SPDX-License-Identifier: MIT
#include "mpi_worker_rank.hpp"
#include <algorithm>
#include <atomic>
#include <cstdio>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "in_rank_pool.hpp"
#include "mpi_link.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/process_backend.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/detail/wire/worker_loss.hpp"
#include "mproc/errors.hpp"
#include "mproc/initializer.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/this_worker.hpp"
#include "portable_initializer.hpp"
#include "rank_binding.hpp"
#include "rank_silence.hpp"

namespace mproc::detail {
namespace {

/// Where requests for chunks go, from whichever thread received them.
class RequestSink {
  public:
    /// Hands `requests` (MpiTag::run messages) to their local pools.
    virtual void submit_requests(std::vector<MpiMessage>& requests) = 0;

  protected:
    ~RequestSink() = default;
};

/// The worker rank's MPI connection as its threads share it. The local pools' I/O threads send
/// each chunk's answer themselves, as it settles, and take in the requests that have arrived
/// meanwhile, handing them to the local pools; the serving loop handles everything else (pools
/// opened and ended, the job's end) and takes in requests while the rank has too few to keep
/// its workers busy. A hand-off to another thread per chunk would cost a wake-up per chunk, on
/// cores the rank's worker processes need (a rank's threads and its worker processes share the
/// cores it is bound to). MPI is started MPI_THREAD_SERIALIZED: every MPI call is made under
/// `mutex_`.
class RankLink {
  public:
    RankLink(MpiLink& link, RequestSink& requests) : link_(link), requests_(requests) {}

    /// The serving loop: every message that has arrived, in order (those an I/O thread took in
    /// and left for it first).
    void receive_all(std::vector<MpiMessage>& arrived) {
        std::lock_guard lock(mutex_);
        for (MpiMessage& message : left_for_serving_loop_) {
            arrived.push_back(std::move(message));
        }
        left_for_serving_loop_.clear();
        for (MpiMessage message; link_.receive(message);) {
            arrived.push_back(std::move(message));
        }
    }

    /// Runs `use(link)` under the lock: how the serving loop talks MPI.
    template <class Use>
    decltype(auto) with_link(Use&& use) {
        std::lock_guard lock(mutex_);
        return use(link_);
    }

    /// The serving loop, before handing `count` chunks to a local pool: they are here until
    /// answered.
    void chunks_arriving(std::size_t count) {
        std::lock_guard lock(mutex_);
        chunks_here_ += count;
    }
    void workers_changed(std::ptrdiff_t change) {
        std::lock_guard lock(mutex_);
        workers_here_ =
            static_cast<std::size_t>(static_cast<std::ptrdiff_t>(workers_here_) + change);
    }
    std::size_t workers_here() {
        std::lock_guard lock(mutex_);
        return workers_here_;
    }
    /// Whether an answer took in a message that is not a request: the serving loop, running
    /// chunks itself, stops to handle it (it may end or cancel their pool).
    bool has_messages_for_serving_loop() {
        std::lock_guard lock(mutex_);
        return !left_for_serving_loop_.empty();
    }
    /// Whether every worker process here has a chunk: then the serving loop can sleep, since the
    /// answers (see answer()) wake it when there is something to do.
    bool workers_busy() {
        std::lock_guard lock(mutex_);
        return chunks_here_ >= workers_here_;
    }

    /// A local pool's I/O thread (or the serving loop): sends the answer for a chunk to rank 0
    /// now, and hands the requests that have arrived to their pools. Wakes the serving loop when
    /// it has something to do: another message from rank 0 arrived, a worker process here has
    /// no chunk any more (rank 0 sends the next at once: the serving loop must look out for
    /// it), or the answer is large and leaves in pieces (each needs a poll, which the serving
    /// loop makes until it is gone).
    void answer(MpiTag tag, WireWriter message) {
        // Not while this thread is handing requests over already (a refused request is
        // answered there): they are handed over in order, under the sink's lock.
        thread_local bool handing_over = false;
        std::vector<MpiMessage> requests;
        bool wake;
        {
            std::lock_guard lock(mutex_);
            link_.send(0, tag, std::move(message.bytes()));
            link_.push();
            last_answer_ = std::chrono::steady_clock::now();
            --chunks_here_;
            for (MpiMessage arrived; !handing_over && link_.receive(arrived);) {
                (arrived.tag == MpiTag::run ? requests : left_for_serving_loop_)
                    .push_back(std::move(arrived));
            }
            wake = chunks_here_ + requests.size() < workers_here_ || link_.sends_need_polling() ||
                   !left_for_serving_loop_.empty();
        }
        if (!requests.empty()) {
            handing_over = true;
            requests_.submit_requests(requests);
            handing_over = false;
        }
        if (wake) {
            std::lock_guard lock(wake_mutex_);
            if (!wake_requested_) {
                wake_requested_ = true;
                woken_.notify_one();
            }
        }
    }

    /// The heartbeat's thread: while this rank holds chunks, rank 0 hears from it at least
    /// every `interval` (rank_silence.hpp); an answer counts.
    void keep_alive(std::chrono::steady_clock::duration interval) {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (chunks_here_ == 0 || now - last_answer_ < interval) {
            return;
        }
        link_.send(0, MpiTag::alive, {});
        link_.push();
        last_answer_ = now;
    }

    /// The serving loop: sleeps up to `us` microseconds (0: not at all), or until answer() wakes
    /// it.
    void wait(unsigned us) {
        std::unique_lock lock(wake_mutex_);
        if (us != 0) {
            woken_.wait_for(lock, std::chrono::microseconds(us), [&] { return wake_requested_; });
        }
        wake_requested_ = false;
    }

  private:
    MpiLink& link_;
    RequestSink& requests_;
    std::mutex mutex_; // every MPI call; the counts; left_for_serving_loop_
    std::vector<MpiMessage> left_for_serving_loop_;
    std::size_t chunks_here_ = 0;  // chunks handed to local pools and not yet answered
    std::size_t workers_here_ = 0; // worker processes of the open pools
    std::chrono::steady_clock::time_point last_answer_{}; // or heartbeat
    std::mutex wake_mutex_;
    std::condition_variable woken_;
    bool wake_requested_ = false;
};

/// Keeps rank 0 hearing from this rank while it holds chunks, from a thread of its own: the
/// serving loop may be running a long task of an in-rank pool (rank_silence.hpp).
class Heartbeat {
  public:
    explicit Heartbeat(RankLink& link) : thread_([this, &link] { beat(link); }) {}
    Heartbeat(const Heartbeat&) = delete;
    Heartbeat& operator=(const Heartbeat&) = delete;
    ~Heartbeat() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        stop_.notify_one();
        thread_.join();
    }

  private:
    void beat(RankLink& link) {
        // Looks four times an interval, so that no gap reaches much past one.
        std::unique_lock lock(mutex_);
        while (!stop_.wait_for(lock, heartbeat_interval / 4, [&] { return stopping_; })) {
            link.keep_alive(heartbeat_interval * 3 / 4);
        }
    }

    std::mutex mutex_;
    std::condition_variable stop_;
    bool stopping_ = false;
    std::thread thread_;
};

/// The chunks one call of rank 0's (one map, one apply, ...) has on one pool of this rank, as
/// one job of the local process pool, which learns how deep to pipeline a job's chunks from
/// their times. It lives while the call has chunks here: the serving loop adds the requests that
/// arrive, and whatever settles a chunk goes back to rank 0 as it comes (each chunk's request
/// goes to a worker process unchanged; its response comes back unchanged).
class RelayJob final : public Job, public WireJob {
  public:
    RelayJob(RankLink& link, const std::string& where, std::uint64_t pool)
        : link_(link), where_(where), pool_(pool) {}

    /// The serving loop: turns requests (rank 0's id, the request's bytes) into chunks of this
    /// job, all handed to the local pool together (so that it can send them to its worker
    /// processes back to back). Returns them; each holds a reference to the job until settled.
    std::vector<Chunk>&
    add(std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> requests) {
        std::lock_guard lock(mutex_);
        const std::uint64_t batch_id = next_batch_++;
        Batch& batch = batches_[batch_id];
        batch.unsettled = requests.size();
        batch.chunks.reserve(requests.size());
        for (auto& [id, bytes] : requests) {
            std::size_t slot;
            if (free_slots_.empty()) {
                slot = slots_.size();
                slots_.emplace_back();
            } else {
                slot = free_slots_.back();
                free_slots_.pop_back();
            }
            slots_[slot] = Slot{id, std::move(bytes), batch_id};
            batch.chunks.push_back(Chunk{this, slot, 1});
        }
        acquire(requests.size());
        return batch.chunks;
    }

    /// Whether no chunk of the job is here: the serving loop may drop it.
    bool idle() const {
        std::lock_guard lock(mutex_);
        return batches_.empty();
    }

    WireJob* wire() noexcept override { return this; }

    void run_chunk(const Chunk&) noexcept override {
        // Its chunks go to the rank's own process pool, which only ever asks its wire half.
        std::terminate();
    }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        std::lock_guard lock(mutex_);
        const std::vector<std::byte>& bytes = slots_[chunk.first].request;
        request.write_bytes(bytes.data(), bytes.size());
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if (lost) {
            // Not from the local pool, which passes a lost worker on as a WorkerLoss.
            settle_with(chunk, std::move(lost));
            return true;
        }
        try {
            WireWriter message = header(chunk);
            message.write(static_cast<std::int64_t>(worker_pid));
            const std::size_t size = response.remaining();
            message.write_bytes(response.take(size), size);
            answer(chunk, MpiTag::done, std::move(message));
        } catch (...) {
            settle_with(chunk, std::current_exception());
        }
        return true; // relayed as it came: rank 0 decodes it
    }

    void cancel_chunk(const Chunk& chunk, std::exception_ptr reason) noexcept override {
        settle_with(chunk, std::move(reason));
    }

    /// Relayed as it came, with the outcomes the worker finished: rank 0 makes the caller's
    /// WorkerLost of it, from its own chunk (the item's index in the call, the chunk's size).
    void lose_chunk(const Chunk& chunk, WorkerLoss loss, WireReader& finished) noexcept override {
        try {
            WireWriter message = header(chunk);
            encode_worker_loss(message, loss);
            const std::size_t size = finished.remaining();
            message.write_bytes(finished.take(size), size);
            answer(chunk, MpiTag::lost, std::move(message));
        } catch (...) {
            std::terminate(); // out of memory for an error report: nothing sensible is left
        }
    }

    /// Item positions are the relayed chunk's own (rank 0 knows where that chunk starts).
    std::size_t task_index(const Chunk&, std::size_t offset) const noexcept override {
        return offset;
    }

  private:
    struct Slot {
        std::uint64_t request_id = 0;
        std::vector<std::byte> request;
        std::uint64_t batch = 0;
    };
    struct Batch {
        std::vector<Chunk> chunks; // handed to the local pool in one submit
        std::size_t unsettled = 0;
    };

    WireWriter header(const Chunk& chunk) const {
        WireWriter message;
        message.write(pool_);
        std::lock_guard lock(mutex_);
        message.write(slots_[chunk.first].request_id);
        return message;
    }

    void settle_with(const Chunk& chunk, std::exception_ptr reason) noexcept {
        try {
            WireWriter message = header(chunk);
            MpiTag tag = MpiTag::failed;
            try {
                std::rethrow_exception(reason);
            } catch (const WorkerLost& lost) {
                // No worker process ran the chunk (none could be started): no loss to relay.
                tag = MpiTag::unserved;
                message.write_string(std::string(lost.what()) + " on " + where_);
            } catch (const RemoteError& remote) {
                message.write(std::int64_t{remote.worker_pid()});
                encode_remote_error(message, remote); // the task's own exception, not ours
            } catch (...) {
                message.write(std::int64_t{0});
                encode_exception(message, reason);
            }
            answer(chunk, tag, std::move(message));
        } catch (...) {
            std::terminate(); // out of memory for an error report: nothing sensible is left
        }
    }

    /// Sends the chunk's answer and forgets the chunk (the last use of `chunk`).
    void answer(const Chunk& chunk, MpiTag tag, WireWriter message) {
        link_.answer(tag, std::move(message));
        {
            std::lock_guard lock(mutex_);
            Slot& slot = slots_[chunk.first];
            slot.request = {};
            free_slots_.push_back(chunk.first);
            const auto batch = batches_.find(slot.batch);
            if (--batch->second.unsettled == 0) {
                batches_.erase(batch); // `chunk` was in it
            }
        }
        release(); // the chunk's reference
    }

    RankLink& link_;
    const std::string& where_;
    const std::uint64_t pool_;
    // The serving loop adds chunks while the local pool's I/O thread settles others.
    mutable std::mutex mutex_;
    std::deque<Slot> slots_; // by Chunk::first; a settled chunk's slot is reused
    std::vector<std::size_t> free_slots_;
    std::unordered_map<std::uint64_t, Batch> batches_;
    std::uint64_t next_batch_ = 0;
};

class WorkerRank final : public RequestSink {
  public:
    explicit WorkerRank(MpiLink& link)
        : link_(link, *this), rank_(link.rank()), host_(link.host()),
          where_("MPI rank " + std::to_string(link.rank()) + " (host " + link.host() + ")") {
        // Worker ids stay unique across the job: each rank counts in a range of its own.
        start_worker_ids_at(static_cast<std::uint64_t>(link.rank()) << 40);
    }

    void serve() {
        // No spinning: this thread shares its cores with the rank's worker processes and the
        // local pools' I/O threads, which would lose to a spinning poller the CPU they need to
        // produce what it waits for; short sleeps instead (answers wake it early, see answer()).
        PollBackoff backoff(0, 200);
        // But a pool served in this process has no worker process to take the CPU from: while
        // its chunks are short, the loop polls back to back for a while after its last progress
        // (as a hand-written MPI worker's MPI_Recv does), so that a request is run as it
        // arrives rather than after a sleep (waking takes tens of microseconds on a virtual
        // machine). Not for longer chunks: the next one mostly waits here already (rank 0 sends
        // one ahead), and a thread that spins loses the CPU to those that sleep when its next
        // task needs it (one A/B on a loaded 2-core VM: 100 us tasks took 1.45-1.55 ms each
        // with the spin, 1.11-1.39 without; trivial ones 4-9 us with it, 4.5-11 without).
        PollBackoff in_rank_backoff(100, 200);
        const Heartbeat heartbeat(link_); // stops before this returns, so before MPI ends
        std::vector<MpiMessage> arrived;
        for (;;) {
            // Everything that has arrived, so that the requests among it reach the local pools
            // together (a batch from rank 0 arrives as its messages, one after another).
            arrived.clear();
            link_.receive_all(arrived);
            std::vector<MpiMessage> requests;
            for (MpiMessage& message : arrived) {
                if (message.tag == MpiTag::run) {
                    requests.push_back(std::move(message));
                    continue;
                }
                submit_requests(requests); // before a close or terminate of their pool
                requests.clear();
                if (!handle(message)) {
                    return;
                }
            }
            submit_requests(requests);
            const bool ran = run_in_rank_chunks();
            drop_idle_jobs();
            const bool sending =
                link_.with_link([](MpiLink& link) { return link.sends_need_polling(); });
            if (!arrived.empty() || ran) {
                backoff.reset();
                in_rank_backoff.reset();
                continue;
            }
            if (sending) {
                continue; // a large message leaves in pieces, each needing a poll: no sleep
            }
            if (pools_.empty()) {
                link_.wait(2000); // idle: nothing comes but rank 0's next pool, or the end
            } else if (link_.workers_busy()) {
                // Every worker here has a chunk (and rank 0 may have sent more ahead): the
                // answers wake this when a message waits or a worker runs out of chunks; the
                // timeout only bounds how late a close or terminate is seen.
                link_.wait(1000);
            } else {
                const bool short_in_rank = !in_rank_pools_.empty() && in_rank_chunks_short_;
                link_.wait(short_in_rank ? in_rank_backoff.next_wait_us() : backoff.next_wait_us());
            }
        }
    }

  private:
    /// A pool of rank 0's as this rank serves it: in worker processes of its own (a local
    /// process pool), or in this process (PoolOptions::in_rank). Both take the same calls.
    using LocalPool = std::variant<std::unique_ptr<ProcessBackend>, std::unique_ptr<InRankPool>>;

    template <class Use>
    static decltype(auto) with(LocalPool& pool, Use&& use) {
        return std::visit([&](auto& backend) -> decltype(auto) { return use(*backend); }, pool);
    }

    /// Runs the chunks queued for the pools served in this process, until none is left or a
    /// message waits that may end or cancel their pool (the answers take in the requests that
    /// arrive meanwhile). True if it ran any.
    bool run_in_rank_chunks() {
        bool ran = false;
        for (InRankPool* pool : in_rank_pools_) {
            while (!link_.has_messages_for_serving_loop() && pool->run_next()) {
                ran = true;
                in_rank_chunks_short_ = pool->last_run() < short_in_rank_chunk;
            }
        }
        return ran;
    }

    // Below this, the serving loop polls back to back for the next chunk (see serve()).
    static constexpr std::chrono::nanoseconds short_in_rank_chunk = std::chrono::microseconds(20);

    /// False once rank 0 says the job ends.
    bool handle(MpiMessage& message) {
        WireReader in(message.payload.data(), message.payload.size());
        if (message.tag == MpiTag::shutdown) {
            std::map<std::uint64_t, LocalPool> pools;
            {
                std::lock_guard lock(mutex_);
                pools.swap(pools_);
            }
            in_rank_pools_.clear();
            for (auto& [id, pool] : pools) {
                with(pool, [](auto& backend) {
                    backend.terminate();
                    backend.join();
                });
            }
            drop_idle_jobs(); // all of them: every chunk has settled
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
        case MpiTag::cancel:
            cancel(pool, in.read<std::uint64_t>());
            break;
        default:
            MPROC_TRACE_EVENT("mpi rank %d: unexpected message tag %d ignored", rank_,
                              static_cast<int>(message.tag));
            break;
        }
        return true;
    }

    void send(MpiTag tag, WireWriter& message) {
        link_.with_link([&](MpiLink& link) { link.send(0, tag, std::move(message.bytes())); });
    }

    void open(std::uint64_t pool, WireReader& in) {
        WireWriter reply;
        reply.write(pool);
        try {
            const auto program = in.read<std::uint64_t>();
            const auto workers = in.read<std::uint64_t>();
            const auto max_tasks_per_child = in.read<std::uint64_t>();
            const bool in_rank = in.read<std::uint8_t>() != 0;
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
            LocalPool local;
            InRankPool* served_here = nullptr;
            if (in_rank) {
                // Rank 0 gives such a pool at most one worker per rank: this process.
                auto served = std::make_unique<InRankPool>(initializer, next_worker_id());
                served_here = served.get();
                local = std::move(served);
            } else {
                ValidatedOptions options{.workers = workers,
                                         .initializer = {},
                                         .max_tasks_per_child = max_tasks_per_child,
                                         .start_method = StartMethod::fork};
                if (initializer) {
                    options.initializer = Initializer(std::move(initializer));
                }
                // Before the pool forks: its fork server and worker processes inherit the
                // binding.
                if (widen_default_binding(link_.workers_here() + workers)) {
                    MPROC_TRACE_EVENT("mpi rank %d: bound by mpirun's default to fewer CPUs "
                                      "than its worker processes; now on %zu",
                                      rank_, cpu_count());
                }
                local = std::make_unique<ProcessBackend>(std::move(options));
            }
            {
                std::lock_guard lock(mutex_);
                pools_.emplace(pool, std::move(local));
            }
            if (served_here != nullptr) {
                in_rank_pools_.push_back(served_here);
            }
            link_.workers_changed(static_cast<std::ptrdiff_t>(workers));
            MPROC_TRACE_EVENT("mpi rank %d: pool %llu opened with %llu workers%s", rank_,
                              static_cast<unsigned long long>(pool),
                              static_cast<unsigned long long>(workers),
                              in_rank ? " (in this process)" : " (worker processes)");
        } catch (const std::exception& error) {
            reply.write_string(error.what());
            send(MpiTag::refused, reply);
            return;
        }
        reply.write_string(host_);
        send(MpiTag::opened, reply);
    }

    /// From the serving loop or a local pool's I/O thread: hands `requests` to their pools, one
    /// submit per pool and call of rank 0's.
    void submit_requests(std::vector<MpiMessage>& requests) override {
        if (requests.empty()) {
            return;
        }
        std::map<std::pair<std::uint64_t, std::uint64_t>,
                 std::vector<std::pair<std::uint64_t, std::vector<std::byte>>>>
            by_call;
        for (const MpiMessage& message : requests) {
            WireReader in(message.payload.data(), message.payload.size());
            const auto pool = in.read<std::uint64_t>();
            const auto id = in.read<std::uint64_t>();
            const auto call = in.read<std::uint64_t>();
            const std::size_t size = in.remaining();
            const std::byte* request = in.take(size);
            by_call[{pool, call}].emplace_back(id, std::vector<std::byte>(request, request + size));
        }
        std::lock_guard lock(mutex_);
        for (auto& [key, calls_requests] : by_call) {
            const auto [pool, call] = key;
            RelayJob*& job = relay_jobs_[key];
            if (job == nullptr) {
                job = new RelayJob(link_, where_, pool); // the map's reference: drop_idle_jobs
            }
            link_.chunks_arriving(calls_requests.size());
            std::vector<Chunk>& chunks = job->add(std::move(calls_requests));
            Chunk* first = chunks.data();
            const std::size_t count = chunks.size();
            const auto found = pools_.find(pool);
            if (found == pools_.end() || !with(found->second, [&](auto& backend) {
                    return backend.submit(ChunkBatch(first, count));
                })) {
                const auto refusal = std::make_exception_ptr(
                    PoolNotRunning("mproc: " + where_ + " serves no such pool"));
                for (std::size_t i = 0; i < count; ++i) { // the last one frees `chunks`
                    job->cancel_chunk(first[i], refusal);
                }
            }
        }
    }

    /// Lets go of the jobs with no chunk here (their calls may have ended on rank 0; if not,
    /// the next chunk makes a new one).
    void drop_idle_jobs() {
        std::lock_guard lock(mutex_);
        std::erase_if(relay_jobs_, [](auto& entry) {
            if (!entry.second->idle()) {
                return false;
            }
            entry.second->release();
            return true;
        });
    }

    /// Rank 0 cancelled one of its calls: the local pool drops the call's chunks and kills the
    /// worker processes running them. The call's job leaves the map first, so that a later call
    /// of rank 0's at the same address gets a job of its own.
    void cancel(std::uint64_t pool, std::uint64_t call) {
        JobRef<RelayJob> job;
        LocalPool* backend = nullptr; // only this thread removes pools (end)
        {
            std::lock_guard lock(mutex_);
            const auto found = relay_jobs_.find({pool, call});
            if (found == relay_jobs_.end()) {
                return; // every chunk of it has been answered already
            }
            job = JobRef<RelayJob>(found->second); // the map's reference
            relay_jobs_.erase(found);
            if (const auto served = pools_.find(pool); served != pools_.end()) {
                backend = &served->second;
            }
        }
        // Unlocked: the chunks it drops are answered at once, and answering may hand requests
        // over (submit_requests), which locks.
        if (backend != nullptr) {
            with(*backend, [&](auto& served) { static_cast<void>(served.cancel(*job)); });
        }
    }

    void end(std::uint64_t pool, bool terminate) {
        std::optional<LocalPool> backend;
        {
            // Out of the map first: an I/O thread handing requests over must not wait for this
            // one's join (nor find the pool: rank 0 sends none once it ends it).
            std::lock_guard lock(mutex_);
            if (const auto found = pools_.find(pool); found != pools_.end()) {
                backend = std::move(found->second);
                pools_.erase(found);
            }
        }
        if (backend) {
            if (auto* in_rank = std::get_if<std::unique_ptr<InRankPool>>(&*backend)) {
                std::erase(in_rank_pools_, in_rank->get());
            }
            // After join, every answer of the pool has been sent (a local process pool's I/O
            // thread is gone; an in-rank pool has run what was queued).
            const std::size_t workers = with(*backend, [&](auto& served) {
                if (terminate) {
                    served.terminate();
                } else {
                    served.close();
                }
                served.join();
                return served.worker_count();
            });
            link_.workers_changed(-static_cast<std::ptrdiff_t>(workers));
            drop_idle_jobs(); // the pool's: every chunk of it has settled
        }
        WireWriter reply;
        reply.write(pool);
        send(MpiTag::closed, reply);
        MPROC_TRACE_EVENT("mpi rank %d: pool %llu closed", rank_,
                          static_cast<unsigned long long>(pool));
    }

    RankLink link_;
    const int rank_;
    const std::string host_;
    const std::string where_;
    // The local pools and the relay jobs: changed by the serving loop, used by the I/O threads
    // that hand requests over too.
    std::mutex mutex_;
    std::map<std::uint64_t, LocalPool> pools_;
    // The pools served in this process, whose chunks the serving loop runs: its own (only this
    // thread opens and ends pools).
    std::vector<InRankPool*> in_rank_pools_;
    bool in_rank_chunks_short_ = false; // the last chunk run here ran under short_in_rank_chunk
    // The jobs of the calls with chunks here, by pool and call; the map holds a reference.
    std::map<std::pair<std::uint64_t, std::uint64_t>, RelayJob*> relay_jobs_;
};

} // namespace

void serve_worker_rank(MpiLink& link) { WorkerRank(link).serve(); }

} // namespace mproc::detail
