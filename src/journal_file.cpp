// SPDX-License-Identifier: MIT
#include "mproc/detail/journal_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

constexpr std::array<char, 8> magic{'M', 'P', 'R', 'O', 'C', 'J', 'N', 'L'};
constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_size = 32;
constexpr std::size_t record_head_size = 24;
constexpr std::size_t checksum_size = 8;

// The full 128-bit product of two 64-bit words folded: each output bit depends on every input bit.
__extension__ typedef unsigned __int128 Wide;
std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
    const Wide product = static_cast<Wide>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

template <class T>
T read_at(const std::byte* at) noexcept {
    T value;
    std::memcpy(&value, at, sizeof(T));
    return value;
}

template <class T>
void put(std::vector<std::byte>& out, const T& value) {
    const auto* bytes = reinterpret_cast<const std::byte*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

void write_all(int fd, const std::byte* data, std::size_t size, const std::string& path) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("mproc: cannot write the journal " + path);
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
}

} // namespace

std::uint64_t journal_hash(const void* data, std::size_t size, std::uint64_t seed) noexcept {
    constexpr std::uint64_t p0 = 0xa0761d6478bd642f, p1 = 0xe7037ed1a0b428db,
                            p2 = 0x8ebc6af09c88c6e3;
    const auto* bytes = static_cast<const unsigned char*>(data);
    std::uint64_t hash = mix(seed ^ p0, size ^ p1);
    std::size_t at = 0;
    for (; at + 8 <= size; at += 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes + at, 8);
        hash = mix(hash ^ word, p1);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes + at, size - at);
    return mix(mix(hash ^ tail, p2), p0);
}

void throw_changed_item(std::uint64_t index) {
    throw Error("mproc: input item " + std::to_string(index) +
                " is not the item whose result the journal holds: the input changed since the "
                "journal was written. Resuming would mix results: delete the journal to start "
                "over, or give the input it was written for");
}

JournalFile::JournalFile(const std::filesystem::path& path, std::uint64_t fingerprint)
    : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw_errno("mproc: cannot open the journal " + path_.string());
    }
    try {
        // Two calls appending to one journal would interleave their records: one at a time.
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) {
                throw Error("mproc: the journal " + path_.string() +
                            " is in use by another resumable call (in this process or another)");
            }
            throw_errno("mproc: cannot lock the journal " + path_.string());
        }
        load(fingerprint);
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

JournalFile::~JournalFile() { close(); }

void JournalFile::close() noexcept {
    if (fd_ < 0) {
        return;
    }
    if (!pending_.empty()) {
        try {
            flush();
        } catch (...) {
            // Nobody to tell: the records not written are computed again by the next run.
        }
    }
    ::close(fd_); // also releases the lock
    fd_ = -1;
}

void JournalFile::load(std::uint64_t fingerprint) {
    struct stat status {};
    if (::fstat(fd_, &status) != 0) {
        throw_errno("mproc: cannot read the journal " + path_.string());
    }
    contents_.resize(static_cast<std::size_t>(status.st_size));
    std::size_t have = 0;
    while (have < contents_.size()) {
        const ssize_t got = ::pread(fd_, contents_.data() + have, contents_.size() - have,
                                    static_cast<off_t>(have));
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            throw_errno("mproc: cannot read the journal " + path_.string());
        }
        if (got == 0) {
            break; // shortened meanwhile: what is there is what counts
        }
        have += static_cast<std::size_t>(got);
    }
    contents_.resize(have);
    if (contents_.empty()) {
        write_header(fingerprint);
        return;
    }
    const std::byte* data = contents_.data();
    if (contents_.size() < header_size || std::memcmp(data, magic.data(), magic.size()) != 0 ||
        read_at<std::uint64_t>(data + 24) != journal_hash(data, 24)) {
        throw Error("mproc: " + path_.string() +
                    " is not an mproc journal (or its header is damaged): give a new path, or "
                    "delete the file to start over");
    }
    if (read_at<std::uint32_t>(data + 8) != format_version) {
        throw Error("mproc: the journal " + path_.string() + " has format version " +
                    std::to_string(read_at<std::uint32_t>(data + 8)) + ", this mproc reads " +
                    std::to_string(format_version));
    }
    if (read_at<std::uint64_t>(data + 16) != fingerprint) {
        throw Error("mproc: the journal " + path_.string() +
                    " holds results of another function, item type or result type (or of "
                    "another build of this program): resuming from it would mix results. Delete "
                    "it to start over, or, if the function is unchanged, give "
                    "ResumeOptions::function_version to name its version across builds");
    }
    std::size_t at = header_size;
    while (contents_.size() - at >= record_head_size + checksum_size) {
        const std::byte* head = data + at;
        const auto size = read_at<std::uint64_t>(head + 16);
        const std::size_t room = contents_.size() - at - record_head_size - checksum_size;
        if (size > room) {
            break;
        }
        const std::byte* payload = head + record_head_size;
        const auto checksum = read_at<std::uint64_t>(payload + size);
        if (checksum != journal_hash(head, record_head_size + size)) {
            break;
        }
        // The first record of an index wins; a later one (there should be none) is ignored.
        records_.try_emplace(read_at<std::uint64_t>(head),
                             Record{read_at<std::uint64_t>(head + 8), {payload, size}});
        at += record_head_size + size + checksum_size;
    }
    torn_bytes_ = contents_.size() - at;
    if (torn_bytes_ != 0 && ::ftruncate(fd_, static_cast<off_t>(at)) != 0) {
        throw_errno("mproc: cannot cut the torn end off the journal " + path_.string());
    }
    if (::lseek(fd_, static_cast<off_t>(at), SEEK_SET) < 0) {
        throw_errno("mproc: cannot seek in the journal " + path_.string());
    }
}

void JournalFile::write_header(std::uint64_t fingerprint) {
    std::vector<std::byte> header;
    header.insert(header.end(), reinterpret_cast<const std::byte*>(magic.data()),
                  reinterpret_cast<const std::byte*>(magic.data()) + magic.size());
    put(header, format_version);
    put(header, std::uint32_t{0});
    put(header, fingerprint);
    put(header, journal_hash(header.data(), header.size()));
    write_all(fd_, header.data(), header.size(), path_.string());
    if (::fdatasync(fd_) != 0) {
        throw_errno("mproc: cannot sync the journal " + path_.string());
    }
}

const JournalFile::Record* JournalFile::find(std::uint64_t index) const noexcept {
    const auto found = records_.find(index);
    return found == records_.end() ? nullptr : &found->second;
}

void JournalFile::append(std::uint64_t index, std::uint64_t item_hash,
                         std::span<const std::byte> payload) {
    const std::size_t start = pending_.size();
    put(pending_, index);
    put(pending_, item_hash);
    put(pending_, static_cast<std::uint64_t>(payload.size()));
    pending_.insert(pending_.end(), payload.begin(), payload.end());
    put(pending_, journal_hash(pending_.data() + start, pending_.size() - start));
    if (pending_.size() >= flush_bytes || Clock::now() - last_flush_ >= flush_interval) {
        flush();
    }
}

void JournalFile::flush() {
    if (fd_ < 0) {
        throw Error("mproc: the journal " + path_.string() + " was closed");
    }
    write_all(fd_, pending_.data(), pending_.size(), path_.string());
    pending_.clear();
    if (::fdatasync(fd_) != 0) {
        throw_errno("mproc: cannot sync the journal " + path_.string());
    }
    last_flush_ = Clock::now();
}

} // namespace mproc::detail
