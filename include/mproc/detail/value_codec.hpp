#pragma once
// PLACEHOLDER declarations so the tree compiles while the transport layer is being written;
// the transport work replaces this whole file.
#include "mproc/detail/wire.hpp"
namespace mproc::detail {
template <class T>
inline constexpr bool transportable_v = false;
template <class T>
void encode_value(WireWriter&, const T&);
template <class T>
T decode_value(WireReader&);
} // namespace mproc::detail
