#pragma once
// The wire half of apply: the callable and the arguments go to a worker process, one outcome
// comes back.

#include <exception>
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

    WireJob* wire() noexcept override { return this; }

    static auto require_sendable() {
        require_sendable_callable<F>();
        (require_sendable_value<Args>(), ...);
        require_sendable_value<Result>();
    }

    void encode_chunk(const Chunk&, WireWriter& request) override {
        write_entry<&apply_entry<F, Args...>, F, Args..., Result>(request);
        encode_callable(request, this->f_);
        std::apply(
            [&](const Args&... args) {
                (encode_value(request, args, ValueLifetime::outlives_send), ...);
            },
            *this->args_);
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
};

template <class F, class... Args>
struct WireJobFor<ApplyJob<F, Args...>> {
    using type = WireApplyJob<F, Args...>;
};

} // namespace mproc::detail
