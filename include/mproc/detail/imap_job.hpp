// SPDX-License-Identifier: MIT
#pragma once
// The typed half of imap/imap_unordered: the function, the input, and the argument slots.

#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "mproc/detail/call.hpp"
#include "mproc/detail/ranges.hpp"
#include "mproc/detail/stream_job.hpp"

namespace mproc::detail {

template <class F, class View, Unpack unpack>
using imap_item_result_t = item_result_t<F, range_value_t<typename View::Range>, unpack>;

/// What the stream yields per item: the result, or (`outcomes`, for imap_outcomes) the result
/// or its error as an mproc::Outcome.
template <class F, class View, Unpack unpack, bool outcomes>
using imap_stream_item_t =
    std::conditional_t<outcomes, Outcome<imap_item_result_t<F, View, unpack>>,
                       imap_item_result_t<F, View, unpack>>;

/// `View` is the caller's input as a HeldRange: a reference to an lvalue range (which must
/// outlive the stream), or the moved-in rvalue range.
template <class F, class View, Unpack unpack, bool outcomes = false>
class IMapJob : public StreamJob<imap_stream_item_t<F, View, unpack, outcomes>> {
  protected:
    using Item = range_value_t<typename View::Range>;
    using Value = imap_item_result_t<F, View, unpack>;
    using Call = ItemCall<F, Item, unpack>;
    using Base = StreamJob<imap_stream_item_t<F, View, unpack, outcomes>>;

  public:
    /// What one item's argument and result storage take, for the window's bound on them
    /// (StreamWindow::growing).
    static constexpr std::size_t bytes_per_item =
        sizeof(std::optional<Item>) + Base::bytes_per_item;

    template <class G>
    IMapJob(ChunkSink& sink, Order order, std::size_t chunksize, StreamWindow window, G&& f,
            View input)
        : Base(sink, order, chunksize, window), f_(std::forward<G>(f)) {
        source_.emplace(std::move(input)); // in place: its iterator may point into it
    }

    void run_chunk(const Chunk& chunk) noexcept override {
        auto& arguments = slot_of(chunk).arguments;
        for (std::size_t i = 0; i < chunk.count; ++i) {
            // Each item has its own outcome: one failure does not cost its chunk-mates.
            try {
                this->store_value(chunk, i, Call::call(f_, *arguments[i]));
            } catch (...) {
                this->store_error(chunk, i, std::current_exception());
            }
        }
        clear_arguments(chunk);
        this->chunk_settled(chunk);
    }

  protected:
    /// A slot with the arguments of its items, by offset in the chunk: appended by the
    /// consumer as it reads them, cleared by the worker that ran them.
    struct ArgumentSlot final : Base::Slot {
        std::vector<std::optional<Item>> arguments;
    };

    static ArgumentSlot& slot_of(const Chunk& chunk) noexcept {
        return static_cast<ArgumentSlot&>(Base::slot_of(chunk));
    }

    void clear_arguments(const Chunk& chunk) noexcept override {
        slot_of(chunk).arguments.clear(); // keeps the capacity for the slot's next chunk
    }

    F f_;

  private:
    std::unique_ptr<typename Base::Slot> new_slot() override {
        return std::make_unique<ArgumentSlot>();
    }

    bool read_item(typename Base::Slot& slot) override {
        // The iterator is advanced only when the next item is wanted, so an exception from
        // advancing belongs to the next position and nothing past the last item is read.
        Source& source = *source_;
        if (advance_pending_) {
            advance_pending_ = false;
            ++source.next;
        }
        if (source.next == std::ranges::end(source.input.get())) {
            return false;
        }
        static_cast<ArgumentSlot&>(slot).arguments.emplace_back(std::in_place, *source.next);
        advance_pending_ = true;
        return true;
    }

    void drop_input() noexcept override { source_.reset(); }

    struct Source {
        explicit Source(View view)
            : input(std::move(view)), next(std::ranges::begin(input.get())) {}
        View input;
        iterator_t<typename View::Range> next;
    };

    std::optional<Source> source_; // empty once the stream is abandoned
    bool advance_pending_ = false;
};

} // namespace mproc::detail
