#pragma once
// PLACEHOLDER declarations so the tree compiles while the transport layer is being written;
// the transport work replaces this whole file.
#include "mproc/detail/wire.hpp"
namespace mproc::detail {
template <class F>
inline constexpr bool transportable_callable_v = false;
template <class F>
void encode_callable(WireWriter&, const F&);
template <class F>
F decode_callable(WireReader&);
} // namespace mproc::detail
