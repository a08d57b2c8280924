// SPDX-License-Identifier: MIT
#pragma once
// Names for code that mean the same thing in every process running the same binary.
//
// A raw function address is only meaningful in the process that took it (and in its forked
// children): a spawned worker, or an MPI rank on another machine, loads the same executable and
// libraries at other addresses (ASLR). So a function crosses a process boundary as the module it
// lives in plus its offset from that module's load address. The module is named by a hash of its
// GNU build id, which the linker derives from the module's contents: a worker running a different
// build of the program does not find the module and refuses the call instead of jumping into
// unrelated code.

#include <cstdint>
#include <type_traits>

namespace mproc::detail {

/// Where a piece of code is, independently of where the process loaded it.
struct CodeAddress {
    /// Hash of the module's GNU build id (or, for a module without one, of its path and segment
    /// layout); see this_program_id().
    std::uint64_t module_id;
    /// Distance of the code from the module's load bias (its ELF virtual address).
    std::uint64_t offset;

    friend bool operator==(const CodeAddress&, const CodeAddress&) = default;
};

/// Names the code at `code` (a function's entry point, converted with
/// `reinterpret_cast<std::uintptr_t>`) by its module and offset.
/// @param code an address inside an executable segment of a module loaded in this process.
/// @returns its module id and offset; `resolve_code_address` turns it back into `code` in any
///     process running the same binaries.
/// @throws mproc::Error if `code` lies in no executable segment of any loaded module (e.g. a data
///     address, or code generated at run time); std::bad_alloc if the module table cannot be built.
CodeAddress code_address_of(const void* code);

/// The address, in this process, of the code named by `address`.
/// @returns nullptr unless `address.module_id` is a module loaded in this process and
///     `address.offset` lies inside one of that module's executable PT_LOAD segments. A worker
///     running another binary therefore gets nullptr, never a pointer into unrelated code.
/// Cost: one dl_iterate_phdr step (to notice dlopen/dlclose) and a scan of a cached table.
const void* resolve_code_address(const CodeAddress& address) noexcept;

/// The module id of the main executable of this process (what `code_address_of` reports for a
/// function defined in the program itself). Two processes can run each other's work only if
/// they agree on it (the fork server and spawn start methods check it once per worker).
std::uint64_t this_program_id() noexcept;

/// Throws the error for a code address that does not resolve in this process: mproc::Error
/// naming the module and offset, and this program's id, so that "the worker runs another build"
/// is plain from the message.
[[noreturn]] void throw_unresolved_code_address(const CodeAddress& address);

/// `code_address_of` for a function pointer, without the casts at the call site.
/// @throws as code_address_of.
template <class Function>
CodeAddress code_address_of_function(Function* function) {
    static_assert(std::is_function_v<Function>, "mproc: code_address_of_function takes a function "
                                                "pointer");
    return code_address_of(
        reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(function)));
}

/// `resolve_code_address` as a function pointer of the type the caller knows the code to have.
/// @returns nullptr where resolve_code_address does.
template <class Function>
Function* resolve_function(const CodeAddress& address) noexcept {
    static_assert(std::is_function_v<Function>, "mproc: resolve_function<F> takes a function "
                                                "type, e.g. resolve_function<int(int)>");
    return reinterpret_cast<Function*>(
        reinterpret_cast<std::uintptr_t>(resolve_code_address(address)));
}

} // namespace mproc::detail
