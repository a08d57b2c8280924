// SPDX-License-Identifier: MIT
// Control for the compile checks: the same command on a transportable type compiles, so a
// refusal below is the type's fault, not the command's.
#include <map>
#include <string>
#include <vector>

#include "mproc/detail/wire/callable_codec.hpp"
#include "mproc/detail/wire/value_codec.hpp"

int square(int x) { return x * x; }

void control(mproc::detail::WireWriter& out) {
    mproc::detail::encode_value(out, std::map<std::string, std::vector<int>>{{"a", {1, 2}}});
    mproc::detail::encode_callable(out, [](int x) { return x + 1; });
    mproc::detail::encode_callable(out, &square);
    mproc::detail::WireReader in(out.data(), out.size());
    (void)mproc::detail::decode_value<std::map<std::string, std::vector<int>>>(in);
}
