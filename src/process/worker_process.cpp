// SPDX-License-Identifier: MIT
#include "worker_process.hpp"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <span>
#include <system_error>

#include "channel.hpp"
#include "crash_handler.hpp"
#include "fast_lane.hpp"
#include "held_answers.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/trace.hpp"
#include "mproc/detail/wire/lent_memory.hpp"
#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/this_worker.hpp"
#include "run_request.hpp"

namespace mproc::detail {
namespace {

[[noreturn]] void exit_worker(int status) noexcept {
    std::fflush(nullptr); // what tasks printed must not be lost
    _exit(status);
}

// How long a worker that has answered keeps looking for its next request before it sleeps in
// recv. A caller that waits for each result before it sends the next (apply in a loop, a
// stream's refill) sends it within microseconds; a worker asleep by then must be woken, and on
// a virtual machine waking a halted CPU takes longer than the round trip itself. It yields
// between looks, so a worker with a task on the same core runs meanwhile; but a worker that
// may run on one CPU only (mpirun binds a rank and its worker processes to one core) does not
// look at all: there the sender of its next request, the pool's I/O thread, needs that CPU,
// and looking made a stream of trivial tasks 20% slower.
constexpr std::chrono::microseconds idle_look = std::chrono::microseconds(50);

/// Returns once `fd` is readable or `lane` (if any) has a request (true), or `idle_look` has
/// passed (false), whichever is first.
bool look_for_request(int fd, const FastLane* lane) noexcept {
    const auto until = std::chrono::steady_clock::now() + idle_look;
    pollfd readable{fd, POLLIN, 0};
    for (;;) {
        if ((lane != nullptr && lane->request_posted()) || ::poll(&readable, 1, 0) > 0) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        sched_yield();
    }
}

/// The worker's fast lane (fast_lane.hpp), its descriptor sent to the caller after the hello;
/// none if the system refuses the memory (every request then comes on the socket).
std::unique_ptr<FastLane> open_fast_lane(int channel_fd) {
    std::unique_ptr<FastLane> lane;
    try {
        lane = std::make_unique<FastLane>();
    } catch (const std::system_error&) {
        return nullptr;
    }
    send_frame_with_fd(channel_fd, FrameKind::fast_lane, lane->descriptor());
    lane->close_descriptor();
    return lane;
}

// Answers are held (see run_worker_process) only for chunks shorter than this, which the
// caller pipelines (its latency_to_hide), and for no longer than max_hold: a stream's consumer
// waits for them.
constexpr std::chrono::nanoseconds max_held_run = std::chrono::microseconds(30);
constexpr std::chrono::nanoseconds max_hold = std::chrono::microseconds(20);

} // namespace

void run_worker_process(int channel_fd, std::uint64_t worker_id,
                        const std::function<void()>& initializer) noexcept {
    become_worker(worker_id);
    // A worker forked from a worker (a task's own pool) starts with none of its values lent,
    // and lends only once its own caller says it can read them.
    this_process_lends = LentValues{};
    install_crash_handler(channel_fd);
    MPROC_TRACE_EVENT("process worker %llu started (pid %d)",
                      static_cast<unsigned long long>(worker_id), static_cast<int>(getpid()));
    std::exception_ptr initializer_error;
    if (initializer) {
        try {
            initializer();
        } catch (...) {
            initializer_error = std::current_exception();
        }
    }
    try {
        WireWriter out;
        out.write(this_program_id());
        out.write(static_cast<std::int64_t>(getpid()));
        out.write(lend_probe_address());
        send_frame(channel_fd, FrameKind::hello, out.data(), out.size());

        const std::unique_ptr<FastLane> lane = open_fast_lane(channel_fd);

        // The caller may queue several requests here (a pipelined window). An answer is held
        // back (held_answers.hpp: in memory the caller reads if this process dies) while more
        // requests wait behind it than answers are held, so that a window's answers leave a
        // few at a time and the caller refills the window before it runs dry; never for a
        // chunk that ran long, nor for longer than max_hold. So the caller always learns which
        // request was running when this process died: the first one not answered here.
        FrameReader requests;
        FastLaneMessage lane_request;
        const bool looks_for_requests = cpu_count() > 1;
        HeldAnswers held;
        auto first_held_at = std::chrono::steady_clock::time_point{};

        // Runs one request and sends its answer: in the lane if it came from there and the
        // answer fits, on the socket otherwise.
        auto serve = [&](std::span<const std::byte> request, bool from_lane) {
            out.clear();
            const auto started = std::chrono::steady_clock::now();
            FrameKind answer = run_request(request, out, initializer_error);
            if (this_process_lends.lending()) {
                if (answer == FrameKind::done) {
                    this_process_lends.sent(); // kept until the caller's release
                    answer = FrameKind::done_lent;
                } else {
                    this_process_lends.drop_unsent();
                }
            }
            const auto finished = std::chrono::steady_clock::now();
            const auto ran =
                std::chrono::duration_cast<std::chrono::nanoseconds>(finished - started);
            const std::uint32_t run_ns = saturated_run_ns(static_cast<std::uint64_t>(ran.count()));
            if (from_lane && held.count() == 0 && out.size() <= fast_lane_capacity) {
                if (lane->post_answer(answer, run_ns, out.data(), out.size())) {
                    send_frame(channel_fd, FrameKind::lane_posted, nullptr, 0);
                }
                held.sent_one(); // the caller counts it with those on the socket
                return;
            }
            // A lent answer is sent at once: the caller reads its blocks from this process,
            // which a held answer must not need (it is read also after this process died).
            const bool may_hold =
                !from_lane && answer != FrameKind::done_lent && ran < max_held_run &&
                held.count() + 1 < requests.whole_frames_buffered(held.count() + 2) &&
                (held.count() == 0 || finished - first_held_at < max_hold);
            if (may_hold && held.hold(channel_fd, answer, run_ns, out.data(), out.size())) {
                if (held.count() == 1) {
                    first_held_at = finished;
                }
                return;
            }
            if (held.count() != 0 && answer != FrameKind::done_lent &&
                held.hold(channel_fd, answer, run_ns, out.data(), out.size())) {
                held.send(channel_fd); // with the others, in one system call
                return;
            }
            held.send(channel_fd);
            send_frame(channel_fd, answer, out.data(), out.size(), run_ns);
            held.sent_one();
        };
        std::uint64_t releases_taken = 0;
        auto take_release = [&] {
            if (!this_process_lends.release_oldest()) {
                exit_worker(3); // nothing was lent: the caller is confused, do not guess
            }
            ++releases_taken;
        };
        // The lane's request, if one was posted, comes before any run frame on the socket; but
        // after the releases the caller sent before it, which let go of memory the task may
        // need. Those are read from the socket first where they are still on their way, unless
        // the socket may not be read now (`socket_read`: a run frame was read, and with it
        // everything sent before it).
        auto serve_lane = [&](bool socket_read) {
            if (lane == nullptr || !lane->take_request(lane_request)) {
                return false;
            }
            if (lane_request.kind != FrameKind::run) {
                exit_worker(3); // the caller posts nothing else: do not guess
            }
            while (releases_taken < lane_request.releases_before) {
                FrameKind kind{};
                std::span<const std::byte> frame;
                if (socket_read || !requests.next(channel_fd, kind, frame)) {
                    exit_worker(socket_read ? 3 : 0); // confused, or gone
                }
                if (kind == FrameKind::release) {
                    take_release();
                } else if (kind == FrameKind::lend) {
                    this_process_lends.allow();
                } else if (kind != FrameKind::lane_posted) {
                    exit_worker(3); // no request comes before the lane's
                }
            }
            serve(lane_request.payload, true);
            return true;
        };

        // Whether to read the socket now: it has a frame, or there is nothing to do but wait
        // on it; false when the lane has a request, to be taken first.
        auto ready_to_receive = [&] {
            if (requests.has_buffered_bytes()) {
                return true;
            }
            const bool found = looks_for_requests && look_for_request(channel_fd, lane.get());
            if (lane != nullptr && lane->request_posted()) {
                return false;
            }
            if (found) {
                return true;
            }
            // About to wait. Answers held back go now: what was counted as waiting behind them
            // was not all requests (lane_posted, release). The caller's arrays that recent
            // tasks mapped are let go, so that an idle worker never holds memory the caller
            // has freed.
            held.send(channel_fd);
            forget_callers_regions();
            return lane == nullptr || lane->sleep_on_requests(); // unless posted meanwhile
        };

        for (;;) {
            if (serve_lane(false) || !ready_to_receive()) {
                continue;
            }
            FrameKind kind{};
            std::span<const std::byte> request;
            const bool received = requests.next(channel_fd, kind, request);
            if (lane != nullptr) {
                lane->awake_on_requests();
            }
            if (!received || kind == FrameKind::stop) {
                held.send(channel_fd);
                MPROC_TRACE_EVENT("process worker %llu exiting",
                                  static_cast<unsigned long long>(worker_id));
                exit_worker(0);
            }
            if (kind == FrameKind::lane_posted) {
                continue; // the top of the loop takes it
            }
            if (kind == FrameKind::lend) {
                this_process_lends.allow();
                continue;
            }
            if (kind == FrameKind::release) {
                take_release();
                continue;
            }
            if (kind != FrameKind::run) {
                exit_worker(3); // the caller does not send anything else: do not guess
            }
            // Sent after a request the caller posted in the lane, if it did: that one first.
            serve_lane(true);
            serve(request, false);
        }
    } catch (...) {
        exit_worker(2); // the channel broke: the caller is gone or sent garbage
    }
}

} // namespace mproc::detail
