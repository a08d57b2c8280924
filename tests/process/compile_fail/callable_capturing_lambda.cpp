// SPDX-License-Identifier: MIT
// Refused: a lambda with captures (its state would have to cross as raw bytes, and a captured
// reference is an address).
#include "mproc/detail/wire/callable_codec.hpp"

void refuse(mproc::detail::WireWriter& out, int offset) {
    mproc::detail::encode_callable(out, [offset](int x) { return x + offset; });
}
