// SPDX-License-Identifier: MIT
#pragma once
// Turning a worker's backtrace (module + offset per frame) into text a person can act on.

#include <string>
#include <vector>

#include "mproc/errors.hpp"

namespace mproc::detail {

/// One line per frame, innermost first: "#i function at file:line (module+0xoffset)" where
/// `addr2line` (binutils) is on the PATH and the module has symbols, else
/// "#i module+0xoffset". Runs addr2line once per distinct module. Empty for no frames.
std::string backtrace_text(const std::vector<StackFrame>& frames);

} // namespace mproc::detail
