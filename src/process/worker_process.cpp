// SPDX-License-Identifier: MIT
#include "worker_process.hpp"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <span>

#include "channel.hpp"
#include "crash_handler.hpp"
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

/// Returns once `fd` is readable (true) or `idle_look` has passed (false), whichever is first.
bool look_for_request(int fd) noexcept {
    const auto until = std::chrono::steady_clock::now() + idle_look;
    pollfd readable{fd, POLLIN, 0};
    int ready = 0;
    while ((ready = ::poll(&readable, 1, 0)) == 0 && std::chrono::steady_clock::now() < until) {
        sched_yield();
    }
    return ready > 0;
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

        // The caller may queue several requests here (a pipelined window). An answer is held
        // back (held_answers.hpp: in memory the caller reads if this process dies) while more
        // requests wait behind it than answers are held, so that a window's answers leave a
        // few at a time and the caller refills the window before it runs dry; never for a
        // chunk that ran long, nor for longer than max_hold. So the caller always learns which
        // request was running when this process died: the first one not answered here.
        FrameReader requests;
        const bool looks_for_requests = cpu_count() > 1;
        HeldAnswers held;
        auto first_held_at = std::chrono::steady_clock::time_point{};
        for (;;) {
            FrameKind kind{};
            std::span<const std::byte> request;
            if (!requests.has_buffered_bytes() &&
                !(looks_for_requests && look_for_request(channel_fd))) {
                // About to wait: the caller's arrays that recent tasks mapped are let go, so
                // that an idle worker never holds memory the caller has freed.
                forget_callers_regions();
            }
            if (!requests.next(channel_fd, kind, request) || kind == FrameKind::stop) {
                held.send(channel_fd);
                MPROC_TRACE_EVENT("process worker %llu exiting",
                                  static_cast<unsigned long long>(worker_id));
                exit_worker(0);
            }
            if (kind == FrameKind::lend) {
                this_process_lends.allow();
                continue;
            }
            if (kind == FrameKind::release) {
                if (!this_process_lends.release_oldest()) {
                    exit_worker(3); // nothing was lent: the caller is confused, do not guess
                }
                continue;
            }
            if (kind != FrameKind::run) {
                exit_worker(3); // the caller does not send anything else: do not guess
            }
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
            // A lent answer is sent at once: the caller reads its blocks from this process,
            // which a held answer must not need (it is read also after this process died).
            const bool may_hold =
                answer != FrameKind::done_lent && ran < max_held_run &&
                held.count() + 1 < requests.whole_frames_buffered(held.count() + 2) &&
                (held.count() == 0 || finished - first_held_at < max_hold);
            if (may_hold && held.hold(channel_fd, answer, run_ns, out.data(), out.size())) {
                if (held.count() == 1) {
                    first_held_at = finished;
                }
                continue;
            }
            if (held.count() != 0 && answer != FrameKind::done_lent &&
                held.hold(channel_fd, answer, run_ns, out.data(), out.size())) {
                held.send(channel_fd); // with the others, in one system call
                continue;
            }
            held.send(channel_fd);
            send_frame(channel_fd, answer, out.data(), out.size(), run_ns);
            held.sent_one();
        }
    } catch (...) {
        exit_worker(2); // the channel broke: the caller is gone or sent garbage
    }
}

} // namespace mproc::detail
