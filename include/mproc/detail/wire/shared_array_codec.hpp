// SPDX-License-Identifier: MIT
#pragma once
// How a mproc::SharedArray crosses a process boundary. To a worker process on the caller's
// host (mproc::Pool's requests) it crosses as a handle: the caller's pid and its descriptor
// of the memfd, which the worker opens through /proc and maps, so no element is copied. Every
// other way (MpiPool's ranks, a worker's answers, whose process may be gone by the time they
// are read) it crosses as its bytes.

#include <cereal/cereal.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/shared_array.hpp"

namespace mproc::detail {

/// Whether this thread encodes for a process that can map this process's memory: set by
/// ThisHostRequests while the process pool writes a request.
bool encoding_for_this_host() noexcept;

/// Marks the requests this thread encodes in its scope as going to a worker process on this
/// host.
class ThisHostRequests {
  public:
    ThisHostRequests() noexcept;
    ThisHostRequests(const ThisHostRequests&) = delete;
    ThisHostRequests& operator=(const ThisHostRequests&) = delete;
    ~ThisHostRequests();

  private:
    bool previous_;
};

/// The process that encoded, for a worker to open its descriptor through /proc.
long this_process_id() noexcept;

/// Process `pid`'s region `fd` of `bytes`, mapped in this process (a worker on the caller's
/// host), read-only unless `writable`. A worker that runs task after task keeps the last few
/// mappings, and a task handed a region it has mapped gets that mapping again (when the
/// caller's descriptor still names the same memory): no map, unmap and page faults per call.
std::shared_ptr<SharedRegion> map_callers_region(long pid, int fd, std::size_t bytes,
                                                 bool writable);

/// Drops the mappings map_callers_region keeps: a worker calls it before it waits for its next
/// request, so that memory the caller has freed is never held by an idle worker.
void forget_callers_regions() noexcept;

/// Where a run of bytes lies in a SharedArray's memory, for a worker process on this host to
/// map: the process and its descriptor of the memory, the memory's size, and the offset of
/// the run's first byte in it.
struct SharedSpan {
    std::int64_t pid;
    std::int64_t fd; // as wide as the rest: the struct crosses as its bytes, with no padding
    std::uint64_t region_bytes;
    std::uint64_t offset;
};

/// Where a map chunk's items come from, or its results go (a byte in its request).
enum class BlockPlace : std::uint8_t {
    in_frame = 0,      // the bytes are in the request or the response
    shared_memory = 1, // a SharedSpan follows: the worker maps it and reads or writes there
};

/// The SharedSpan of [data, data + bytes) when those bytes lie in the memory of a live
/// SharedArray this process created (a map's contiguous input, or map_into's output); empty
/// otherwise (then they cross as bytes).
std::optional<SharedSpan> find_shared_span(const void* data, std::size_t bytes) noexcept;

/// The first byte of an encoded SharedArray: how its elements cross.
inline constexpr std::uint8_t shared_array_handle = 1;
inline constexpr std::uint8_t shared_array_bytes = 2;

template <class T>
struct SharedArrayCodec {
    using Element = std::remove_const_t<T>;
    static_assert(transport_of<Element>() == Transport::bytes,
                  "mproc: the elements of a SharedArray<T> cross as their bytes, so T must be "
                  "provably free of addresses (see 'What crosses to a worker process' in the "
                  "README), or declared so with mproc::address_free<T>");

    template <class Archive>
    static void save(Archive& archive, const SharedArray<T>& array) {
        const std::uint64_t count = array.count_;
        if (encoding_for_this_host() && array.region_) {
            archive(shared_array_handle, count, static_cast<std::int64_t>(this_process_id()),
                    static_cast<std::int32_t>(array.region_->fd()));
        } else {
            archive(shared_array_bytes, count);
            archive(cereal::binary_data(array.data(), shared_bytes(array.count_, sizeof(T))));
        }
    }

    template <class Archive>
    static void load(Archive& archive, SharedArray<T>& array) {
        std::uint8_t form = 0;
        std::uint64_t count = 0;
        archive(form, count);
        std::size_t bytes = 0;
        try {
            bytes = shared_bytes(static_cast<std::size_t>(count), sizeof(T));
        } catch (const std::length_error&) {
            throw WireError("mproc: a SharedArray announces " + std::to_string(count) +
                            " elements, more than any mapping holds");
        }
        if (form == shared_array_handle) {
            std::int64_t pid = 0;
            std::int32_t fd = -1;
            archive(pid, fd);
            array = SharedArray<T>(
                map_callers_region(static_cast<long>(pid), fd, bytes, !std::is_const_v<T>),
                static_cast<std::size_t>(count));
        } else if (form == shared_array_bytes) {
            SharedArray<Element> local(static_cast<std::size_t>(count));
            archive(cereal::binary_data(local.data(), bytes));
            array = SharedArray<T>(std::move(local.region_), local.count_);
        } else {
            throw WireError("mproc: a SharedArray arrived in an unknown form");
        }
    }
};

} // namespace mproc::detail
