// SPDX-License-Identifier: MIT
#pragma once
// The file under a resumable map (mproc/resumable.hpp): an append-only log of finished items.
//
// Layout, little-endian as this machine writes it (a journal is read back by the program that
// wrote it, on the same machine):
//   header: "MPROCJNL", u32 format version, u32 zero, u64 fingerprint, u64 checksum of the 24
//           bytes before it
//   record: u64 item index, u64 hash of the item's encoding, u64 payload size, the payload (the
//           result's encoding), u64 checksum of the 24-byte head and the payload
// A record is only trusted whole: opening stops at the first record that is cut short or whose
// checksum fails (a write torn by a crash) and truncates the file there, so what is appended
// next follows the last intact record.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mproc/detail/deadline.hpp"

namespace mproc::detail {

/// A 64-bit hash of `size` bytes (not cryptographic: it tells a changed item or a torn record
/// from an intact one, it does not resist someone forging one).
std::uint64_t journal_hash(const void* data, std::size_t size, std::uint64_t seed = 0) noexcept;

/// Throws the mproc::Error for input item `index` differing from the item its record was
/// computed from.
[[noreturn]] void throw_changed_item(std::uint64_t index);

class JournalFile {
  public:
    /// Opens the journal at `path`, creating it (with `fingerprint` in its header) if it does
    /// not exist or is empty, and loads every intact record.
    /// @param what the call the journal is for, for the error messages.
    /// @throws mproc::Error if the file is not a journal, if its fingerprint is not `fingerprint`
    ///     (it was written for another function, item or result type), or if another process
    ///     holds it open for a resumable call; std::system_error if it cannot be opened, read,
    ///     truncated or locked.
    JournalFile(const std::filesystem::path& path, std::uint64_t fingerprint);
    /// close().
    ~JournalFile();
    JournalFile(const JournalFile&) = delete;
    JournalFile& operator=(const JournalFile&) = delete;

    struct Record {
        std::uint64_t item_hash;
        std::span<const std::byte> payload;
    };
    /// The record of item `index`, or nullptr if none was found when the journal was opened.
    const Record* find(std::uint64_t index) const noexcept;
    /// How many intact records the journal held when it was opened.
    std::size_t loaded() const noexcept { return records_.size(); }
    /// Bytes of a torn tail cut off when it was opened (0 if it ended with an intact record).
    std::uint64_t torn_bytes() const noexcept { return torn_bytes_; }

    /// Appends the record of item `index`; it reaches the file at the next flush, which this
    /// call makes when `flush_bytes` are buffered or `flush_interval` has passed since the last.
    void append(std::uint64_t index, std::uint64_t item_hash, std::span<const std::byte> payload);
    /// Writes what is buffered and waits until it is on the disk (fdatasync).
    /// @throws std::system_error if writing or syncing fails.
    void flush();

    /// Writes out what is buffered (errors ignored: see flush() for the checked way; the records
    /// not written are computed again by the next run) and closes the file, which lets another
    /// call open it. The records loaded stay readable. Idempotent.
    void close() noexcept;

    static constexpr std::size_t flush_bytes = std::size_t{1} << 20;
    static constexpr std::chrono::milliseconds flush_interval{100};

  private:
    void load(std::uint64_t fingerprint);
    void write_header(std::uint64_t fingerprint);

    std::filesystem::path path_;
    int fd_ = -1;
    std::vector<std::byte> contents_; // the file as opened: the records' payloads point into it
    std::unordered_map<std::uint64_t, Record> records_;
    std::uint64_t torn_bytes_ = 0;
    std::vector<std::byte> pending_; // appended, not yet written
    Clock::time_point last_flush_ = Clock::now();
};

} // namespace mproc::detail
