// SPDX-License-Identifier: MIT
#pragma once
// Bytes that cross a process boundary: a growable writer and a bounds-checked reader. The reader
// trusts nothing: every read checks the remaining length and throws WireError, so a truncated or
// garbled frame from a worker is an error, never an out-of-bounds read.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/huge_pages.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

/// An allocator that leaves the bytes of a buffer uninitialised when it grows (`resize`): a
/// buffer about to be overwritten (a block of items, a received message) then costs one pass
/// over its memory, not two. Everything else is std::allocator's.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    static_assert(std::is_trivially_default_constructible_v<T>);
    using value_type = T;
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    UninitializedAllocator() = default;
    template <class U>
    UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}

    template <class U>
    void construct(U* at) noexcept {
        ::new (static_cast<void*>(at)) U; // default-initialised: left as it is
    }
    template <class U, class... Args>
    void construct(U* at, Args&&... args) {
        ::new (static_cast<void*>(at)) U(std::forward<Args>(args)...);
    }
};

/// Bytes as they cross a process or rank boundary. libstdc++ copies the elements of a vector
/// whose allocator has a construct member one by one (its memmove is kept for std::allocator),
/// which for bytes runs at a tenth of memcpy's speed: grow one with resize_bytes, and copy bytes
/// in with assign_bytes or a WireWriter, never with insert, assign or a plain resize that
/// reallocates.
using WireBytes = std::vector<std::byte, UninitializedAllocator<std::byte>>;

/// Resizes `bytes` to `size`, the new bytes uninitialised; the old ones move in one memcpy when
/// it reallocates (to at least twice its capacity, as vector would).
inline void resize_bytes(WireBytes& bytes, std::size_t size) {
    if (size > bytes.capacity()) {
        WireBytes larger;
        larger.reserve(std::max(size, 2 * bytes.capacity()));
        advise_huge_pages(larger.data(), larger.capacity()); // before anything touches it
        larger.resize(size);                                 // nothing is copied: it was empty
        if (!bytes.empty()) {
            std::memcpy(larger.data(), bytes.data(), bytes.size());
        }
        bytes.swap(larger);
    } else {
        bytes.resize(size);
    }
}

/// Makes `bytes` a copy of `size` bytes at `data`, in one memcpy.
inline void assign_bytes(WireBytes& bytes, const std::byte* data, std::size_t size) {
    bytes.clear(); // nothing to keep if it reallocates
    resize_bytes(bytes, size);
    if (size != 0) {
        std::memcpy(bytes.data(), data, size);
    }
}

/// A frame that does not decode: truncated, too long, or of an unknown kind.
class WireError : public Error {
  public:
    using Error::Error;
};

class WireWriter {
  public:
    void write_bytes(const void* data, std::size_t size) {
        // Grown, then one memcpy: vector::insert would copy byte by byte (libstdc++ keeps its
        // memmove for allocators without a construct member, which UninitializedAllocator has),
        // at a tenth of memcpy's speed for a megabyte.
        if (size != 0) {
            std::memcpy(grow(size), data, size);
        }
    }

    template <class T>
    void write(const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        write_bytes(&value, sizeof(T));
    }

    void write_string(std::string_view text) {
        write<std::uint64_t>(text.size());
        write_bytes(text.data(), text.size());
    }

    /// Room for `size` bytes at the end, uninitialised, to be filled in place (e.g. by a block
    /// copy).
    std::byte* grow(std::size_t size) {
        const std::size_t at = bytes_.size();
        resize_bytes(bytes_, at + size);
        return bytes_.data() + at;
    }

    /// Overwrites a value written earlier at `offset` (e.g. a length known only later).
    template <class T>
    void patch(std::size_t offset, const T& value) {
        std::memcpy(bytes_.data() + own_offset(offset), &value, sizeof(T));
    }

    /// Lets write_borrowed refer to large blocks instead of copying them. Only for a writer
    /// that is sent, or cleared, before anything it refers to can change or end: a worker
    /// process's outbox, sent in the I/O turn that encoded its chunks, while the chunks' jobs
    /// (and so their inputs) are alive.
    void allow_borrowing() noexcept { borrowing_ = true; }

    /// Appends `size` bytes at `data`: by reference where the writer allows it and the block is
    /// large (the caller then keeps them unchanged until the writer is sent or cleared), copied
    /// otherwise.
    void write_borrowed(const void* data, std::size_t size) {
        if (!borrowing_ || size < min_borrowed_bytes) {
            write_bytes(data, size);
            return;
        }
        borrowed_.push_back(
            {bytes_.size(), this->size(), static_cast<const std::byte*>(data), size});
        borrowed_bytes_ += size;
    }

    /// Drops everything from `size` on (e.g. a frame refused after it was begun).
    void truncate(std::size_t size) {
        while (!borrowed_.empty() && borrowed_.back().logical_at >= size) {
            borrowed_bytes_ -= borrowed_.back().size;
            borrowed_.pop_back();
        }
        if (!borrowed_.empty() && borrowed_.back().logical_at + borrowed_.back().size > size) {
            Borrowed& last = borrowed_.back(); // cut inside it
            borrowed_bytes_ -= last.size - (size - last.logical_at);
            last.size = size - last.logical_at;
        }
        bytes_.resize(size - borrowed_bytes_);
    }

    /// Calls `part(data, size)` for the contents in order: the writer's own bytes and the
    /// blocks it refers to.
    template <class Part>
    void for_each_part(Part&& part) const {
        std::size_t own = 0;
        for (const Borrowed& block : borrowed_) {
            if (block.at > own) {
                part(bytes_.data() + own, block.at - own);
                own = block.at;
            }
            part(block.data, block.size);
        }
        if (bytes_.size() > own) {
            part(bytes_.data() + own, bytes_.size() - own);
        }
    }

    std::size_t size() const noexcept { return bytes_.size() + borrowed_bytes_; }
    /// The contents from `offset` to the end, contiguous, if they are all the writer's own
    /// bytes; nullptr if a block it refers to lies among them.
    const std::byte* own_bytes_from(std::size_t offset) const noexcept {
        if (!borrowed_.empty() && borrowed_.back().logical_at + borrowed_.back().size > offset) {
            return nullptr;
        }
        return bytes_.data() + (offset - borrowed_bytes_);
    }
    /// The bytes, for a writer that refers to none (see write_borrowed).
    const std::byte* data() const noexcept { return bytes_.data(); }
    void clear() noexcept {
        bytes_.clear();
        borrowed_.clear();
        borrowed_bytes_ = 0;
    }
    /// The bytes, for a writer that refers to none (see write_borrowed).
    WireBytes& bytes() noexcept { return bytes_; }

  private:
    /// Below this a copy costs less than another part to send.
    static constexpr std::size_t min_borrowed_bytes = std::size_t{16} << 10;

    struct Borrowed {
        std::size_t at;         // where it goes among the writer's own bytes
        std::size_t logical_at; // where it starts in the contents
        const std::byte* data;
        std::size_t size;
    };

    /// Where the byte at `offset` in the contents lies among the writer's own bytes (it must be
    /// one of them).
    std::size_t own_offset(std::size_t offset) const noexcept {
        std::size_t before = 0;
        for (const Borrowed& block : borrowed_) {
            if (block.logical_at >= offset) {
                break;
            }
            before += block.size;
        }
        return offset - before;
    }

    WireBytes bytes_;
    std::vector<Borrowed> borrowed_; // in order
    std::size_t borrowed_bytes_ = 0;
    bool borrowing_ = false;
};

class WireReader {
  public:
    WireReader(const std::byte* data, std::size_t size) : next_(data), end_(data + size) {}

    void read_bytes(void* out, std::size_t size) { std::memcpy(out, take(size), size); }

    /// The next `size` bytes, in place; throws WireError if fewer remain.
    const std::byte* take(std::size_t size) {
        if (size > remaining()) {
            throw WireError("mproc: truncated frame (wanted " + std::to_string(size) + " bytes, " +
                            std::to_string(remaining()) + " left)");
        }
        const std::byte* at = next_;
        next_ += size;
        return at;
    }

    template <class T>
    T read() {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        read_bytes(&value, sizeof(T));
        return value;
    }

    std::string read_string() {
        const auto size = read<std::uint64_t>();
        const std::byte* at = take(size);
        return std::string(reinterpret_cast<const char*>(at), size);
    }

    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - next_); }

    /// Lets the blocks a worker process lent (lent_memory.hpp) be read from its memory: for the
    /// answers of a worker that may lend, and only those.
    void read_lent_from(long pid) noexcept { lender_ = pid; }
    /// The process lent blocks are read from; -1 where none may be.
    long lender() const noexcept { return lender_; }

  private:
    const std::byte* next_;
    const std::byte* end_;
    long lender_ = -1;
};

} // namespace mproc::detail
