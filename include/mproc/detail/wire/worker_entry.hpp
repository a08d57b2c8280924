// SPDX-License-Identifier: MIT
#pragma once
// What a worker process runs for a chunk, and how outcomes cross back.
//
// The caller names the entry by its CodeAddress (module + offset, never a raw address), so a
// worker that runs a different binary cannot resolve it and refuses the chunk. An entry is a
// template instantiated for the call's function and item types, so it exists in every copy of
// the binary that sent it. The types' fingerprint follows the name (types_fingerprint), so
// that a module that resolves the name but is another build (one without a build id, whose
// name is its path) refuses the chunk instead of misreading it.
//
// Response payload: one outcome per item, in item order: a status byte, then the value
// (status 0) or the encoded exception (status 1). A map chunk stops after its first failure, so
// the caller must accept fewer outcomes than items. map over items and results that cross as
// bytes uses a block format instead (block_items_entry).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/detail/call.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/callable_codec.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {

using WorkerEntry = void (*)(WireReader& request, WireWriter& response);

/// A hash of the names and sizes of the types an entry reads and writes (FNV-1a).
template <class... Types>
consteval std::uint64_t types_fingerprint() {
    std::uint64_t hash = 14695981039346656037ull;
    const auto mix = [&hash](std::uint64_t byte) { hash = (hash ^ byte) * 1099511628211ull; };
    for (const char c : type_signature<std::tuple<Types...>>()) {
        mix(static_cast<unsigned char>(c));
    }
    for (const std::size_t size : {std::size_t{0}, sizeof(Types)...}) {
        for (int shift = 0; shift < 64; shift += 8) {
            mix((size >> shift) & 0xff);
        }
    }
    return hash;
}

/// Throws mproc::Error: a request's fingerprint is not the entry's (see above).
[[noreturn]] void throw_types_mismatch(std::uint64_t expected, std::uint64_t sent);

/// Reads the fingerprint that follows the entry's name and checks it against `Types`'.
template <class... Types>
void check_types(WireReader& in) {
    constexpr std::uint64_t expected = types_fingerprint<Types...>();
    const auto sent = in.read<std::uint64_t>();
    if (sent != expected) {
        throw_types_mismatch(expected, sent);
    }
}

enum class OutcomeStatus : std::uint8_t { value = 0, error = 1 };

/// What a worker's fatal-signal handler reports about the chunk it was running (see
/// crash_handler.hpp): the entries below write it around each item's call; only the handler,
/// on the same thread, reads it. One per worker process.
struct RunningItem {
    static constexpr std::uint64_t none = ~std::uint64_t{0};
    const std::byte* outcomes = nullptr; // the response so far; null while it may move
    std::size_t finished_bytes = 0;      // the outcomes of the items before this one
    std::uint64_t index = none;          // the item within its chunk; none between items
};
inline RunningItem running_item;

/// Whether an entry's outcome may be lent (lent_memory.hpp): only where it is the answer's
/// only one, so that a crash report's finished outcomes never refer to a dead process's memory.
enum class MayLend { no, yes };

/// Writes the outcome of running `produce()` for the chunk's item `index`: its value, or the
/// exception it (or the value's encoding) threw. Returns false for an error.
template <MayLend may_lend = MayLend::no, class Produce>
bool write_outcome(WireWriter& out, std::uint64_t index, Produce&& produce) noexcept {
    const std::size_t start = out.size();
    try {
        out.write(OutcomeStatus::value);
        // The response does not move while the task runs, so a crash report can send the
        // outcomes finished before it. The fences keep these stores where they are written.
        running_item = {out.data(), start, index};
        std::atomic_signal_fence(std::memory_order_seq_cst);
        auto&& value = produce();
        std::atomic_signal_fence(std::memory_order_seq_cst);
        running_item.outcomes = nullptr; // encoding may grow (move) the response
        std::atomic_signal_fence(std::memory_order_seq_cst);
        bool lent = false;
        if constexpr (may_lend == MayLend::yes) {
            lent = lend_block(out, std::forward<decltype(value)>(value));
        }
        if (!lent) {
            encode_value(out, value);
        }
        running_item.index = RunningItem::none;
        return true;
    } catch (...) {
        running_item.index = RunningItem::none;
        out.truncate(start); // drop a half-written value
        try {
            out.write(OutcomeStatus::error);
            encode_exception(out, std::current_exception());
        } catch (...) {
            std::terminate(); // only if memory for an error message cannot be had
        }
        return false;
    }
}

/// Reads one outcome written by write_outcome: the value, or sets `error`.
template <class T>
std::optional<T> read_outcome(WireReader& in, std::exception_ptr& error, long worker_pid,
                              unsigned long long task_index) {
    const auto status = in.read<OutcomeStatus>();
    if (status == OutcomeStatus::value) {
        return decode_value<T>(in);
    }
    if (status != OutcomeStatus::error) {
        throw WireError("mproc: bad outcome status");
    }
    error = decode_exception(in, worker_pid, task_index);
    return std::nullopt;
}

/// map/imap items: request = callable, item count, items; response = one outcome per item.
template <class F, class Item, Unpack unpack, bool stop_at_first_failure>
void items_entry(WireReader& in, WireWriter& out) {
    check_types<F, Item, item_result_t<F, Item, unpack>>(in);
    const F f = decode_callable<F>(in);
    const auto count = in.read<std::uint64_t>();
    for (std::uint64_t i = 0; i < count; ++i) {
        const Item item = decode_value<Item>(in);
        const bool ok =
            write_outcome(out, i, [&] { return ItemCall<F, Item, unpack>::call(f, item); });
        if (!ok && stop_at_first_failure) {
            return;
        }
    }
}

/// Whether values of T cross as their bytes and can be read into a default-constructed T: map
/// then moves a chunk's items and results as one block each.
template <class T>
inline constexpr bool
    block_transport_v = transport_of<T>() == Transport::bytes&& std::is_default_constructible_v<T>;

/// Reads where a block of `count` elements of `size` bytes lies (BlockPlace, and a SharedSpan
/// when in shared memory, which it maps into `mapping` for the chunk); returns its first byte
/// there, or null when the block is in the frame.
inline std::byte* map_shared_block(WireReader& in, std::uint64_t count, std::size_t size,
                                   bool writable, std::optional<SharedRegion>& mapping) {
    const auto place = in.read<BlockPlace>();
    if (place == BlockPlace::in_frame) {
        return nullptr;
    }
    const auto span = in.read<SharedSpan>();
    constexpr auto max_mapping = static_cast<std::uint64_t>(PTRDIFF_MAX);
    if (place != BlockPlace::shared_memory || span.region_bytes > max_mapping ||
        span.offset > span.region_bytes || count > (span.region_bytes - span.offset) / size) {
        throw WireError("mproc: a block of map items or results lies outside its shared memory");
    }
    mapping.emplace(static_cast<long>(span.pid), static_cast<int>(span.fd),
                    static_cast<std::size_t>(span.region_bytes), writable,
                    static_cast<std::size_t>(span.offset), static_cast<std::size_t>(count * size));
    return mapping->data();
}

/// map over items and results that both cross as bytes. Request = callable, item count, where
/// the items are and where the results go (map_shared_block: in the frame, or in a SharedArray's
/// memory the worker maps), then the items as one block if they are in the frame. Response =
/// the number of results, the results as one block unless they went to shared memory, and, when
/// that number is short of the count, the exception that stopped the chunk (as Python's mapstar
/// does). No per-item status, so that at about 1 ns an item, encoding is not what a chunk costs.
template <class F, class Item, Unpack unpack>
void block_items_entry(WireReader& in, WireWriter& out) {
    using Value = item_result_t<F, Item, unpack>;
    check_types<F, Item, Value>(in);
    const F f = decode_callable<F>(in);
    const auto count = in.read<std::uint64_t>();
    std::optional<SharedRegion> shared_items;
    std::optional<SharedRegion> shared_results;
    const std::byte* items = map_shared_block(in, count, sizeof(Item), false, shared_items);
    std::byte* const results_there =
        map_shared_block(in, count, sizeof(Value), true, shared_results);
    if (items == nullptr) {
        if (count > in.remaining() / sizeof(Item)) {
            throw WireError("mproc: truncated block of map items");
        }
        items = in.take(count * sizeof(Item));
    }
    const std::size_t header = out.size();
    out.write<std::uint64_t>(count);
    std::byte* results = results_there != nullptr ? results_there : out.grow(count * sizeof(Value));
    // A crash report names the item running, but sends no outcomes: a block has no per-item
    // ones, and the call fails with the crash anyway.
    running_item.outcomes = nullptr;
    for (std::uint64_t i = 0; i < count; ++i) {
        Item item;
        std::memcpy(static_cast<void*>(std::addressof(item)), items + i * sizeof(Item),
                    sizeof(Item));
        running_item.index = i;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        try {
            const Value value = ItemCall<F, Item, unpack>::call(f, item);
            std::memcpy(results + i * sizeof(Value), std::addressof(value), sizeof(Value));
        } catch (...) {
            running_item.index = RunningItem::none;
            out.truncate(header + sizeof(std::uint64_t) +
                         (results_there != nullptr ? 0 : i * sizeof(Value)));
            out.patch(header, i);
            encode_exception(out, std::current_exception());
            return;
        }
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    running_item.index = RunningItem::none;
}

/// apply: request = callable, arguments; response = one outcome.
template <class F, class... Args>
void apply_entry(WireReader& in, WireWriter& out) {
    check_types<F, Args..., call_result_t<F, Args...>>(in);
    const F f = decode_callable<F>(in);
    std::tuple<Args...> args{decode_value<Args>(in)...};
    write_outcome<MayLend::yes>(out, 0, [&] {
        return std::apply([&](Args&... a) { return call_storing(f, std::move(a)...); }, args);
    });
}

/// The entry's name, computed once per instantiation.
template <WorkerEntry entry>
const CodeAddress& entry_address() {
    static const CodeAddress address = code_address_of(reinterpret_cast<const void*>(entry));
    return address;
}

/// Starts a run request: the entry's name and the fingerprint of `Types`, the types the entry
/// checks (check_types); the entry's own payload follows.
template <WorkerEntry entry, class... Types>
void write_entry(WireWriter& out) {
    out.write(entry_address<entry>());
    out.write(types_fingerprint<Types...>());
}

} // namespace mproc::detail
