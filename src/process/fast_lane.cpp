// SPDX-License-Identifier: MIT
#include "fast_lane.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>

namespace mproc::detail {
namespace {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the lane is shared between processes: its atomics must not be locks");

} // namespace

FastLane::FastLane() {
    fd_ = ::memfd_create("mproc-fast-lane", MFD_CLOEXEC);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "memfd_create");
    }
    void* memory = MAP_FAILED;
    if (::ftruncate(fd_, sizeof(Memory)) == 0) {
        memory = ::mmap(nullptr, sizeof(Memory), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    }
    if (memory == MAP_FAILED) {
        const int error = errno;
        close_descriptor();
        throw std::system_error(error, std::generic_category(), "mmap");
    }
    memory_ = new (memory) Memory{}; // nothing posted, nobody asleep
}

FastLane::FastLane(int fd) {
    struct stat status {};
    void* memory = MAP_FAILED;
    if (::fstat(fd, &status) == 0 && status.st_size == static_cast<off_t>(sizeof(Memory))) {
        memory = ::mmap(nullptr, sizeof(Memory), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    ::close(fd);
    if (memory == MAP_FAILED) {
        throw WireError("mproc: a worker sent a descriptor that is not its fast lane");
    }
    memory_ = std::launder(static_cast<Memory*>(memory));
}

FastLane::~FastLane() {
    close_descriptor();
    if (memory_ != nullptr) {
        ::munmap(memory_, sizeof(Memory));
    }
}

void FastLane::close_descriptor() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

bool FastLane::post(FastLaneHalf& half, std::uint64_t& count, FrameKind kind, std::uint32_t run_ns,
                    std::uint64_t releases_before, const std::byte* payload,
                    std::size_t size) noexcept {
    half.kind = static_cast<std::uint32_t>(kind);
    half.run_ns = run_ns;
    half.size = size;
    half.releases_before = releases_before;
    if (size != 0) {
        std::memcpy(half.payload, payload, size);
    }
    // Sequentially consistent, as the reader's store and load in sleep(): of this store and that
    // one, whichever comes first in their single order is seen by the other side's load, so
    // either the reader sees this post or this sees the reader asleep.
    half.posted.store(++count, std::memory_order_seq_cst);
    return half.reader_asleep.load(std::memory_order_seq_cst) != 0;
}

bool FastLane::take(FastLaneHalf& half, std::uint64_t& taken, FastLaneMessage& message) {
    const std::uint64_t posted = half.posted.load(std::memory_order_acquire);
    if (posted == taken) {
        return false;
    }
    // One message at a time: the writer posts the next only after this one was answered.
    const std::uint64_t size = half.size;
    if (posted != taken + 1 || size > fast_lane_capacity) {
        throw WireError("mproc: a fast lane's message cannot be true");
    }
    const FrameHeader header{half.kind, half.run_ns, size};
    message.kind = checked_frame_kind(header);
    message.run_ns = header.run_ns;
    message.releases_before = half.releases_before;
    message.payload.assign(half.payload, half.payload + size);
    taken = posted;
    return true;
}

bool FastLane::sleep(FastLaneHalf& half, std::uint64_t taken) noexcept {
    half.reader_asleep.store(1, std::memory_order_seq_cst); // against post()'s pair
    if (half.posted.load(std::memory_order_seq_cst) != taken) {
        half.reader_asleep.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

} // namespace mproc::detail
