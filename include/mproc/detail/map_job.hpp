#pragma once
// map/map_async/starmap/starmap_async: every item's result, in input order, as one vector.
//
// Python's semantics: the call ends when every chunk has settled, even after a failure (no
// fail-fast); then it carries the first failure that arrived, or the whole vector. Within a
// chunk, the first failing item stops the rest of that chunk, as Python's mapstar does.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "mproc/detail/call.hpp"
#include "mproc/detail/huge_pages.hpp"
#include "mproc/detail/result_state.hpp"
#include "mproc/detail/worker_entry.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

/// Puts `count` values of type V, as they travel in a block (trivially copyable bytes), one by
/// one into `slots` from `first` on.
template <class V, class Slots>
void put_each(Slots& slots, std::size_t first, const std::byte* values, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        V value;
        std::memcpy(static_cast<void*>(std::addressof(value)), values + i * sizeof(V), sizeof(V));
        slots.put(first + i, std::move(value));
    }
}

/// Result storage written in place by the workers, one slot per item, handed over as a vector.
/// A plain vector when T can be default-constructed (so the result is handed over without a
/// copy); optional slots otherwise, and for bool, whose packed vector would make neighbouring
/// writes race. A large vector of trivial values asks for huge pages before it is zero-filled,
/// which makes its page faults 512 times fewer.
template <class T>
class ResultSlots {
    static constexpr bool direct = std::is_default_constructible_v<T> && !std::is_same_v<T, bool>;
    using Slot = std::conditional_t<direct, T, std::optional<T>>;

  public:
    using Result = std::vector<T>;

    explicit ResultSlots(std::size_t n) {
        if constexpr (std::is_trivially_default_constructible_v<Slot>) {
            slots_.reserve(n);
            advise_huge_pages(slots_.data(), n * sizeof(Slot));
        }
        slots_.resize(n);
    }

    void put(std::size_t i, T&& value) {
        if constexpr (direct) {
            slots_[i] = std::move(value);
        } else {
            slots_[i].emplace(std::move(value));
        }
    }

    /// Results `first` .. `first + count` from a block of values as they travel (bytes that
    /// hold a T each): one copy where the slots are the values themselves.
    template <class V>
    void put_block(std::size_t first, const std::byte* values, std::size_t count) {
        static_assert(std::is_same_v<V, T>);
        if constexpr (direct && std::is_trivially_copyable_v<T>) {
            std::memcpy(static_cast<void*>(slots_.data() + first), values, count * sizeof(T));
        } else {
            put_each<T>(*this, first, values, count);
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

/// Result storage the caller provides (map_into): item i's result is assigned to `out[i]`.
/// The call's own result is empty.
template <class T>
class SpanSlots {
  public:
    using Result = std::monostate;

    SpanSlots(std::size_t n, std::span<T> out) : out_(out) {
        if (out.size() != n) {
            throw_invalid_argument(
                "out", "must have one element per input item (" + std::to_string(n) + ")",
                static_cast<long long>(out.size()));
        }
    }

    template <class V>
    void put(std::size_t i, V&& value) {
        out_[i] = std::forward<V>(value);
    }
    /// As ResultSlots::put_block; a block of V into slots of another type converts each.
    template <class V>
    void put_block(std::size_t first, const std::byte* values, std::size_t count) {
        if constexpr (std::is_same_v<V, T> && std::is_trivially_copyable_v<T>) {
            std::memcpy(static_cast<void*>(out_.data() + first), values, count * sizeof(T));
        } else {
            put_each<V>(*this, first, values, count);
        }
    }
    std::monostate take() noexcept { return {}; }
    void clear() noexcept {}

  private:
    std::span<T> out_;
};

/// The result storage of a map: a fresh vector, or the caller's span when one is given.
template <class Value, class... Out>
struct MapSlotsFor {
    using type = ResultSlots<Value>;
};
template <class Value, class Out>
struct MapSlotsFor<Value, Out> {
    using type = SpanSlots<Out>;
};

template <class F, class Input, Unpack unpack>
using map_item_result_t = item_result_t<F, typename Input::value_type, unpack>;

/// `wire`: the job also runs in worker processes (encode_chunk/complete_chunk are real).
/// `Slots`: where results go (ResultSlots: a fresh vector; SpanSlots: the caller's storage).
template <class F, class Input, Unpack unpack, bool wire,
          class Slots = ResultSlots<map_item_result_t<F, Input, unpack>>>
class MapJob final : public ResultState<typename Slots::Result> {
    using Item = typename Input::value_type;
    using Value = map_item_result_t<F, Input, unpack>;
    using Call = ItemCall<F, Item, unpack>;
    /// Items and results cross as bytes: chunks travel as blocks (block_items_entry).
    static constexpr bool block = block_transport_v<Item> && block_transport_v<Value>;

  public:
    template <class G, class... SlotArgs>
    MapJob(G&& f, Input input, std::size_t chunksize, SlotArgs&&... slot_args)
        : f_(std::forward<G>(f)), input_(std::move(input)),
          results_(input_.size(), std::forward<SlotArgs>(slot_args)...) {
        const std::size_t n = input_.size();
        chunks_.reserve(chunksize == 0 ? 0 : (n + chunksize - 1) / chunksize);
        for (std::size_t first = 0; first < n; first += chunksize) {
            chunks_.push_back(Chunk{this, first, std::min(chunksize, n - first)});
        }
        unsettled_.store(chunks_.size(), std::memory_order_relaxed);
    }

    std::vector<Chunk>& chunks() noexcept { return chunks_; }

    /// Ends a call that has no chunk at all (empty input).
    void finish_empty() { this->finish(results_.take(), nullptr); }

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
        if constexpr (wire && block) {
            write_entry<&block_items_entry<F, Item, unpack>>(request);
            encode_callable(request, f_);
            request.write<std::uint64_t>(chunk.count);
            if constexpr (Input::contiguous) {
                // By reference where the writer allows it (a worker's outbox, sent before the
                // job, which holds the input, can end).
                request.write_borrowed(std::addressof(input_[chunk.first]),
                                       chunk.count * sizeof(Item));
            } else {
                std::byte* items = request.grow(chunk.count * sizeof(Item));
                for (std::size_t i = 0; i < chunk.count; ++i) {
                    const Item item = input_[chunk.first + i];
                    std::memcpy(items + i * sizeof(Item), std::addressof(item), sizeof(Item));
                }
            }
        } else if constexpr (wire) {
            write_entry<&items_entry<F, Item, unpack, true>>(request);
            encode_callable(request, f_);
            request.write<std::uint64_t>(chunk.count);
            // An item the input holds lives as long as the job; one its range makes on the
            // fly (a view's element by value) does not.
            constexpr ValueLifetime lifetime =
                std::is_lvalue_reference_v<decltype(input_[chunk.first])>
                    ? ValueLifetime::outlives_send
                    : ValueLifetime::temporary;
            for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
                encode_value<Item>(request, input_[i], lifetime);
            }
        } else {
            wire_call_on_in_process_job();
        }
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if constexpr (wire && block) {
            bool decoded = true;
            if (lost) {
                // A block's header is written before its results, so a worker that died
                // part-way leaves nothing to trust; map ends with the first failure anyway.
                record_failure(std::move(lost));
            } else {
                try {
                    const auto done = response.read<std::uint64_t>();
                    if (done > chunk.count) {
                        throw WireError("mproc: worker sent more results than items");
                    }
                    const std::byte* values = response.take(done * sizeof(Value));
                    results_.template put_block<Value>(chunk.first, values, done);
                    if (done < chunk.count) {
                        record_failure(decode_exception(response, worker_pid, chunk.first + done));
                    }
                    if (response.remaining() != 0) {
                        throw WireError("mproc: worker sent more than a block of results");
                    }
                } catch (...) {
                    record_failure(std::current_exception());
                    decoded = false;
                }
            }
            settle_one();
            return decoded;
        } else if constexpr (wire) {
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
    Slots results_;
    std::vector<Chunk> chunks_;
    std::atomic<std::size_t> unsettled_{0};
    std::mutex failure_mutex_;
    std::exception_ptr first_failure_;
};

} // namespace mproc::detail
