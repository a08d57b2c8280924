// SPDX-License-Identifier: MIT
#pragma once
// The wire half of apply: the callable and the arguments go to a worker process, one outcome
// comes back.

#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "mproc/detail/apply_job.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/detail/wire/worker_entry.hpp"

namespace mproc::detail {

template <class F, class... Args>
class WireApplyJob final : public ApplyJob<F, Args...>, public WireJob {
    using Base = ApplyJob<F, Args...>;

  public:
    using Base::Base;
    using typename Base::Result;

    /// For a blocking apply: the arguments stay the caller's, who keeps them alive and
    /// unchanged until the job is settled, and are encoded from there; a large one is then
    /// never copied in the caller, only into the request. Such a job is only encoded, never
    /// run here (process and MPI pools run chunks in workers only).
    static constexpr bool can_borrow_arguments = true;
    template <class G>
    WireApplyJob(BorrowArguments, G&& f, const Args&... args)
        : Base(BorrowArguments{}, std::forward<G>(f)), borrowed_(std::addressof(args)...) {}

    WireJob* wire() noexcept override { return this; }

    static auto require_sendable() {
        require_sendable_callable<F>();
        (require_sendable_value<Args>(), ...);
        require_sendable_value<Result>();
    }

    void encode_chunk(const Chunk&, WireWriter& request) override {
        write_entry<&apply_entry<F, Args...>, F, Args..., Result>(request);
        encode_callable(request, this->f_);
        auto encode = [&](const Args&... args) {
            (encode_value(request, args, ValueLifetime::outlives_send), ...);
        };
        if (this->args_) {
            std::apply(encode, *this->args_);
        } else {
            std::apply([&](const Args*... args) { encode(*args...); }, borrowed_);
        }
    }

    bool complete_chunk(const Chunk&, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
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
        lost = nullptr; // before settling: the caller must hold the last reference
        this->settle(std::move(value), std::move(error));
        return decoded;
    }

  private:
    std::tuple<const Args*...> borrowed_{}; // the caller's arguments, where args_ is empty
};

template <class F, class... Args>
struct WireJobFor<ApplyJob<F, Args...>> {
    using type = WireApplyJob<F, Args...>;
};

} // namespace mproc::detail
