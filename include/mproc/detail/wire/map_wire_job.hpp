// SPDX-License-Identifier: MIT
#pragma once
// The wire half of map: a chunk's items go to a worker process and its outcomes come back,
// as a block of bytes where items and results cross as bytes (block_items_entry), else one
// encoded value per item (items_entry).

#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "mproc/detail/map_job.hpp"
#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/detail/wire/worker_entry.hpp"

namespace mproc::detail {

template <class F, class Input, Unpack unpack, class Slots>
class WireMapJob final : public MapJob<F, Input, unpack, Slots>, public WireJob {
    using Base = MapJob<F, Input, unpack, Slots>;
    using typename Base::Item;
    using typename Base::Value;
    /// Items and results cross as bytes: chunks travel as blocks (block_items_entry).
    static constexpr bool block = block_transport_v<Item> && block_transport_v<Value>;
    /// The results go to the caller's storage of Values (map_into into a span of them), which
    /// a worker on this host can write itself where it is a SharedArray's memory.
    static constexpr bool results_in_place =
        std::is_same_v<Slots, SpanSlots<Value>> && std::is_trivially_copyable_v<Value>;

  public:
    using Base::Base;

    WireJob* wire() noexcept override { return this; }

    static auto require_sendable() {
        require_sendable_callable<F>();
        require_sendable_value<Item>();
        require_sendable_value<Value>();
    }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        if constexpr (block) {
            encode_block(chunk, request);
        } else {
            write_entry<&items_entry<F, Item, unpack, true>, F, Item, Value>(request);
            encode_callable(request, this->f_);
            request.write<std::uint64_t>(chunk.count);
            // An item the input holds lives as long as the job; one its range makes on the
            // fly (a view's element by value) does not.
            constexpr ValueLifetime lifetime =
                std::is_lvalue_reference_v<decltype(this->input_[chunk.first])>
                    ? ValueLifetime::outlives_send
                    : ValueLifetime::temporary;
            for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
                encode_value<Item>(request, this->input_[i], lifetime);
            }
        }
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        bool decoded = true;
        if constexpr (block) {
            decoded = complete_block(chunk, response, worker_pid, std::move(lost));
        } else {
            decoded = complete_items(chunk, response, worker_pid, std::move(lost));
        }
        this->settle_one();
        return decoded;
    }

  private:
    /// Writes where a chunk's block of `bytes` at `data` is (block_items_entry): in the frame,
    /// or, where the worker runs on this host and the bytes are a SharedArray's, in shared
    /// memory (then the worker reads or writes them there: nothing is copied). True for the
    /// second.
    static bool write_block_place(WireWriter& request, const void* data, std::size_t bytes) {
        const std::optional<SharedSpan> span =
            encoding_for_this_host() ? find_shared_span(data, bytes) : std::nullopt;
        request.write(span ? BlockPlace::shared_memory : BlockPlace::in_frame);
        if (span) {
            request.write(*span);
        }
        return span.has_value();
    }

    void encode_block(const Chunk& chunk, WireWriter& request) {
        write_entry<&block_items_entry<F, Item, unpack>, F, Item, Value>(request);
        encode_callable(request, this->f_);
        request.write<std::uint64_t>(chunk.count);
        bool items_shared = false;
        if constexpr (Input::contiguous) {
            items_shared = write_block_place(request, std::addressof(this->input_[chunk.first]),
                                             chunk.count * sizeof(Item));
        } else {
            request.write(BlockPlace::in_frame);
        }
        if constexpr (results_in_place) {
            // The same answer for every chunk of the job (the backend and the caller's
            // storage do not change while it runs); complete_block reads it back.
            results_shared_.store(write_block_place(request, this->results_.slot(chunk.first),
                                                    chunk.count * sizeof(Value)),
                                  std::memory_order_relaxed);
        } else {
            request.write(BlockPlace::in_frame);
        }
        if (items_shared) {
            return;
        }
        if constexpr (Input::contiguous) {
            // By reference where the writer allows it (a worker's outbox, sent before the job,
            // which holds the input, can end).
            request.write_borrowed(std::addressof(this->input_[chunk.first]),
                                   chunk.count * sizeof(Item));
        } else {
            std::byte* items = request.grow(chunk.count * sizeof(Item));
            for (std::size_t i = 0; i < chunk.count; ++i) {
                const Item item = this->input_[chunk.first + i];
                std::memcpy(items + i * sizeof(Item), std::addressof(item), sizeof(Item));
            }
        }
    }

    bool complete_block(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept {
        if (lost) {
            // A block's header is written before its results, so a worker that died part-way
            // leaves nothing to trust; map ends with the first failure anyway.
            this->record_failure(std::move(lost));
            return true;
        }
        try {
            const auto done = response.read<std::uint64_t>();
            if (done > chunk.count) {
                throw WireError("mproc: worker sent more results than items");
            }
            if (!results_shared_.load(std::memory_order_relaxed)) {
                const std::byte* values = response.take(done * sizeof(Value));
                this->results_.template put_block<Value>(chunk.first, values, done);
            } // else the worker wrote them in place

            if (done < chunk.count) {
                this->record_failure(decode_exception(response, worker_pid, chunk.first + done));
            }
            if (response.remaining() != 0) {
                throw WireError("mproc: worker sent more than a block of results");
            }
            return true;
        } catch (...) {
            this->record_failure(std::current_exception());
            return false;
        }
    }

    /// The worker stops a chunk at its first failure (as run_chunk does), so fewer outcomes
    /// than items is fine after an error and a protocol error otherwise.
    bool complete_items(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept {
        bool decoded = true;
        try {
            std::size_t i = chunk.first;
            for (; i < chunk.first + chunk.count; ++i) {
                if (lost && response.remaining() == 0) {
                    this->record_failure(std::move(lost));
                    break;
                }
                std::exception_ptr error;
                std::optional<Value> value = read_outcome<Value>(response, error, worker_pid, i);
                if (error) {
                    this->record_failure(std::move(error));
                    break;
                }
                this->results_.put(i, std::move(*value));
            }
            if (i == chunk.first + chunk.count && response.remaining() != 0) {
                throw WireError("mproc: worker sent more outcomes than items");
            }
        } catch (...) {
            this->record_failure(std::current_exception());
            decoded = false;
        }
        lost = nullptr; // before settling: the caller must hold the last reference
        return decoded;
    }

    std::atomic<bool> results_shared_{false}; // the workers write the results in place
};

template <class F, class Input, Unpack unpack, class Slots>
struct WireJobFor<MapJob<F, Input, unpack, Slots>> {
    using type = WireMapJob<F, Input, unpack, Slots>;
};

} // namespace mproc::detail
