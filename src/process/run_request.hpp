// SPDX-License-Identifier: MIT
#pragma once
// Running one chunk's request where it arrived: what a worker process does with each run frame,
// and what an MpiPool rank does itself when it runs tasks in its own process (in_rank).

#include <cstddef>
#include <exception>
#include <span>

#include "mproc/detail/wire/wire.hpp"
#include "process/channel.hpp"

namespace mproc::detail {

/// Decodes `request` (the entry's code address, then its payload) and runs the entry, which
/// writes the per-item outcomes to `response`: FrameKind::done. If the whole chunk fails (the
/// initializer threw, `initializer_error`; the entry is not in this binary; it did not decode),
/// `response` holds that one encoded exception instead: FrameKind::failed. Either way the
/// payload is alone in `response`, from its first byte.
FrameKind run_request(std::span<const std::byte> request, WireWriter& response,
                      const std::exception_ptr& initializer_error);

} // namespace mproc::detail
