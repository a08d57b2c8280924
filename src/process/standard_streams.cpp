// SPDX-License-Identifier: MIT
#include "standard_streams.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace mproc::detail {

void reserve_standard_streams() noexcept {
    for (int slot = 0; slot <= 2; ++slot) {
        if (fcntl(slot, F_GETFD) != -1 || errno != EBADF) {
            continue; // open: the caller's stream, kept as it is
        }
        // Not close-on-exec: a stream slot, as a shell would leave it for an exec'd child.
        const int null = open("/dev/null", O_RDWR); // the lowest free number: this slot
        if (null >= 0 && null != slot) {
            close(null); // another thread took the slot first: it is theirs, not to clobber
        }
    }
}

} // namespace mproc::detail
