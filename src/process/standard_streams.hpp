// SPDX-License-Identifier: MIT
#pragma once
// A daemon may run with its standard streams closed. The descriptors a process pool then opens
// (its control socket, worker channels, eventfds) would take the lowest free numbers, 0 to 2,
// where a print meant for stdout or stderr, by the caller or by a worker that inherits them,
// would write into a pool socket and corrupt its frames.

namespace mproc::detail {

/// Opens /dev/null on each of descriptors 0, 1 and 2 that is closed, so that none of the pool's
/// own descriptors can land there; leaves open ones alone. Best effort (the caller's own
/// threads may take a slot first). Called before a pool opens any descriptor.
void reserve_standard_streams() noexcept;

} // namespace mproc::detail
