// SPDX-License-Identifier: MIT
#include "mpi_link.hpp"

#include <mpi.h>
#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "mpi_worker_rank.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

MPI_Comm& comm(void* communicator) { return *static_cast<MPI_Comm*>(communicator); }
MPI_Request& request_of(void* request) { return *static_cast<MPI_Request*>(request); }

MpiLink* the_link = nullptr;

/// Rank 0, at exit: the worker ranks are told to end, then MPI ends here too.
void end_mpi_job() noexcept {
    MpiLink& link = *the_link;
    for (int rank = 1; rank < link.size(); ++rank) {
        link.send(rank, MpiTag::shutdown, {});
    }
    link.flush();
    MPROC_TRACE_EVENT("mpi rank 0: worker ranks told to end; finalizing; it sent %llu messages in "
                      "%llu MPI messages",
                      static_cast<unsigned long long>(link.messages_sent),
                      static_cast<unsigned long long>(link.mpi_messages_sent));
    MPI_Finalize();
}

} // namespace

bool launched_by_mpi() noexcept {
    for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
        if (std::getenv(variable) != nullptr) {
            return true;
        }
    }
    return false;
}

MpiLink::MpiLink() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
        throw Error("mproc: MPI was started before mproc::MpiPool could start it: call "
                    "mproc::serve_if_worker(argc, argv) first in main, and leave MPI_Init and "
                    "MPI_Finalize to mproc");
    }
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        throw Error("mproc: MPI_Init_thread failed");
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        throw Error("mproc: this MPI library does not offer MPI_THREAD_SERIALIZED, which "
                    "mproc::MpiPool needs (its caller talks MPI from a thread of its own)");
    }
    communicator_ = new MPI_Comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm(communicator_));
    MPI_Comm_rank(comm(communicator_), &rank_);
    MPI_Comm_size(comm(communicator_), &size_);
    char name[MPI_MAX_PROCESSOR_NAME];
    int length = 0;
    MPI_Get_processor_name(name, &length);
    host_.assign(name, static_cast<std::size_t>(std::max(length, 0)));
}

void MpiLink::send(int destination, MpiTag tag, WireBytes payload) {
    queued_.push_back({destination, tag, std::move(payload)});
    ++messages_sent;
}

void MpiLink::send_queued() {
    if (queued_.empty()) {
        return;
    }
    // One destination after another, each one's messages in the order they were sent (MPI keeps
    // the order of messages between two ranks; a batch keeps its own).
    std::stable_sort(queued_.begin(), queued_.end(),
                     [](const auto& a, const auto& b) { return a.destination < b.destination; });
    // A batch stays within what Open MPI sends eagerly: the receiver takes such a send in
    // without the sender's help, while a larger one goes in pieces (rendezvous) that move only
    // while the sender polls (a worker rank's serving loop would spin on the core its worker
    // processes need). A payload larger than that leaves alone: copying it into a batch would
    // cost more than a message.
    constexpr std::size_t batch_limit = eager_message_limit;
    constexpr std::size_t packed_header = sizeof(std::int32_t) + sizeof(std::uint64_t);
    std::vector<QueuedMessage*> batch;
    std::size_t batch_bytes = 0;
    auto send_batch = [&] {
        if (batch.size() == 1) {
            start_send(batch[0]->destination, batch[0]->tag, std::move(batch[0]->payload));
        } else if (batch.size() > 1) {
            WireWriter packed;
            for (QueuedMessage* message : batch) {
                packed.write(static_cast<std::int32_t>(message->tag));
                packed.write(static_cast<std::uint64_t>(message->payload.size()));
                packed.write_bytes(message->payload.data(), message->payload.size());
            }
            start_send(batch[0]->destination, MpiTag::batch, std::move(packed.bytes()));
        }
        batch.clear();
        batch_bytes = 0;
    };
    for (QueuedMessage& message : queued_) {
        const std::size_t bytes = packed_header + message.payload.size();
        if (!batch.empty() &&
            (batch[0]->destination != message.destination || batch_bytes + bytes > batch_limit)) {
            send_batch();
        }
        if (bytes > batch_limit) {
            start_send(message.destination, message.tag, std::move(message.payload));
        } else {
            batch.push_back(&message);
            batch_bytes += bytes;
        }
    }
    send_batch();
    queued_.clear();
}

void MpiLink::start_send(int destination, MpiTag tag, WireBytes payload) {
    ++mpi_messages_sent;
    if (payload.size() > eager_message_limit) {
        ++large_sends_;
    }
    sends_.push_back({std::move(payload), new MPI_Request});
    PendingSend& send = sends_.back();
    MPI_Isend(send.payload.data(), static_cast<int>(send.payload.size()), MPI_BYTE, destination,
              static_cast<int>(tag), comm(communicator_), &request_of(send.request));
}

void MpiLink::progress() {
    // Sends complete in order for one destination and almost always in order overall: testing
    // from the front frees the finished ones without scanning the rest.
    while (!sends_.empty()) {
        int done = 0;
        MPI_Test(&request_of(sends_.front().request), &done, MPI_STATUS_IGNORE);
        if (!done) {
            return;
        }
        delete &request_of(sends_.front().request);
        if (sends_.front().payload.size() > eager_message_limit) {
            --large_sends_;
        }
        sends_.pop_front();
    }
}

void MpiLink::push() {
    send_queued();
    progress();
}

bool MpiLink::message_waiting() {
    int arrived = 0;
    if (unpacked_.empty()) {
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm(communicator_), &arrived, MPI_STATUS_IGNORE);
    }
    return !unpacked_.empty() || arrived != 0;
}

bool MpiLink::receive(MpiMessage& message) {
    push();
    if (!unpacked_.empty()) {
        message = std::move(unpacked_.front());
        unpacked_.pop_front();
        return true;
    }
    int arrived = 0;
    MPI_Message handle;
    MPI_Status status;
    MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm(communicator_), &arrived, &handle, &status);
    if (!arrived) {
        return false;
    }
    int size = 0;
    MPI_Get_count(&status, MPI_BYTE, &size);
    message.source = status.MPI_SOURCE;
    message.tag = static_cast<MpiTag>(status.MPI_TAG);
    message.payload.clear(); // its old bytes are not kept
    resize_bytes(message.payload, static_cast<std::size_t>(size));
    MPI_Mrecv(message.payload.data(), size, MPI_BYTE, &handle, MPI_STATUS_IGNORE);
    if (message.tag != MpiTag::batch) {
        return true;
    }
    // Only another rank of this program sends to mproc's communicator: a batch that does not
    // parse is a bug, and WireReader throws rather than read past its end.
    WireReader in(message.payload.data(), message.payload.size());
    while (in.remaining() != 0) {
        MpiMessage& part = unpacked_.emplace_back();
        part.source = message.source;
        part.tag = static_cast<MpiTag>(in.read<std::int32_t>());
        const auto part_size = static_cast<std::size_t>(in.read<std::uint64_t>());
        const std::byte* bytes = in.take(part_size);
        assign_bytes(part.payload, bytes, part_size);
    }
    message = std::move(unpacked_.front());
    unpacked_.pop_front();
    return true;
}

void MpiLink::flush() {
    send_queued();
    for (PendingSend& send : sends_) {
        MPI_Wait(&request_of(send.request), MPI_STATUS_IGNORE);
        delete &request_of(send.request);
    }
    sends_.clear();
    large_sends_ = 0;
}

void MpiLink::abort_job(const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, EXIT_FAILURE);
    std::abort(); // MPI_Abort does not return
}

MpiLink& start_mpi() {
    static std::once_flag started;
    std::call_once(started, [] {
        if (!launched_by_mpi()) {
            throw Error("mproc: mproc::MpiPool needs worker ranks: start the program with "
                        "mpirun -n N (N >= 2); rank 0 runs main, the other ranks serve the pool");
        }
        the_link = new MpiLink(); // never destroyed: it is used at exit
        MPROC_TRACE_EVENT("mpi rank %d of %d started on %s", the_link->rank(), the_link->size(),
                          the_link->host().c_str());
        if (the_link->rank() != 0) {
            serve_worker_rank(*the_link);
            the_link->flush();
            MPROC_TRACE_EVENT("mpi rank %d: finalizing; it sent %llu messages in %llu MPI messages",
                              the_link->rank(),
                              static_cast<unsigned long long>(the_link->messages_sent),
                              static_cast<unsigned long long>(the_link->mpi_messages_sent));
            MPI_Finalize();
            std::exit(0);
        }
        std::atexit(end_mpi_job);
    });
    return *the_link;
}

PollBackoff::PollBackoff(unsigned spin_us, unsigned longest_sleep_us)
    : spinning_(spin_us), longest_sleep_us_(longest_sleep_us) {
    // Sleeps of a few microseconds, not the default 50 us of timer slack: a poll loop's short
    // sleep sets the latency of every message it waits for.
    prctl(PR_SET_TIMERSLACK, 1000UL);
}

void PollBackoff::reset() noexcept {
    idle_polls_ = 0;
    last_progress_ = std::chrono::steady_clock::now();
}

void PollBackoff::expect(std::optional<Clock::time_point> when) noexcept {
    if (when != expected_) {
        idle_polls_ = 0; // a new due time: back to back around it, then back off afresh
    }
    expected_ = when;
}

unsigned PollBackoff::next_wait_us() noexcept {
    const auto now = Clock::now();
    if (expected_) {
        // Awake a little before the message is due: waking a sleeping thread (a halted virtual
        // CPU above all) takes tens of microseconds, and the estimate is rough.
        constexpr auto lead = std::chrono::microseconds(50);
        if (now < *expected_ - lead) {
            const auto until =
                std::chrono::ceil<std::chrono::microseconds>(*expected_ - lead - now);
            return static_cast<unsigned>(std::min<std::int64_t>(until.count(), longest_sleep_us_));
        }
        if (idle_polls_ == 0 && now < *expected_ + spinning_) {
            return 0;
        }
    }
    // Polls back to back for a while after the last progress (an answer through a worker
    // process comes within tens of microseconds), then sleeps of 5 us doubling every 4 polls.
    // Never sched_yield: on a loaded machine it can give the CPU away for a whole time slice.
    if (idle_polls_ == 0 && !expected_ && now - last_progress_ < spinning_) {
        return 0;
    }
    ++idle_polls_;
    const unsigned doublings = std::min(idle_polls_ / 4, 12U);
    return std::min(longest_sleep_us_, 5U << doublings);
}

} // namespace mproc::detail
