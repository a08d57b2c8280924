// SPDX-License-Identifier: MIT
// Refused: an address hidden inside a container (std::string_view holds a pointer).
#include <string_view>
#include <vector>

#include "mproc/detail/wire/value_codec.hpp"

void refuse(mproc::detail::WireReader& in) {
    (void)mproc::detail::decode_value<std::vector<std::string_view>>(in);
}
