// SPDX-License-Identifier: MIT
#pragma once
// map/map_async/starmap/starmap_async: every item's result, in input order, as one vector.
//
// Python's semantics: the call ends when every chunk has settled, even after a failure (no
// fail-fast); then it carries the first failure that arrived, or the whole vector. Within a
// chunk, the first failing item stops the rest of that chunk, as Python's mapstar does.

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
#include "mproc/detail/size_math.hpp"
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
    /// Where item i's result goes: workers that can write there themselves do (a SharedArray's
    /// memory, map_wire_job.hpp).
    T* slot(std::size_t i) const noexcept { return out_.data() + i; }

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

/// `Slots`: where results go (ResultSlots: a fresh vector; SpanSlots: the caller's storage).
template <class F, class Input, Unpack unpack,
          class Slots = ResultSlots<map_item_result_t<F, Input, unpack>>>
class MapJob : public ResultState<typename Slots::Result> {
  protected:
    using Item = typename Input::value_type;
    using Value = map_item_result_t<F, Input, unpack>;
    using Call = ItemCall<F, Item, unpack>;

  public:
    template <class G, class... SlotArgs>
    MapJob(G&& f, Input input, std::size_t chunksize, SlotArgs&&... slot_args)
        : f_(std::forward<G>(f)), input_(std::move(input)),
          results_(input_.size(), std::forward<SlotArgs>(slot_args)...) {
        // Counted without `n + chunksize`, which overflows for a chunksize near the type's
        // maximum; a chunksize larger than the input makes one chunk of all of it.
        const std::size_t n = input_.size();
        chunks_.reserve(chunksize == 0 ? 0 : n / chunksize + (n % chunksize != 0 ? 1 : 0));
        for (std::size_t first = 0; first < n;) {
            const std::size_t count = smaller(chunksize, n - first);
            chunks_.push_back(Chunk{this, first, count});
            first += count;
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

  protected:
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

  private:
    std::vector<Chunk> chunks_;
    std::atomic<std::size_t> unsettled_{0};
    std::mutex failure_mutex_;
    std::exception_ptr first_failure_;
};

} // namespace mproc::detail
