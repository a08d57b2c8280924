// SPDX-License-Identifier: MIT
#include "mproc/detail/mpi_backend.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mpi_link.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/recorder.hpp"
#include "mproc/detail/resumer.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wait_helper.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/worker_loss.hpp"
#include "mproc/errors.hpp"
#include "pipeline_window.hpp"
#include "portable_initializer.hpp"
#include "rank_silence.hpp"
#include "take_job_chunks.hpp"
#include "terminated_error.hpp"
#include "worker_server_hook.hpp"

namespace mproc::detail {
namespace {

/// serve_if_worker's MPI half: on an MPI rank, start MPI (a worker rank serves and exits there).
void serve_mpi_rank(int& /*argc*/, char**& /*argv*/) {
    if (launched_by_mpi()) {
        start_mpi();
    }
}

// Registered here, in the file every program that uses MpiPool links, so that the core
// library's serve_if_worker serves MPI ranks without depending on MPI.
[[maybe_unused]] const bool mpi_rank_server_registered =
    (register_worker_server(&serve_mpi_rank), true);

} // namespace

std::size_t mpi_worker_ranks() {
    const MpiLink& link = start_mpi();
    if (link.size() < 2) {
        throw Error("mproc: mproc::MpiPool needs at least one worker rank: start the program "
                    "with mpirun -n N, N >= 2 (it has " +
                    std::to_string(link.size()) + " rank)");
    }
    return static_cast<std::size_t>(link.size() - 1);
}

/// One MpiPool as the hub sees it. The members under "shared" are guarded by the hub's mutex;
/// the rest belong to the hub thread.
class MpiBackend::State {
  public:
    enum class Phase { opening, running, ending, ended };

    struct Rank {
        std::size_t workers = 0;   // worker processes of the pool on this rank
        std::size_t in_flight = 0; // chunks sent and not settled
        std::string origin;        // "MPI rank 2 (host node7)"
        // How many chunks per worker process are sent ahead of their answers, so that the rank
        // never waits a round trip for its next chunk, learnt from the round trips of one job's
        // chunks (pipeline_window.hpp).
        PipelineWindow window{mpi_window_policy};

        std::size_t capacity() const noexcept { return workers * window.depth(); }

        // Its worker processes as the pool's Recorder knows them: lanes first_lane, ... (one
        // per worker process), each with the pid seen on it (0: not yet known; lost_worker:
        // lost, its replacement not yet seen) and when its last answer came (a worker runs the
        // chunks sent ahead of its answers one at a time).
        std::size_t first_lane = 0;
        std::vector<long> lane_pids;
        std::vector<std::int64_t> lane_last_end;
    };

    struct Running {
        Chunk* chunk;
        int rank;
        Clock::time_point sent;
        std::size_t bytes; // its request
    };

    State(std::uint64_t id, ValidatedOptions options, int ranks)
        : id(id), options(std::move(options)), ranks(static_cast<std::size_t>(ranks)),
          recorder("mproc::MpiPool", this->options.workers, this->options) {
        // Worker processes round robin: rank 1 gets the first, rank 2 the second, ...
        for (std::size_t i = 0; i < this->options.workers; ++i) {
            this->ranks[1 + i % (this->ranks.size() - 1)].workers += 1;
        }
        std::size_t lane = 0;
        for (std::size_t rank = 1; rank < this->ranks.size(); ++rank) {
            Rank& r = this->ranks[rank];
            r.origin = "MPI rank " + std::to_string(rank);
            r.first_lane = lane;
            r.lane_pids.assign(r.workers, 0);
            r.lane_last_end.assign(r.workers, 0);
            lane += r.workers;
            name_lanes(r);
        }
    }

    void name_lanes(const Rank& rank) {
        for (std::size_t i = 0; i < rank.workers; ++i) {
            recorder.name_lane(rank.first_lane + i, rank.origin + " worker " + std::to_string(i));
        }
    }

    /// The rank opened the pool: its workers start now, their pids still unknown.
    void rank_opened(Rank& rank) {
        name_lanes(rank);
        for (std::size_t i = 0; i < rank.workers; ++i) {
            recorder.worker_started(rank.first_lane + i, 0);
        }
    }

    /// The rank's lane of worker process `pid`, learnt from its answers. A pid not seen before
    /// is one of the workers started as the rank opened (lane pid 0), or the replacement of one
    /// lost (lane pid `lost_worker`); with neither left, the rank replaced a worker unseen
    /// (retired after max_tasks_per_child, or killed for a cancel): the lane idle longest was
    /// its.
    static constexpr long lost_worker = -1;
    std::size_t lane_of(Rank& rank, long pid) {
        if (rank.workers == 0) {
            return 0;
        }
        const auto at = [&](std::size_t i) { return rank.first_lane + i; };
        const auto slot_of = [&](long wanted) {
            return static_cast<std::size_t>(
                std::find(rank.lane_pids.begin(), rank.lane_pids.end(), wanted) -
                rank.lane_pids.begin());
        };
        if (const std::size_t known = slot_of(pid); known < rank.workers) {
            return at(known);
        }
        std::size_t taken = slot_of(0);
        if (taken < rank.workers) {
            recorder.worker_identified(at(taken), pid);
        } else {
            taken = slot_of(lost_worker);
            if (taken == rank.workers) {
                taken = static_cast<std::size_t>(
                    std::min_element(rank.lane_last_end.begin(), rank.lane_last_end.end()) -
                    rank.lane_last_end.begin());
                recorder.worker_ended(at(taken), options.max_tasks_per_child != 0
                                                     ? TimelineEvent::Kind::worker_retired
                                                     : TimelineEvent::Kind::worker_lost);
            }
            recorder.worker_started(at(taken), pid);
        }
        rank.lane_pids[taken] = pid;
        return at(taken);
    }

    /// Tells the recorder how a chunk that ran on worker `pid` of `rank` ended (before the
    /// chunk is settled, which may free it).
    void record(Rank& rank, long pid, const Running& running, ChunkEnd end,
                std::size_t answer_bytes) {
        if (rank.workers != 0) {
            record_on(rank, lane_of(rank, pid), running, end, answer_bytes);
        }
    }

    /// A worker process of `rank` died running the chunk: the chunk ends lost on its lane, which
    /// its replacement takes.
    void record_loss(Rank& rank, long pid, const Running& running) {
        if (rank.workers == 0) {
            return;
        }
        const std::size_t lane = lane_of(rank, pid);
        record_on(rank, lane, running, ChunkEnd::lost, 0);
        recorder.worker_ended(lane, TimelineEvent::Kind::worker_lost);
        rank.lane_pids[lane - rank.first_lane] = lost_worker;
    }

    void record_on(Rank& rank, std::size_t lane, const Running& running, ChunkEnd end,
                   std::size_t answer_bytes) {
        std::int64_t& last_end = rank.lane_last_end[lane - rank.first_lane];
        const std::int64_t now = recorder.now_ns();
        recorder.chunk_ended(lane, Recorder::facts_of(*running.chunk), end,
                             {.start_ns = std::max(recorder.ns_at(running.sent), last_end),
                              .end_ns = now,
                              .bytes_in = running.bytes,
                              .bytes_out = answer_bytes});
        last_end = now;
    }

    /// When the pool's next answer is due at the earliest, for the hub's polling: nullopt when
    /// it cannot tell, or when answers stream (a rank with a window deeper than 1 answers every
    /// few microseconds). A rank with a window one deep answers a chunk about its time after
    /// sending it; that estimate is taken from round trips (an upper bound), so three quarters
    /// of it count.
    std::optional<Clock::time_point> next_answer_due() const {
        std::optional<Clock::time_point> due;
        for (const auto& [request, chunk] : running) {
            const Rank& rank = ranks[static_cast<std::size_t>(chunk.rank)];
            if (rank.window.estimate() == 0 || rank.window.depth() > 1) {
                return std::nullopt;
            }
            // (The estimate is in microseconds: mpi_window_policy.)
            const auto at =
                chunk.sent +
                std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double, std::micro>(rank.window.estimate() * 0.75));
            due = due ? std::min(*due, at) : at;
        }
        return due;
    }

    const std::uint64_t id;
    const ValidatedOptions options;

    // ---- shared
    std::deque<Chunk*> queue;
    std::vector<JobRef<Job>> cancelled; // calls cancelled since the hub last looked
    bool closed = false;
    bool terminating = false;
    Phase phase = Phase::opening;
    std::string refusal; // why a rank refused to open the pool
    std::condition_variable phase_changed;

    // ---- hub thread only
    std::vector<Rank> ranks; // indexed by rank; [0] unused
    std::unordered_map<std::uint64_t, Running> running;
    std::uint64_t next_request = 1;
    std::size_t awaited_replies = 0; // opened/refused, or closed, still to come
    bool open_sent = false;
    bool end_sent = false;

    Recorder recorder; // its own lanes are the hub's; its statistics anyone's
};

namespace {

/// The one thread of rank 0 that talks MPI, for every MpiPool of the program.
class Hub {
  public:
    static Hub& instance() {
        static Hub* hub = [] {
            MpiLink& link = start_mpi();   // first, so MPI ends after the hub stops
            auto* created = new Hub(link); // never destroyed: it is stopped at exit
            std::atexit([] { Hub::instance().stop(); });
            return created;
        }();
        return *hub;
    }

    std::shared_ptr<MpiBackend::State> open(ValidatedOptions options) {
        std::unique_lock lock(mutex_);
        auto state =
            std::make_shared<MpiBackend::State>(next_pool_++, std::move(options), link_.size());
        pools_.push_back(state);
        work_pending_ = true;
        wake_.notify_one();
        state->phase_changed.wait(lock, [&] {
            return state->phase == MpiBackend::State::Phase::running ||
                   state->phase == MpiBackend::State::Phase::ended;
        });
        if (state->phase == MpiBackend::State::Phase::ended) {
            throw Error(state->refusal);
        }
        return state;
    }

    bool submit(MpiBackend::State& pool, ChunkBatch chunks) {
        std::lock_guard lock(mutex_);
        if (pool.closed) {
            return false;
        }
        chunks.append_to(pool.queue);
        pool.recorder.queue_depth_seen(pool.queue.size());
        work_pending_ = true;
        wake_.notify_one();
        return true;
    }

    bool cancel(MpiBackend::State& pool, Job& job) {
        // A task running in a rank's own process cannot be stopped (killing it would end the
        // job): such a call is cancelled only while none of its chunks has left for a rank.
        if (!job.request_cancel(/*only_if_unstarted=*/pool.options.in_rank)) {
            return false;
        }
        std::deque<Chunk*> dropped;
        {
            std::lock_guard lock(mutex_);
            dropped = take_job_chunks(pool.queue, job);
            job.acquire();
            pool.cancelled.emplace_back(&job); // for the hub: its running chunks
            work_pending_ = true;
            wake_.notify_one();
        }
        for (Chunk* chunk : dropped) {
            chunk->job->cancel_chunk(*chunk, cancelled_call_error());
        }
        return true;
    }

    void close(MpiBackend::State& pool) {
        std::lock_guard lock(mutex_);
        pool.closed = true;
        work_pending_ = true;
        wake_.notify_one();
    }

    void terminate(MpiBackend::State& pool) {
        std::deque<Chunk*> dropped;
        {
            std::lock_guard lock(mutex_);
            if (pool.terminating) {
                return;
            }
            pool.closed = pool.terminating = true;
            dropped.swap(pool.queue);
            work_pending_ = true;
            wake_.notify_one();
        }
        for (Chunk* chunk : dropped) {
            chunk->job->cancel_chunk(*chunk, terminated_error());
        }
    }

    std::size_t queue_depth(MpiBackend::State& pool) {
        std::lock_guard lock(mutex_);
        return pool.queue.size();
    }

    void join(MpiBackend::State& pool) {
        std::unique_lock lock(mutex_);
        pool.phase_changed.wait(lock,
                                [&] { return pool.phase == MpiBackend::State::Phase::ended; });
    }

  private:
    explicit Hub(MpiLink& link) : link_(link), thread_(&Hub::run, this) {}

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            wake_.notify_one();
        }
        thread_.join();
        resumer_.stop();
    }

    void run() {
        refuse_waits_on_this_thread(); // callbacks run here: a wait would wait for this thread
        resumer_.serve_this_thread();  // coroutines do not: they go on on the resumer's thread
        PollBackoff backoff(100, 500);
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                if (stopping_) {
                    break;
                }
                work_pending_ = false;
                snapshot_ = pools_;
            }
            bool progressed = false;
            bool expecting = link_.sending();
            for (const auto& pool : snapshot_) {
                progressed |= step(*pool);
                expecting |= pool->awaited_replies != 0 || !pool->running.empty();
            }
            const auto now = SilenceWatch::Clock::now();
            for (int i = 0; i < 64; ++i) { // then let local work in again
                MpiMessage message;
                if (!link_.receive(message)) {
                    break;
                }
                silence_.heard(message.source, now);
                route(message);
                progressed = true;
            }
            if (silence_.due(now)) {
                end_job_if_a_rank_is_silent(now);
            }
            if (progressed) {
                backoff.reset();
                continue;
            }
            // When every running chunk is long, sleep until shortly before the first is due
            // instead of polling, then poll back to back (backoff.expect).
            std::optional<Clock::time_point> due;
            bool known = true; // every pool with running chunks can tell
            for (const auto& pool : snapshot_) {
                const auto at = pool->next_answer_due();
                if (at) {
                    due = due ? std::min(*due, *at) : *at;
                } else if (!pool->running.empty()) {
                    known = false;
                }
            }
            backoff.expect(known ? due : std::nullopt);
            std::unique_lock lock(mutex_);
            if (work_pending_ || stopping_) {
                continue;
            }
            if (!expecting) {
                // Nothing can arrive that is not an answer to something we send: sleep until
                // a pool has work.
                wake_.wait(lock, [&] { return work_pending_ || stopping_; });
            } else if (const unsigned us = link_.sends_need_polling() ? 0 : backoff.next_wait_us();
                       us != 0) {
                // (A large message leaves in pieces, each needing a poll here: no sleep while
                // one is on its way.)
                wake_.wait_for(lock, std::chrono::microseconds(us),
                               [&] { return work_pending_ || stopping_; });
            }
        }
        MPROC_TRACE_EVENT("mpi hub stopped");
    }

    // ---- one pool's moves (hub thread) --------------------------------------------------

    /// Sends what the pool's state asks for; true if anything happened.
    bool step(MpiBackend::State& pool) {
        using Phase = MpiBackend::State::Phase;
        bool terminating;
        bool closed;
        Phase phase;
        std::vector<JobRef<Job>> cancelled;
        {
            std::lock_guard lock(mutex_);
            terminating = pool.terminating;
            closed = pool.closed;
            phase = pool.phase;
            cancelled.swap(pool.cancelled);
        }
        for (const JobRef<Job>& job : cancelled) {
            stop_running_chunks(pool, *job);
        }
        if (phase == Phase::opening && !pool.open_sent) {
            send_open(pool);
            return true;
        }
        if (phase != Phase::running) {
            return false;
        }
        if (terminating) {
            // Chunks running on the ranks end here and now; their results, if they still
            // come, are dropped.
            auto running = std::move(pool.running);
            pool.running.clear();
            for (auto& [request, entry] : running) {
                entry.chunk->job->cancel_chunk(*entry.chunk, terminated_error());
            }
            end(pool, MpiTag::terminate);
            return true;
        }
        bool progressed = dispatch(pool);
        if (closed && pool.running.empty()) {
            std::lock_guard lock(mutex_);
            if (!pool.queue.empty()) {
                return progressed;
            }
        } else {
            return progressed;
        }
        end(pool, MpiTag::close);
        return true;
    }

    /// A cancelled call's chunks running on the ranks end here and now; the ranks are told to
    /// kill the worker processes running them (their answers, if they still come, are dropped).
    void stop_running_chunks(MpiBackend::State& pool, Job& job) {
        std::vector<bool> told(pool.ranks.size(), false);
        for (auto entry = pool.running.begin(); entry != pool.running.end();) {
            if (entry->second.chunk->job != &job) {
                ++entry;
                continue;
            }
            const auto rank = static_cast<std::size_t>(entry->second.rank);
            Chunk* chunk = entry->second.chunk;
            --pool.ranks[rank].in_flight;
            entry = pool.running.erase(entry);
            if (!told[rank]) {
                told[rank] = true;
                WireWriter message;
                message.write(pool.id);
                message.write(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&job)));
                link_.send(static_cast<int>(rank), MpiTag::cancel, std::move(message.bytes()));
            }
            chunk->job->cancel_chunk(*chunk, cancelled_call_error());
        }
    }

    void send_open(MpiBackend::State& pool) {
        pool.open_sent = true;
        for (std::size_t rank = 1; rank < pool.ranks.size(); ++rank) {
            if (pool.ranks[rank].workers == 0) {
                continue;
            }
            WireWriter message;
            message.write(pool.id);
            message.write(this_program_id());
            message.write(std::uint64_t{pool.ranks[rank].workers});
            message.write(std::uint64_t{pool.options.max_tasks_per_child});
            message.write(static_cast<std::uint8_t>(pool.options.in_rank));
            const std::vector<std::byte>& initializer = pool.options.initializer.portable();
            message.write_bytes(initializer.data(), initializer.size());
            link_.send(static_cast<int>(rank), MpiTag::open, std::move(message.bytes()));
            ++pool.awaited_replies;
        }
    }

    /// Tells every rank that serves the pool to close (or terminate) it.
    void end(MpiBackend::State& pool, MpiTag how) {
        pool.end_sent = true;
        set_phase(pool, MpiBackend::State::Phase::ending);
        for (std::size_t rank = 1; rank < pool.ranks.size(); ++rank) {
            if (pool.ranks[rank].workers != 0) {
                WireWriter message;
                message.write(pool.id);
                link_.send(static_cast<int>(rank), how, std::move(message.bytes()));
                ++pool.awaited_replies;
            }
        }
        if (pool.awaited_replies == 0) {
            finish(pool);
        }
    }

    /// Gives queued chunks to ranks with room in their window, the least loaded first. A rank
    /// is refilled once half its window is free, then to the full window: the chunks it gets
    /// leave in one MPI message (MpiLink batches one turn's sends), and it still has the other
    /// half to run meanwhile.
    bool dispatch(MpiBackend::State& pool) {
        bool progressed = false;
        const auto now = Clock::now();
        auto free_slots = [](const MpiBackend::State::Rank& rank) {
            return rank.capacity() - std::min(rank.in_flight, rank.capacity());
        };
        std::vector<bool>& filling = filling_;
        filling.assign(pool.ranks.size(), false);
        for (std::size_t rank = 1; rank < pool.ranks.size(); ++rank) {
            const MpiBackend::State::Rank& candidate = pool.ranks[rank];
            filling[rank] = candidate.window.refill_due(candidate.in_flight, candidate.workers);
        }
        for (;;) {
            std::size_t chosen = 0;
            for (std::size_t rank = 1; rank < pool.ranks.size(); ++rank) {
                if (filling[rank] && free_slots(pool.ranks[rank]) != 0 &&
                    (chosen == 0 ||
                     free_slots(pool.ranks[rank]) > free_slots(pool.ranks[chosen]))) {
                    chosen = rank;
                }
            }
            if (chosen == 0) {
                return progressed;
            }
            MpiBackend::State::Rank* rank = &pool.ranks[chosen];
            Chunk* chunk;
            {
                std::lock_guard lock(mutex_);
                if (pool.queue.empty()) {
                    return progressed;
                }
                chunk = pool.queue.front();
                pool.queue.pop_front();
            }
            progressed = true;
            if (std::exception_ptr reason = reason_not_to_run(*chunk->job)) {
                chunk->job->cancel_chunk(*chunk, std::move(reason));
                continue;
            }
            const std::uint64_t request = pool.next_request++;
            WireWriter message;
            message.write(pool.id);
            message.write(request);
            // Which call of the caller's the chunk belongs to (only compared, on the rank): a
            // call's chunks are alike, and the rank's process pool learns how deep to pipeline
            // them per call.
            message.write(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(chunk->job)));
            try {
                wire_of(*chunk->job).encode_chunk(*chunk, message);
            } catch (...) {
                chunk->job->cancel_chunk(*chunk, std::current_exception()); // cereal refused
                continue;
            }
            const int destination = static_cast<int>(chosen);
            const std::size_t bytes = message.bytes().size();
            link_.send(destination, MpiTag::run, std::move(message.bytes()));
            if (chunk->first == 0) {
                // A call's first chunk: the call is new, and one that has ended may have left
                // its address to it. What was learnt under that address is another call's.
                for (auto& other : pool.ranks) {
                    if (other.window.measures(chunk->job)) {
                        other.window.forget_job();
                    }
                }
            }
            rank->window.measure(chunk->job);
            ++rank->in_flight;
            pool.running.emplace(request,
                                 MpiBackend::State::Running{chunk, destination, now, bytes});
        }
    }

    /// Ends the job if a worker rank that holds chunks has been silent for too long: stopped,
    /// frozen or cut off where nothing tells (rank_silence.hpp). Its chunks cannot come back,
    /// and MPI_Finalize would wait for it for ever.
    void end_job_if_a_rank_is_silent(SilenceWatch::Clock::time_point now) {
        const auto silent = silence_.look(now, [&](int rank) {
            return std::any_of(snapshot_.begin(), snapshot_.end(), [&](const auto& pool) {
                return pool->ranks[static_cast<std::size_t>(rank)].in_flight != 0;
            });
        });
        if (!silent) {
            return;
        }
        std::string origin = "MPI rank " + std::to_string(*silent);
        for (const auto& pool : snapshot_) {
            const std::string& known = pool->ranks[static_cast<std::size_t>(*silent)].origin;
            if (known.size() > origin.size()) {
                origin = known; // "MPI rank 2 (host node7)": with the host the rank told
            }
        }
        link_.abort_job(
            "mproc: " + origin + " has sent nothing for " +
            std::to_string(silence_.limit().count()) +
            " s while it held chunks of mproc::MpiPool's: its processes are stopped or frozen, "
            "or its host is cut off. Ending the MPI job (MPI_Abort). MPROC_MPI_RANK_TIMEOUT "
            "sets the limit in seconds; a map made with mproc::resumable goes on where it "
            "stopped when run again.");
    }

    void route(MpiMessage& message) {
        if (message.tag == MpiTag::alive) {
            return; // heard: that was all it had to say
        }
        WireReader in(message.payload.data(), message.payload.size());
        const auto id = in.read<std::uint64_t>();
        const auto found = std::find_if(snapshot_.begin(), snapshot_.end(),
                                        [&](const auto& pool) { return pool->id == id; });
        if (found == snapshot_.end()) {
            return; // a pool that has ended: a result of a terminated chunk, say
        }
        MpiBackend::State& pool = **found;
        MpiBackend::State::Rank& rank = pool.ranks[static_cast<std::size_t>(message.source)];
        switch (message.tag) {
        case MpiTag::opened:
            rank.origin += " (host " + in.read_string() + ")";
            pool.rank_opened(rank);
            reply_to_open(pool);
            break;
        case MpiTag::refused:
            if (pool.refusal.empty()) {
                pool.refusal = in.read_string();
            }
            reply_to_open(pool);
            break;
        case MpiTag::done:
        case MpiTag::failed:
        case MpiTag::lost:
        case MpiTag::unserved:
            settle(pool, rank, message.tag, in);
            break;
        case MpiTag::closed:
            if (--pool.awaited_replies == 0) {
                finish(pool);
            }
            break;
        default:
            MPROC_TRACE_EVENT("mpi hub: unexpected tag %d from rank %d ignored",
                              static_cast<int>(message.tag), message.source);
            break;
        }
    }

    void reply_to_open(MpiBackend::State& pool) {
        if (--pool.awaited_replies != 0) {
            return;
        }
        if (pool.refusal.empty()) {
            set_phase(pool, MpiBackend::State::Phase::running);
        } else {
            end(pool, MpiTag::close); // the ranks that opened it close it again
        }
    }

    void settle(MpiBackend::State& pool, MpiBackend::State::Rank& rank, MpiTag tag,
                WireReader& in) {
        const auto request = in.read<std::uint64_t>();
        const auto found = pool.running.find(request);
        if (found == pool.running.end()) {
            return; // terminated meanwhile: already settled here
        }
        const MpiBackend::State::Running running = found->second;
        Chunk* chunk = running.chunk;
        if (rank.window.measures(chunk->job)) {
            const std::size_t depth = rank.window.depth();
            rank.window.learn_from_answer(found->second.sent, Clock::now(), rank.workers);
            if (rank.window.depth() != depth) {
                MPROC_TRACE_EVENT("mpi hub: %s: window now %zu chunks per worker, %.1f us per "
                                  "chunk",
                                  rank.origin.c_str(), rank.window.depth(), rank.window.estimate());
            }
        }
        pool.running.erase(found);
        --rank.in_flight;
        RemoteOriginScope origin(rank.origin);
        if (tag == MpiTag::lost) {
            lose(pool, running, rank, in);
            return;
        }
        if (tag == MpiTag::unserved) {
            pool.record(rank, rank.lane_pids.empty() ? 0 : rank.lane_pids[0], running,
                        ChunkEnd::lost, 0);
            // Made first, so that the temporary WorkerLost (which shares its message's reference
            // counted buffer with the exception) is gone before the caller can read it: this
            // thread must not hold the last reference (see ProcessBackend).
            std::exception_ptr lost = std::make_exception_ptr(WorkerLost(in.read_string()));
            chunk->job->cancel_chunk(*chunk, std::move(lost));
            return;
        }
        const auto worker_pid = static_cast<long>(in.read<std::int64_t>());
        pool.record(rank, worker_pid, running,
                    tag == MpiTag::done ? ChunkEnd::finished : ChunkEnd::failed, in.remaining());
        if (tag == MpiTag::done) {
            // A response that does not decode ends its chunk with the decoding error; the
            // worker process that sent it is another rank's, which replaces it if it dies.
            static_cast<void>(wire_of(*chunk->job).complete_chunk(*chunk, in, worker_pid, nullptr));
            return;
        }
        std::exception_ptr reason;
        try {
            reason = decode_exception(in, worker_pid, chunk->job->task_index(*chunk, 0));
        } catch (...) {
            reason = std::current_exception();
        }
        chunk->job->cancel_chunk(*chunk, std::move(reason)); // moved: the caller holds the last
    }

    /// A worker process of the rank died running the chunk: the job makes the caller's
    /// WorkerLost from what the rank relayed (the loss, and the outcomes the worker finished).
    static void lose(MpiBackend::State& pool, const MpiBackend::State::Running& running,
                     MpiBackend::State::Rank& rank, WireReader& in) {
        Chunk& chunk = *running.chunk;
        WorkerLoss loss;
        std::exception_ptr garbled;
        try {
            loss = decode_worker_loss(in);
        } catch (...) {
            garbled = std::current_exception();
        }
        if (garbled) {
            chunk.job->cancel_chunk(chunk, std::move(garbled)); // moved: see settle
            return;
        }
        loss.origin = rank.origin;
        pool.record_loss(rank, loss.worker_pid, running);
        wire_of(*chunk.job).lose_chunk(chunk, std::move(loss), in);
    }

    void finish(MpiBackend::State& pool) {
        for (std::size_t lane = 0; lane < pool.recorder.lanes(); ++lane) {
            pool.recorder.worker_stopped(lane); // the ranks' workers end with the pool
        }
        for (std::size_t rank = 1; rank < pool.ranks.size(); ++rank) {
            MPROC_TRACE_EVENT("mpi hub: pool %llu ended; rank %zu: window %zu chunks per worker, "
                              "%.1f us per chunk",
                              static_cast<unsigned long long>(pool.id), rank,
                              pool.ranks[rank].window.depth(), pool.ranks[rank].window.estimate());
        }
        set_phase(pool, MpiBackend::State::Phase::ended);
        std::lock_guard lock(mutex_);
        std::erase_if(pools_, [&](const auto& candidate) { return candidate.get() == &pool; });
    }

    void set_phase(MpiBackend::State& pool, MpiBackend::State::Phase phase) {
        std::lock_guard lock(mutex_);
        pool.phase = phase;
        pool.phase_changed.notify_all();
    }

    MpiLink& link_;
    std::mutex mutex_; // guards next_pool_, pools_, work_pending_, stopping_, States' shared part
    std::uint64_t next_pool_ = 1;
    std::condition_variable wake_;
    std::vector<std::shared_ptr<MpiBackend::State>> pools_;
    bool work_pending_ = false;
    bool stopping_ = false;

    // The pools as the hub thread saw them at the top of its loop: it works on this copy, so a
    // pool that has just ended is still found (and its late messages ignored).
    std::vector<std::shared_ptr<MpiBackend::State>> snapshot_;
    std::vector<bool> filling_; // dispatch's: which ranks it is refilling (kept: no allocation)
    Resumer resumer_;           // resumes coroutines whose result the hub thread ended
    SilenceWatch silence_{static_cast<std::size_t>(link_.size()), rank_silence_limit()};
    std::thread thread_;
};

} // namespace

MpiBackend::MpiBackend(ValidatedOptions options) : worker_count_(options.workers) {
    refuse_unsupported_options(options,
                               {.pool = "mproc::MpiPool",
                                .why = "not yet (its worker ranks' process pools run without it)",
                                .kill_running_task = kills_running_tasks,
                                .retry_lost_task = false,
                                .limit_worker_memory = false});
    require_portable(options.initializer);        // ranks are other programs: as for spawn
    rank_silence_limit();                         // a bad MPROC_MPI_RANK_TIMEOUT refused here
    const std::size_t ranks = mpi_worker_ranks(); // a clear error without worker ranks
    if (options.in_rank && options.workers > ranks) {
        throw std::invalid_argument(
            "mproc: in_rank runs each worker rank's tasks in the rank's own process, one at a "
            "time: at most one worker per worker rank (" +
            std::to_string(ranks) + "), not " + std::to_string(options.workers));
    }
    state_ = Hub::instance().open(std::move(options));
}

MpiBackend::~MpiBackend() {
    terminate();
    join();
}

bool MpiBackend::submit(ChunkBatch chunks) { return Hub::instance().submit(*state_, chunks); }
bool MpiBackend::cancel(Job& job) { return Hub::instance().cancel(*state_, job); }
void MpiBackend::close() { Hub::instance().close(*state_); }
void MpiBackend::terminate() { Hub::instance().terminate(*state_); }
void MpiBackend::join() { Hub::instance().join(*state_); }
Recorder& MpiBackend::recorder() noexcept { return state_->recorder; }
std::size_t MpiBackend::queue_depth() { return Hub::instance().queue_depth(*state_); }

} // namespace mproc::detail
