#pragma once
// PLACEHOLDER declarations so the tree compiles while the transport layer is being written;
// the transport work replaces this whole file.
#include <cstdint>
namespace mproc::detail {
struct CodeAddress {
    std::uint64_t module_id;
    std::uint64_t offset;
};
CodeAddress code_address_of(const void* code);
const void* resolve_code_address(const CodeAddress&) noexcept;
std::uint64_t this_program_id() noexcept;
} // namespace mproc::detail
