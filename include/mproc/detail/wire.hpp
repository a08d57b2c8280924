#pragma once
// Bytes that cross a process boundary: a growable writer and a bounds-checked reader. The reader
// trusts nothing: every read checks the remaining length and throws WireError, so a truncated or
// garbled frame from a worker is an error, never an out-of-bounds read.

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

/// Bytes as they cross a process or rank boundary.
using WireBytes = std::vector<std::byte, UninitializedAllocator<std::byte>>;

/// A frame that does not decode: truncated, too long, or of an unknown kind.
class WireError : public Error {
  public:
    using Error::Error;
};

class WireWriter {
  public:
    void write_bytes(const void* data, std::size_t size) {
        const auto* bytes = static_cast<const std::byte*>(data);
        bytes_.insert(bytes_.end(), bytes, bytes + size);
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
        bytes_.resize(at + size);
        return bytes_.data() + at;
    }

    /// Overwrites a value written earlier at `offset` (e.g. a length known only later).
    template <class T>
    void patch(std::size_t offset, const T& value) {
        std::memcpy(bytes_.data() + offset, &value, sizeof(T));
    }

    std::size_t size() const noexcept { return bytes_.size(); }
    const std::byte* data() const noexcept { return bytes_.data(); }
    void clear() noexcept { bytes_.clear(); }
    WireBytes& bytes() noexcept { return bytes_; }

  private:
    WireBytes bytes_;
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

  private:
    const std::byte* next_;
    const std::byte* end_;
};

} // namespace mproc::detail
