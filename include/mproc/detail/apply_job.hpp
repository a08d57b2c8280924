#pragma once
// apply/apply_async: one call of f(args...), as a job of one chunk of one item.

#include <exception>
#include <optional>
#include <tuple>
#include <utility>

#include "mproc/detail/call.hpp"
#include "mproc/detail/result_state.hpp"
#include "mproc/detail/worker_entry.hpp"

namespace mproc::detail {

template <class F, class... Args>
using apply_result_t = call_result_t<F, Args&&...>;

/// `wire`: the job also runs in worker processes (encode_chunk/complete_chunk are real).
template <bool wire, class F, class... Args>
class ApplyJob final : public ResultState<apply_result_t<F, Args...>> {
  public:
    using Result = apply_result_t<F, Args...>;

    template <class G, class... A>
    explicit ApplyJob(G&& f, A&&... args)
        : f_(std::forward<G>(f)), args_(std::in_place, std::forward<A>(args)...) {}

    Chunk* chunk() noexcept { return &chunk_; }

    void run_chunk(const Chunk&) noexcept override {
        std::optional<Result> value;
        std::exception_ptr error;
        try {
            // The arguments are used once, so they are moved in: move-only arguments work.
            value.emplace(std::apply(
                [this](Args&... args) { return call_storing(f_, std::move(args)...); }, *args_));
        } catch (...) {
            error = std::current_exception();
        }
        args_.reset(); // the pool keeps no copy of the arguments once the call has ended
        this->finish(std::move(value), std::move(error));
        this->release(); // the chunk's reference; must be the last use of this
    }

    void cancel_chunk(const Chunk&, std::exception_ptr reason) noexcept override {
        args_.reset();
        this->finish(std::nullopt, std::move(reason));
        this->release();
    }

    void encode_chunk(const Chunk&, WireWriter& request) override {
        if constexpr (wire) {
            write_entry<&apply_entry<F, Args...>>(request);
            encode_callable(request, f_);
            std::apply(
                [&](const Args&... args) {
                    (encode_value(request, args, ValueLifetime::outlives_send), ...);
                },
                *args_);
        } else {
            wire_call_on_in_process_job();
        }
    }

    bool complete_chunk(const Chunk&, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if constexpr (wire) {
            std::optional<Result> value;
            std::exception_ptr error;
            bool decoded = true;
            try {
                if (lost && response.remaining() == 0) {
                    error = std::move(lost);
                } else {
                    value = read_outcome<Result>(response, error, worker_pid, 0);
                    if (response.remaining() != 0) {
                        throw WireError("mproc: worker sent more than one outcome");
                    }
                }
            } catch (...) {
                error = std::current_exception();
                decoded = false;
            }
            lost = nullptr; // before finishing: the caller must hold the last reference
            args_.reset();
            this->finish(std::move(value), std::move(error));
            this->release(); // the chunk's reference; must be the last use of this
            return decoded;
        } else {
            wire_call_on_in_process_job();
        }
    }

  private:
    F f_;
    std::optional<std::tuple<Args...>> args_;
    Chunk chunk_{this, 0, 1};
};

} // namespace mproc::detail
