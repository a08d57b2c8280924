// SPDX-License-Identifier: MIT
#pragma once
// apply/apply_async: one call of f(args...), as a job of one chunk of one item.

#include <exception>
#include <optional>
#include <tuple>
#include <utility>

#include "mproc/detail/call.hpp"
#include "mproc/detail/result_state.hpp"

namespace mproc::detail {

template <class F, class... Args>
using apply_result_t = call_result_t<F, Args&&...>;

/// Builds a job whose arguments the caller keeps (WireApplyJob).
struct BorrowArguments {};

template <class F, class... Args>
class ApplyJob : public ResultState<apply_result_t<F, Args...>> {
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
        settle(std::move(value), std::move(error));
    }

    void cancel_chunk(const Chunk&, std::exception_ptr reason) noexcept override {
        settle(std::nullopt, std::move(reason));
    }

  protected:
    /// Without arguments of its own, which then must never run here: a derived job holds them
    /// (WireApplyJob borrows them). Protected, so that no pool builds a job it could run.
    template <class G>
    ApplyJob(BorrowArguments, G&& f) : f_(std::forward<G>(f)) {}

    /// Ends the call with its value or error; the pool keeps no copy of the arguments.
    void settle(std::optional<Result> value, std::exception_ptr error) noexcept {
        args_.reset();
        this->finish(std::move(value), std::move(error));
        this->release(); // the chunk's reference; must be the last use of this
    }

    F f_;
    std::optional<std::tuple<Args...>> args_;

  private:
    Chunk chunk_{this, 0, 1};
};

} // namespace mproc::detail
