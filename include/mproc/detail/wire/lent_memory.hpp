// SPDX-License-Identifier: MIT
#pragma once
// Large results that a worker process lends instead of sending: the caller reads them once,
// straight from the worker's memory into the result (process_vm_readv(2)), where a socket costs
// four copies (the worker's encoding, the kernel's copy in and out, the caller's decoding).
//
// The protocol, between a worker process and its pool's I/O thread:
// - The worker's hello names the address of a known word (lend_probe_address). The caller reads
//   it from the worker's memory; only if it can (a ptrace policy may forbid it) does it send
//   `lend`, and only after that does the worker lend.
// - A worker's result that is a block sequence (a std::vector or std::basic_string of a bytes
//   type) of min_lent_bytes or more is then moved into the worker's LentValues and written as
//   its count with lent_block_flag set, and its address. Its answer frame is `done_lent`.
// - The caller reads each lent block while decoding that answer, then sends `release`; the
//   worker keeps the values of each `done_lent` answer until the `release` for it arrives (the
//   releases come in the order of the answers). A worker that dies first costs that answer:
//   its read fails, and the call ends with the WireError, as for any answer that does not decode.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace mproc::detail {

/// Results smaller than this cross as bytes: below it, a read from another process and the
/// `release` it needs save less than they cost.
inline constexpr std::size_t min_lent_bytes = std::size_t{1} << 20;

/// The largest lent block a caller reads, as the largest frame it receives (max_frame_payload).
inline constexpr std::uint64_t max_lent_bytes = std::uint64_t{1} << 36; // 64 GiB

/// Set in a block's count when its elements stay in the sender's memory (their address follows).
inline constexpr std::uint64_t lent_block_flag = std::uint64_t{1} << 63;

/// The address of the word a worker's hello names, for the caller's check (can_read_lent).
std::uint64_t lend_probe_address() noexcept;

/// Whether this process may read the memory of process `pid`: it reads the word at
/// `probe_address` there (what lend_probe_address() gave in that process) and compares it.
bool can_read_lent(long pid, std::uint64_t probe_address) noexcept;

/// Copies `size` bytes at `address` in process `pid` to `to`. Throws WireError if they cannot
/// all be read (the process is gone, or the address is not mapped there).
void read_lent(long pid, std::uint64_t address, void* to, std::size_t size);

/// The values a worker process has lent, kept until the caller releases them. Touched by the
/// worker's one thread only.
class LentValues {
  public:
    /// The caller said it can read this process's memory (`lend`).
    void allow() noexcept { allowed_ = true; }
    bool allowed() const noexcept { return allowed_; }

    /// Keeps `value` alive for the answer being written.
    void keep(std::shared_ptr<const void> value) { pending_.push_back(std::move(value)); }
    /// Whether the answer being written lent anything.
    bool lending() const noexcept { return !pending_.empty(); }
    /// The answer is sent as done_lent: its values wait for their release.
    void sent();
    /// The answer is not sent as done_lent (it failed after lending): its values go.
    void drop_unsent() noexcept { pending_.clear(); }
    /// The caller has read the oldest answer's values; false if none was lent.
    bool release_oldest() noexcept;
    /// How many sent answers' values wait for their release.
    std::size_t unreleased() const noexcept { return unreleased_.size(); }

  private:
    bool allowed_ = false;
    std::vector<std::shared_ptr<const void>> pending_;
    std::deque<std::vector<std::shared_ptr<const void>>> unreleased_;
};

/// This process's lent values (a worker process's; never allowed in a caller).
inline LentValues this_process_lends;

} // namespace mproc::detail
