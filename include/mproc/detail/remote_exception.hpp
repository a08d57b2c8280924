#pragma once
// PLACEHOLDER declarations so the tree compiles while the transport layer is being written;
// the transport work replaces this whole file.
#include <exception>
#include "mproc/detail/wire.hpp"
namespace mproc::detail {
void encode_exception(WireWriter&, std::exception_ptr);
std::exception_ptr decode_exception(WireReader&, long worker_pid, unsigned long long task_index);
} // namespace mproc::detail
