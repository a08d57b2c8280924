#pragma once
// map/map_async/starmap/starmap_async: every item's result, in input order, as one vector.
//
// Python's semantics: the call ends when every chunk has settled, even after a failure (no
// fail-fast); then it carries the first failure that arrived, or the whole vector. Within a
// chunk, the first failing item stops the rest of that chunk, as Python's mapstar does.

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "mproc/detail/call.hpp"
#include "mproc/detail/result_state.hpp"
#include "mproc/detail/worker_entry.hpp"

namespace mproc::detail {

/// Result storage written in place by the workers, one slot per item. A plain vector when T can
/// be default-constructed (so the result is handed over without a copy); optional slots
/// otherwise, and for bool, whose packed vector would make neighbouring writes race.
template <class T>
class ResultSlots {
    static constexpr bool direct = std::is_default_constructible_v<T> && !std::is_same_v<T, bool>;
    using Slot = std::conditional_t<direct, T, std::optional<T>>;

  public:
    explicit ResultSlots(std::size_t n) : slots_(n) {}

    void put(std::size_t i, T&& value) {
        if constexpr (direct) {
            slots_[i] = std::move(value);
        } else {
            slots_[i].emplace(std::move(value));
        }
    }

    std::vector<T> take() {
        if constexpr (direct) {
            return std::move(slots_);
        } else {
            std::vector<T> values;
            values.reserve(slots_.size());
            for (auto& slot : slots_) {
                values.push_back(std::move(*slot));
            }
            slots_.clear();
            return values;
        }
    }

    void clear() noexcept { std::vector<Slot>().swap(slots_); }

  private:
    std::vector<Slot> slots_;
};

template <class F, class Input, Unpack unpack>
using map_item_result_t = item_result_t<F, typename Input::value_type, unpack>;

/// `wire`: the job also runs in worker processes (encode_chunk/complete_chunk are real).
template <class F, class Input, Unpack unpack, bool wire>
class MapJob final : public ResultState<std::vector<map_item_result_t<F, Input, unpack>>> {
    using Item = typename Input::value_type;
    using Value = map_item_result_t<F, Input, unpack>;
    using Call = ItemCall<F, Item, unpack>;

  public:
    template <class G>
    MapJob(G&& f, Input input, std::size_t chunksize)
        : f_(std::forward<G>(f)), input_(std::move(input)), results_(input_.size()) {
        const std::size_t n = input_.size();
        chunks_.reserve(chunksize == 0 ? 0 : (n + chunksize - 1) / chunksize);
        for (std::size_t first = 0; first < n; first += chunksize) {
            chunks_.push_back(Chunk{this, first, std::min(chunksize, n - first)});
        }
        unsettled_.store(chunks_.size(), std::memory_order_relaxed);
    }

    std::vector<Chunk>& chunks() noexcept { return chunks_; }

    /// Ends a call that has no chunk at all (empty input).
    void finish_empty() { this->finish(std::vector<Value>(), nullptr); }

    void run_chunk(const Chunk& chunk) noexcept override {
        const std::size_t end = chunk.first + chunk.count;
        for (std::size_t i = chunk.first; i < end; ++i) {
            try {
                results_.put(i, Call::call(f_, input_[i]));
            } catch (...) {
                record_failure(std::current_exception());
                break;
            }
        }
        settle_one();
    }

    void cancel_chunk(const Chunk&, std::exception_ptr reason) noexcept override {
        record_failure(std::move(reason));
        settle_one();
    }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        if constexpr (wire) {
            write_entry<&items_entry<F, Item, unpack, true>>(request);
            encode_callable(request, f_);
            request.write<std::uint64_t>(chunk.count);
            for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
                encode_value<Item>(request, input_[i]);
            }
        } else {
            wire_call_on_in_process_job();
        }
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if constexpr (wire) {
            bool decoded = true;
            // The worker stops a chunk at its first failure (as run_chunk does), so fewer
            // outcomes than items is fine after an error and a protocol error otherwise.
            try {
                std::size_t i = chunk.first;
                for (; i < chunk.first + chunk.count; ++i) {
                    if (lost && response.remaining() == 0) {
                        record_failure(std::move(lost));
                        break;
                    }
                    std::exception_ptr error;
                    std::optional<Value> value =
                        read_outcome<Value>(response, error, worker_pid, i);
                    if (error) {
                        record_failure(std::move(error));
                        break;
                    }
                    results_.put(i, std::move(*value));
                }
                if (i == chunk.first + chunk.count && response.remaining() != 0) {
                    throw WireError("mproc: worker sent more outcomes than items");
                }
            } catch (...) {
                record_failure(std::current_exception());
                decoded = false;
            }
            lost = nullptr; // before settling: the caller must hold the last reference
            settle_one();
            return decoded;
        } else {
            wire_call_on_in_process_job();
        }
    }

  private:
    void record_failure(std::exception_ptr error) noexcept {
        std::lock_guard lock(failure_mutex_);
        if (!first_failure_) {
            first_failure_ = std::move(error);
        }
    }

    void settle_one() noexcept {
        if (unsettled_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // Every chunk has settled, so no worker touches the input or the slots any more.
            input_.release();
            if (first_failure_) {
                results_.clear();
                // Moved, not copied: the result state is then the only owner, and the caller's
                // handle releases it on the caller's thread; a copy left here would be destroyed
                // by whichever worker drops the last job reference (a race for ThreadSanitizer,
                // which cannot see the exception's reference count inside libstdc++).
                this->finish(std::nullopt, std::move(first_failure_));
            } else {
                this->finish(results_.take(), nullptr);
            }
        }
        this->release(); // the chunk's reference; must be the last use of this
    }

    F f_;
    Input input_;
    ResultSlots<Value> results_;
    std::vector<Chunk> chunks_;
    std::atomic<std::size_t> unsettled_{0};
    std::mutex failure_mutex_;
    std::exception_ptr first_failure_;
};

} // namespace mproc::detail
