// SPDX-License-Identifier: MIT
// Refused: a raw pointer, which means nothing in another process.
#include "mproc/detail/wire/value_codec.hpp"

void refuse(mproc::detail::WireWriter& out, const int& value) {
    mproc::detail::encode_value(out, &value);
}
