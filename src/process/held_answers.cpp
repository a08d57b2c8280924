// SPDX-License-Identifier: MIT
#include "held_answers.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>

#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {
namespace {

static_assert(sizeof(HeldAnswersHeader) <= held_answers_offset);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the header is shared between processes: its atomics must not be locks");

HeldAnswersHeader& header_of(std::byte* memory) {
    return *std::launder(reinterpret_cast<HeldAnswersHeader*>(memory));
}

} // namespace

HeldAnswers::~HeldAnswers() {
    if (memory_ != nullptr) {
        ::munmap(memory_, held_answers_size);
    }
}

bool HeldAnswers::attach(int channel_fd) {
    const int fd = ::memfd_create("mproc-held-answers", MFD_CLOEXEC);
    if (fd < 0) {
        refused_ = true;
        return false;
    }
    void* memory = MAP_FAILED;
    if (::ftruncate(fd, held_answers_size) == 0) {
        memory = ::mmap(nullptr, held_answers_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (memory == MAP_FAILED) {
        ::close(fd);
        refused_ = true;
        return false;
    }
    memory_ = static_cast<std::byte*>(memory);
    new (memory_) HeldAnswersHeader{}; // nothing held
    try {
        // Before anything is held: the caller must know where to look if this process dies.
        send_frame_with_fd(channel_fd, FrameKind::held_answers, fd);
    } catch (...) {
        ::close(fd);
        throw; // the channel broke
    }
    ::close(fd);
    return true;
}

bool HeldAnswers::hold(int channel_fd, FrameKind kind, std::uint32_t run_ns,
                       const std::byte* payload, std::size_t size) {
    if (refused_ || bytes_ + sizeof(FrameHeader) + size > held_answers_capacity ||
        (memory_ == nullptr && !attach(channel_fd))) {
        return false;
    }
    HeldAnswersHeader& shared = header_of(memory_);
    if (count_ == 0) {
        // Answers sent at once since the last held ones count too.
        shared.sent_before.store(sent_, std::memory_order_relaxed);
    }
    std::byte* at = memory_ + held_answers_offset + bytes_;
    const FrameHeader header{static_cast<std::uint32_t>(kind), run_ns, size};
    std::memcpy(at, &header, sizeof(header));
    if (size != 0) {
        std::memcpy(at + sizeof(header), payload, size);
    }
    bytes_ += sizeof(header) + size;
    ++count_;
    // Published after the bytes: whoever sees the count sees the frames.
    shared.published.store((std::uint64_t{count_} << 32) | bytes_, std::memory_order_release);
    return true;
}

void HeldAnswers::send(int channel_fd) {
    if (count_ == 0) {
        return;
    }
    send_bytes(channel_fd, {memory_ + held_answers_offset, bytes_});
    // Sent, so no longer held. Dying before this store leaves them published, with the count of
    // answers sent before them, and the caller, which read them on the socket, skips them.
    header_of(memory_).published.store(0, std::memory_order_release);
    sent_ += count_;
    count_ = 0;
    bytes_ = 0;
}

HeldAnswersView::HeldAnswersView(int fd) {
    struct stat status {};
    void* memory = MAP_FAILED;
    if (::fstat(fd, &status) == 0 && status.st_size == static_cast<off_t>(held_answers_size)) {
        memory = ::mmap(nullptr, held_answers_size, PROT_READ, MAP_SHARED, fd, 0);
    }
    ::close(fd);
    if (memory == MAP_FAILED) {
        throw WireError("mproc: a worker sent a descriptor that is not its held answers");
    }
    memory_ = static_cast<const std::byte*>(memory);
}

HeldAnswersView::~HeldAnswersView() {
    ::munmap(const_cast<std::byte*>(memory_), held_answers_size);
}

std::vector<std::byte> HeldAnswersView::unread_frames(std::uint64_t answers_read) const {
    const auto& header = *std::launder(reinterpret_cast<const HeldAnswersHeader*>(memory_));
    const std::uint64_t published = header.published.load(std::memory_order_acquire);
    const std::uint64_t sent_before = header.sent_before.load(std::memory_order_acquire);
    const std::uint64_t count = published >> 32;
    const std::uint64_t bytes = published & 0xffff'ffffU;
    if (count == 0) {
        return {};
    }
    if (bytes > held_answers_capacity || count * sizeof(FrameHeader) > bytes ||
        answers_read < sent_before) {
        throw WireError("mproc: a worker's held answers do not add up");
    }
    // Copied before parsing: the bytes are another process's.
    std::vector<std::byte> frames(memory_ + held_answers_offset,
                                  memory_ + held_answers_offset + bytes);
    // Skip those already read on the socket.
    std::size_t at = 0;
    for (std::uint64_t skip = answers_read - sent_before; skip > 0 && at < frames.size(); --skip) {
        if (frames.size() - at < sizeof(FrameHeader)) {
            throw WireError("mproc: a worker's held answers are cut short");
        }
        FrameHeader frame{};
        std::memcpy(&frame, frames.data() + at, sizeof(frame));
        if (frame.size > frames.size() - at - sizeof(FrameHeader)) {
            throw WireError("mproc: a worker's held answers are cut short");
        }
        at += sizeof(FrameHeader) + frame.size;
    }
    frames.erase(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(at));
    return frames;
}

} // namespace mproc::detail
