// SPDX-License-Identifier: MIT
#pragma once
// The wire half of imap and its variants: a slot's items go to a worker process, one outcome
// per item comes back (items_entry), each item with its own.

#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include "mproc/detail/imap_job.hpp"
#include "mproc/detail/wire/wire_job.hpp"
#include "mproc/detail/wire/worker_entry.hpp"

namespace mproc::detail {

template <class F, class View, Unpack unpack, bool outcomes>
class WireIMapJob final : public IMapJob<F, View, unpack, outcomes>, public WireJob {
    using Base = IMapJob<F, View, unpack, outcomes>;
    using typename Base::Item;
    using typename Base::Value;

  public:
    using Base::Base;

    WireJob* wire() noexcept override { return this; }

    static auto require_sendable() {
        require_sendable_callable<F>();
        require_sendable_value<Item>();
        require_sendable_value<Value>();
    }

    void encode_chunk(const Chunk& chunk, WireWriter& request) override {
        write_entry<&items_entry<F, Item, unpack, false>, F, Item, Value>(request);
        encode_callable(request, this->f_);
        request.write<std::uint64_t>(chunk.count);
        for (const std::optional<Item>& argument : Base::slot_of(chunk).arguments) {
            encode_value<Item>(request, *argument, ValueLifetime::outlives_send);
        }
    }

    bool complete_chunk(const Chunk& chunk, WireReader& response, long worker_pid,
                        std::exception_ptr lost) noexcept override {
        std::size_t i = 0;
        bool decoded = true;
        try {
            for (; i < chunk.count; ++i) {
                if (lost && response.remaining() == 0) {
                    for (; i < chunk.count; ++i) {
                        this->store_error(chunk, i, lost);
                    }
                    break;
                }
                std::exception_ptr error;
                auto value =
                    read_outcome<Value>(response, error, worker_pid, this->task_index(chunk, i));
                if (error) {
                    this->store_error(chunk, i, std::move(error));
                } else {
                    this->store_value(chunk, i, std::move(*value));
                }
            }
            if (response.remaining() != 0) {
                throw WireError("mproc: worker sent more outcomes than items");
            }
        } catch (...) {
            decoded = false;
            if (i == chunk.count) {
                i = 0; // the extra bytes cast doubt on every outcome before them
            }
            for (const auto error = std::current_exception(); i < chunk.count; ++i) {
                this->store_error(chunk, i, error);
            }
        }
        lost = nullptr; // before settling: the consumer must hold the last reference
        this->clear_arguments(chunk);
        this->chunk_settled(chunk);
        return decoded;
    }
};

template <class F, class View, Unpack unpack, bool outcomes>
struct WireJobFor<IMapJob<F, View, unpack, outcomes>> {
    using type = WireIMapJob<F, View, unpack, outcomes>;
};

} // namespace mproc::detail
