// SPDX-License-Identifier: MIT
// Refused: a type that is neither trivially copyable nor serializable by cereal.
#include <string>

#include "mproc/detail/wire/value_codec.hpp"

struct Record {
    std::string name; // makes Record not trivially copyable; and there is no serialize()
};

void refuse(mproc::detail::WireWriter& out) { mproc::detail::encode_value(out, Record{"x"}); }
