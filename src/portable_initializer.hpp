// SPDX-License-Identifier: MIT
#pragma once
// An initializer in its portable form (Initializer::portable()): the bytes a re-executed worker
// (spawn, forkserver) or an MPI rank gets, and the check that there are some.

#include <cstddef>
#include <functional>
#include <vector>

#include "mproc/initializer.hpp"

namespace mproc::detail {

/// Turns the portable bytes back into a callable (in a re-executed worker or an MPI rank); empty
/// bytes give an empty function. Throws mproc::Error if they name code this program does not
/// have.
std::function<void()> initializer_from_portable(std::vector<std::byte> portable);

/// Throws std::invalid_argument unless `initializer` is empty or has a portable form.
void require_portable(const Initializer& initializer);

} // namespace mproc::detail
