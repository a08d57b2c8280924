#pragma once
// The typed half of imap/imap_unordered: the function, the input, and the argument slots.

#include <exception>
#include <optional>
#include <ranges>
#include <utility>
#include <vector>

#include "mproc/detail/call.hpp"
#include "mproc/detail/stream_job.hpp"
#include "mproc/detail/worker_entry.hpp"

namespace mproc::detail {

template <class F, class View, Unpack unpack>
using imap_item_result_t = item_result_t<F, std::ranges::range_value_t<View>, unpack>;

/// What the stream yields per item: the result, or (`outcomes`, for imap_outcomes) the result
/// or its error as an mproc::Outcome.
template <class F, class View, Unpack unpack, bool outcomes>
using imap_stream_item_t =
    std::conditional_t<outcomes, Outcome<imap_item_result_t<F, View, unpack>>,
                       imap_item_result_t<F, View, unpack>>;

/// `View` is `std::views::all` of the caller's input: a reference to an lvalue range (which
/// must outlive the stream), or the moved-in rvalue range.
/// `wire`: the job also runs in worker processes (encode_chunk/complete_chunk are real).
template <class F, class View, Unpack unpack, bool wire, bool outcomes = false>
class IMapJob final : public StreamJob<imap_stream_item_t<F, View, unpack, outcomes>> {
    using Item = std::ranges::range_value_t<View>;
    using Call = ItemCall<F, Item, unpack>;
    using Base = StreamJob<imap_stream_item_t<F, View, unpack, outcomes>>;

  public:
    /// What one item's slots take, for the window's bound on them (StreamWindow::growing).
    static constexpr std::size_t bytes_per_item =
        sizeof(std::optional<Item>) + Base::bytes_per_item;

    template <class G>
    IMapJob(ChunkSink& sink, Order order, std::size_t chunksize, StreamWindow window, G&& f,
            View input)
        : Base(sink, order, chunksize, window), f_(std::forward<G>(f)),
          arguments_(window.limit * chunksize) {
        source_.emplace(std::move(input)); // in place: its iterator may point into it
    }

    void run_chunk(const Chunk& chunk) noexcept override {
        for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
            // Each item has its own outcome: one failure does not cost its chunk-mates.
            try {
                this->store_value(i, Call::call(f_, *arguments_[i]));
            } catch (...) {
                this->store_error(i, std::current_exception());
            }
        }
        clear_arguments(chunk);
        this->chunk_settled(chunk);
    }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        if constexpr (wire) {
            write_entry<&items_entry<F, Item, unpack, false>>(request);
            encode_callable(request, f_);
            request.write<std::uint64_t>(chunk.count);
            for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
                encode_value<Item>(request, *arguments_[i], ValueLifetime::outlives_send);
            }
        } else {
            wire_call_on_in_process_job();
        }
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        if constexpr (wire) {
            std::size_t i = chunk.first;
            bool decoded = true;
            try {
                for (; i < chunk.first + chunk.count; ++i) {
                    if (lost && response.remaining() == 0) {
                        for (; i < chunk.first + chunk.count; ++i) {
                            this->store_error(i, lost);
                        }
                        break;
                    }
                    std::exception_ptr error;
                    auto value =
                        read_outcome<Value>(response, error, worker_pid, this->input_index(i));
                    if (error) {
                        this->store_error(i, std::move(error));
                    } else {
                        this->store_value(i, std::move(*value));
                    }
                }
                if (response.remaining() != 0) {
                    throw WireError("mproc: worker sent more outcomes than items");
                }
            } catch (...) {
                decoded = false;
                if (i == chunk.first + chunk.count) {
                    i = chunk.first; // the extra bytes cast doubt on every outcome before them
                }
                for (const auto error = std::current_exception(); i < chunk.first + chunk.count;
                     ++i) {
                    this->store_error(i, error);
                }
            }
            lost = nullptr; // before settling: the consumer must hold the last reference
            clear_arguments(chunk);
            this->chunk_settled(chunk);
            return decoded;
        } else {
            wire_call_on_in_process_job();
        }
    }

  private:
    using Value = imap_item_result_t<F, View, unpack>;

    bool read_item(std::size_t position) override {
        // The iterator is advanced only when the next item is wanted, so an exception from
        // advancing belongs to the next position and nothing past the last item is read.
        Source& source = *source_;
        if (advance_pending_) {
            advance_pending_ = false;
            ++source.next;
        }
        if (source.next == std::ranges::end(source.input)) {
            return false;
        }
        arguments_[position].emplace(*source.next);
        advance_pending_ = true;
        return true;
    }

    void clear_arguments(const Chunk& chunk) noexcept override {
        for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
            arguments_[i].reset();
        }
    }

    void drop_input() noexcept override { source_.reset(); }

    struct Source {
        explicit Source(View view) : input(std::move(view)), next(std::ranges::begin(input)) {}
        View input;
        std::ranges::iterator_t<View> next;
    };

    F f_;
    std::optional<Source> source_; // empty once the stream is abandoned
    bool advance_pending_ = false;
    std::vector<std::optional<Item>> arguments_;
};

} // namespace mproc::detail
