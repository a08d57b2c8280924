// SPDX-License-Identifier: MIT
#include "mproc/detail/code_address.hpp"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "loader_counters.hpp"
#include "mproc/detail/wire/worker_entry.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

static_assert(sizeof(std::uintptr_t) == sizeof(std::uint64_t),
              "mproc: code offsets are sent as 64-bit values; this target's addresses differ");

namespace {

/// FNV-1a, 64 bits: stable across processes, builds and machines (std::hash is not promised to
/// be), and plenty to tell a few hundred modules apart.
class Fnv1a {
  public:
    explicit Fnv1a(std::uint64_t domain) { add(&domain, sizeof(domain)); }

    void add(const void* data, std::size_t size) noexcept {
        const auto* bytes = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            hash_ = (hash_ ^ bytes[i]) * 0x100000001b3ULL;
        }
    }
    std::uint64_t value() const noexcept { return hash_; }

  private:
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// The two ways of naming a module hash into separate domains, so that a build id can never
// collide with a path by construction.
constexpr std::uint64_t build_id_domain = 0x6d70726f632d6964ULL; // "mproc-id"
constexpr std::uint64_t path_domain = 0x6d70726f632d7061ULL;     // "mproc-pa"

/// The descriptor of the module's NT_GNU_BUILD_ID note, or nullptr (size 0) if it has none.
const unsigned char* find_build_id(const dl_phdr_info& info, std::size_t& size) noexcept {
    for (int i = 0; i < info.dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info.dlpi_phdr[i];
        if (segment.p_type != PT_NOTE) {
            continue;
        }
        // Notes are aligned to the segment's alignment (4 for classic notes, 8 for the
        // .note.gnu.property segment); anything else is malformed and is skipped.
        const std::size_t align = segment.p_align == 8 ? 8 : 4;
        const auto round_up = [align](std::size_t n) { return (n + align - 1) & ~(align - 1); };
        const auto* at = reinterpret_cast<const unsigned char*>(info.dlpi_addr + segment.p_vaddr);
        std::size_t left = segment.p_memsz;
        while (left >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) header;
            std::memcpy(&header, at, sizeof(header));
            const std::size_t name_at = sizeof(header);
            const std::size_t desc_at = name_at + round_up(header.n_namesz);
            const std::size_t next = desc_at + round_up(header.n_descsz);
            if (next > left || next < desc_at) {
                break;
            }
            if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 &&
                std::memcmp(at + name_at, "GNU", 4) == 0 && header.n_descsz != 0) {
                size = header.n_descsz;
                return at + desc_at;
            }
            at += next;
            left -= next;
        }
    }
    size = 0;
    return nullptr;
}

/// A module's id: its build id hashed, or else its canonical path together with its PT_LOAD
/// layout (the layout catches a rebuilt binary at the same path in most cases). Allocation-free,
/// so that this_program_id() can be noexcept.
std::uint64_t module_id_of(const dl_phdr_info& info) noexcept {
    std::size_t build_id_size = 0;
    if (const unsigned char* build_id = find_build_id(info, build_id_size)) {
        Fnv1a hash(build_id_domain);
        hash.add(build_id, build_id_size);
        return hash.value();
    }
    Fnv1a hash(path_domain);
    char path[PATH_MAX];
    const char* name = info.dlpi_name;
    if (name == nullptr || *name == '\0') {
        // The main program reports no name; its path is /proc/self/exe's target, the same in
        // a re-executed (spawned) worker however the program was started.
        const ssize_t length = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
        path[length > 0 ? length : 0] = '\0';
        name = path;
    } else if (::realpath(name, path) != nullptr) {
        name = path;
    }
    hash.add(name, std::strlen(name));
    for (int i = 0; i < info.dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info.dlpi_phdr[i];
        if (segment.p_type == PT_LOAD) {
            const std::uint64_t layout[] = {segment.p_vaddr, segment.p_memsz, segment.p_flags};
            hash.add(layout, sizeof(layout));
        }
    }
    return hash.value();
}

/// Offsets (from the load bias) of one executable segment: [begin, end).
struct CodeRange {
    std::uintptr_t begin;
    std::uintptr_t end;
};

struct LoadedModule {
    std::uint64_t id;
    std::uintptr_t load_bias;
    std::vector<CodeRange> code;
};

/// A snapshot of the loaded modules. Immutable once published; `counters` are the loader's
/// when it was taken, so a reader can tell cheaply whether it is still
/// current (dlopen/dlclose change them).
struct ModuleTable {
    LoaderCounters counters;
    std::vector<LoadedModule> modules; // the main program first, in the loader's order
    /// The table this one replaced. Kept alive (never freed) because another thread may still
    /// be reading it; the chain keeps every table reachable, so leak checkers stay quiet.
    const ModuleTable* previous = nullptr;
};

/// Reads every loaded module. Throws std::bad_alloc.
std::unique_ptr<ModuleTable> read_module_table() {
    struct Reading {
        ModuleTable* table;
        bool out_of_memory;
    };
    auto table = std::make_unique<ModuleTable>();
    Reading reading{table.get(), false};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t size, void* data) {
            auto& reading = *static_cast<Reading*>(data);
            ModuleTable& table = *reading.table;
            if (table.modules.empty()) {
                // Read under the same loader lock as the modules themselves, so the counters
                // describe exactly this snapshot.
                table.counters = loader_counters_of(*info, size);
            }
            // No exception may unwind through dl_iterate_phdr: it would leave the loader's
            // lock held, and the next dlopen in the process would hang.
            try {
                LoadedModule module{module_id_of(*info), info->dlpi_addr, {}};
                for (int i = 0; i < info->dlpi_phnum; ++i) {
                    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
                    if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
                        module.code.push_back({segment.p_vaddr, segment.p_vaddr + segment.p_memsz});
                    }
                }
                table.modules.push_back(std::move(module));
                return 0;
            } catch (const std::bad_alloc&) {
                reading.out_of_memory = true;
                return 1;
            }
        },
        &reading);
    if (reading.out_of_memory) {
        throw std::bad_alloc();
    }
    return table;
}

PublishedSnapshot<ModuleTable> published_table;

/// The module table, current as of the loader's counters (see PublishedSnapshot). Throws
/// std::bad_alloc.
const ModuleTable& module_table() { return *published_table.current(read_module_table); }

bool contains(const LoadedModule& module, std::uintptr_t offset) noexcept {
    for (const CodeRange& range : module.code) {
        if (offset >= range.begin && offset < range.end) {
            return true;
        }
    }
    return false;
}

} // namespace

CodeAddress code_address_of(const void* code) {
    const auto address = reinterpret_cast<std::uintptr_t>(code);
    for (const LoadedModule& module : module_table().modules) {
        const std::uintptr_t offset = address - module.load_bias; // wraps harmlessly if below
        if (contains(module, offset)) {
            return {module.id, offset};
        }
    }
    char text[64];
    std::snprintf(text, sizeof(text), "%p", code);
    throw Error(std::string("mproc: address ") + text +
                " is not in the code of any loaded module, so it cannot be named in another "
                "process (code generated at run time?)");
}

const void* resolve_code_address(const CodeAddress& address) noexcept {
    try {
        for (const LoadedModule& module : module_table().modules) {
            if (module.id == address.module_id) {
                // Offsets are 64-bit on the wire; std::uintptr_t is as wide on every target
                // mproc supports (asserted below), so the conversion loses nothing.
                if (!contains(module, static_cast<std::uintptr_t>(address.offset))) {
                    return nullptr;
                }
                return reinterpret_cast<const void*>(module.load_bias + address.offset);
            }
        }
    } catch (const std::bad_alloc&) {
        // No memory for the table: the address cannot be checked, so it does not resolve.
    }
    return nullptr;
}

void throw_unresolved_code_address(const CodeAddress& address) {
    char text[160];
    std::snprintf(text, sizeof(text), "module %016llx, offset 0x%llx; this program is %016llx",
                  static_cast<unsigned long long>(address.module_id),
                  static_cast<unsigned long long>(address.offset),
                  static_cast<unsigned long long>(this_program_id()));
    throw Error(std::string("mproc: the code to run is not in this process (") + text +
                "): the worker runs a different build of the program, or lacks a library the "
                "caller had loaded");
}

void throw_types_mismatch(std::uint64_t expected, std::uint64_t sent) {
    char text[120];
    std::snprintf(text, sizeof(text), "fingerprint %016llx here, %016llx in the request",
                  static_cast<unsigned long long>(expected), static_cast<unsigned long long>(sent));
    throw Error(std::string("mproc: this worker's code for the task reads other types than the "
                            "caller sent (") +
                text +
                "): the worker runs another build of the program; refusing the task rather "
                "than misreading it");
}

std::uint64_t this_program_id() noexcept {
    // The main program is the loader's first module and is never unloaded, so its id can be
    // computed once, without the table (and without allocating).
    static const std::uint64_t id = [] {
        std::uint64_t first = 0;
        ::dl_iterate_phdr(
            [](dl_phdr_info* info, std::size_t, void* data) {
                *static_cast<std::uint64_t*>(data) = module_id_of(*info);
                return 1;
            },
            &first);
        return first;
    }();
    return id;
}

} // namespace mproc::detail
