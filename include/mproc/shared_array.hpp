// SPDX-License-Identifier: MIT
#pragma once
/// @file shared_array.hpp
/// `mproc::SharedArray<T>`: an array in memory that the caller shares with its worker
/// processes, so that a task reads (and, where the caller allows, writes) the caller's pages
/// instead of a copy. Python's `multiprocessing.shared_memory`, without names to clean up.

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

namespace mproc {

namespace detail {

/// A region of shared memory mapped in this process (a memfd: anonymous, so nothing is left
/// in /dev/shm whatever happens), unmapped when the last SharedArray that refers to it goes.
class SharedRegion {
  public:
    /// A new region of `bytes` zero bytes, created by this process. Throws std::length_error
    /// for a size no mapping can have and std::bad_alloc when the kernel refuses it.
    explicit SharedRegion(std::size_t bytes);
    /// The region that process `pid` holds open as its descriptor `fd`, mapped here (a worker
    /// process on the caller's host), read-only unless `writable`. Throws mproc::Error when it
    /// cannot be opened or is smaller than `bytes`.
    SharedRegion(long pid, int fd, std::size_t bytes, bool writable);
    /// Bytes [offset, offset + window) of such a region of `bytes`, mapped at once (a map
    /// chunk's items or results: the pages are filled in one call, not faulted in one by one).
    /// data() is the byte at `offset`.
    SharedRegion(long pid, int fd, std::size_t bytes, bool writable, std::size_t offset,
                 std::size_t window);
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;
    ~SharedRegion();

    std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    /// This process's descriptor of the region; -1 for a region mapped from another process's
    /// (the mapping alone keeps the memory) or for an empty one.
    int fd() const noexcept { return fd_; }

  private:
    /// Opens process `pid`'s descriptor `fd` of a region of `bytes` and maps size_ bytes of it
    /// from `offset`.
    void map_from(long pid, int fd, std::size_t bytes, bool writable, std::size_t offset,
                  bool populate);

    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    int fd_ = -1;
    std::size_t mapped_before_ = 0; // of data_, for a window that starts inside a page
};

/// Throws std::length_error unless `count` elements of `size` bytes fit in one mapping.
std::size_t shared_bytes(std::size_t count, std::size_t size);

template <class T>
struct SharedArrayCodec; // how a SharedArray crosses a process boundary:
                         // wire/shared_array_codec.hpp

} // namespace detail

/// An array of `T` in shared memory. Copies are handles to the same elements, as
/// `std::shared_ptr` copies are: the memory lives while any copy does, in the caller or in a
/// task. It crosses to a task as such a handle:
/// - on `mproc::Pool` (every start method), the worker process maps the caller's pages: no
///   copy either way, and what a task writes into a `SharedArray<T>` the caller sees once the
///   task has ended. A `SharedArray<const T>` is mapped read-only in the worker: a task that
///   writes into it dies of SIGSEGV, which is that task's `mproc::WorkerLost`;
/// - on `mproc::ThreadPool` the tasks share the caller's memory anyway;
/// - on `mproc::MpiPool` it crosses as its bytes, one copy per task, as ranks may be on other
///   hosts: what a task writes there stays there.
///
/// `T` must cross as its bytes (see "What crosses to a worker process" in the README:
/// arithmetic types, enums, aggregates of them). The elements are zero at first. Tasks that
/// write must write disjoint elements, or synchronise as threads would. A task may keep its
/// copy past its call (it keeps the memory mapped in its worker), but it sees what the caller
/// writes later only on `Pool` and `ThreadPool`.
///
/// Example:
/// @code
///   mproc::SharedArray<float> pixels(4096 * 4096);           // 64 MiB, shared
///   pool.map([](std::pair<mproc::SharedArray<float>, int> tile) { ... }, tiles);
/// @endcode
template <class T>
class SharedArray {
    using Element = std::remove_const_t<T>;
    static_assert(std::is_trivially_copyable_v<Element> && !std::is_pointer_v<Element> &&
                      !std::is_volatile_v<T>,
                  "mproc: SharedArray<T> holds trivially copyable values that are not "
                  "addresses (numbers, enums, aggregates of them)");

  public:
    /// The element without `const`, as in `std::span`.
    using value_type = Element;
    /// The element as declared (`const` for a read-only array).
    using element_type = T;
    /// An element count.
    using size_type = std::size_t;
    /// A pointer into the array.
    using iterator = T*;

    /// An empty array.
    SharedArray() = default;

    /// `count` zero elements in new shared memory.
    explicit SharedArray(std::size_t count)
        : region_(count == 0 ? nullptr
                             : std::make_shared<detail::SharedRegion>(
                                   detail::shared_bytes(count, sizeof(Element)))),
          count_(count) {}

    /// A shared copy of `values`.
    explicit SharedArray(std::span<const Element> values) : SharedArray(values.size()) {
        if (!values.empty()) {
            std::memcpy(static_cast<void*>(data()), values.data(), values.size_bytes());
        }
    }

    /// The same elements, read-only: a task that takes it cannot write them on `Pool`.
    operator SharedArray<const Element>() const requires(!std::is_const_v<T>) {
        return SharedArray<const Element>(region_, count_);
    }

    /// The first element (null for an empty array).
    T* data() const noexcept { return region_ ? reinterpret_cast<T*>(region_->data()) : nullptr; }
    /// The number of elements.
    std::size_t size() const noexcept { return count_; }
    /// Whether there are no elements.
    bool empty() const noexcept { return count_ == 0; }
    /// The elements' range, as a container's.
    ///@{
    T* begin() const noexcept { return data(); }
    T* end() const noexcept { return data() + count_; }
    ///@}
    /// Element `i`, unchecked.
    T& operator[](std::size_t i) const noexcept { return data()[i]; }
    /// The elements as a span.
    std::span<T> span() const noexcept { return {data(), count_}; }

    /// Whether both refer to the same memory.
    bool shares_memory_with(const SharedArray& other) const noexcept {
        return region_ == other.region_;
    }

    /// cereal's entry points; what they do is in wire/shared_array_codec.hpp, which the
    /// process and MPI pools include.
    ///@{
    template <class Archive>
    void save(Archive& archive) const {
        detail::SharedArrayCodec<T>::save(archive, *this);
    }
    template <class Archive>
    void load(Archive& archive) {
        detail::SharedArrayCodec<T>::load(archive, *this);
    }
    ///@}

  private:
    template <class>
    friend class SharedArray;
    template <class>
    friend struct detail::SharedArrayCodec;

    SharedArray(std::shared_ptr<detail::SharedRegion> region, std::size_t count)
        : region_(std::move(region)), count_(count) {}

    std::shared_ptr<detail::SharedRegion> region_;
    std::size_t count_ = 0;
};

} // namespace mproc
