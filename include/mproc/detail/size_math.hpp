// SPDX-License-Identifier: MIT
#pragma once
// The smaller and the larger of two sizes. std::min and std::max live in <algorithm>, which
// would add about a tenth to what every translation unit that includes a pool compiles.

#include <cstddef>

namespace mproc::detail {

constexpr std::size_t smaller(std::size_t a, std::size_t b) noexcept { return b < a ? b : a; }
constexpr std::size_t larger(std::size_t a, std::size_t b) noexcept { return a < b ? b : a; }

} // namespace mproc::detail
