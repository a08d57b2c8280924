// SPDX-License-Identifier: MIT
#include "mproc/detail/wire/lent_memory.hpp"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mproc/detail/wire/wire.hpp"

namespace mproc::detail {
namespace {

/// The word a caller reads from a worker to learn whether it may read that worker's memory.
constexpr std::uint64_t lend_probe_value = 0x6d70726f632d6c65; // "mproc-le"
const volatile std::uint64_t lend_probe_word = lend_probe_value;

/// Reads what it can of `size` bytes at `address` in `pid` into `to`: the bytes read, or -1
/// with errno.
long read_some(long pid, std::uint64_t address, void* to, std::size_t size) noexcept {
    iovec local{to, size};
    iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(address)), size};
    return process_vm_readv(static_cast<pid_t>(pid), &local, 1, &remote, 1, 0);
}

} // namespace

std::uint64_t lend_probe_address() noexcept {
    return reinterpret_cast<std::uintptr_t>(&lend_probe_word);
}

bool can_read_lent(long pid, std::uint64_t probe_address) noexcept {
    std::uint64_t read = 0;
    return read_some(pid, probe_address, &read, sizeof(read)) == static_cast<long>(sizeof(read)) &&
           read == lend_probe_value;
}

void read_lent(long pid, std::uint64_t address, void* to, std::size_t size) {
    auto* into = static_cast<std::byte*>(to);
    while (size != 0) {
        // The kernel may stop short (at the end of a mapping, or for a signal); what follows a
        // short read is read again from where it stopped, and a refusal ends it.
        const long got = read_some(pid, address, into, size);
        if (got <= 0) {
            const int error = got < 0 ? errno : EFAULT;
            if (error == EINTR) {
                continue;
            }
            throw WireError("mproc: a worker's result could not be read from its memory (" +
                            std::string(std::strerror(error)) + ")");
        }
        into += got;
        address += static_cast<std::uint64_t>(got);
        size -= static_cast<std::size_t>(got);
    }
}

void LentValues::sent() {
    unreleased_.push_back(std::move(pending_));
    pending_.clear();
}

bool LentValues::release_oldest() noexcept {
    if (unreleased_.empty()) {
        return false;
    }
    unreleased_.pop_front();
    return true;
}

} // namespace mproc::detail
