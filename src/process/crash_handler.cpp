// SPDX-License-Identifier: MIT
#include "crash_handler.hpp"

#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "channel.hpp"
#include "crash_report.hpp"
#include "loader_counters.hpp"
#include "mproc/detail/wire/worker_entry.hpp"

namespace mproc::detail {
namespace {

/// A loaded module, as snapshotted for the handler.
struct Module {
    std::uintptr_t base; // what dl_iterate_phdr calls dlpi_addr: offsets are relative to it
    std::uintptr_t low;  // the lowest and highest address of its loaded segments
    std::uintptr_t high;
    std::uint32_t path_length;
    char path[max_module_path];
};

/// The loaded modules, with the loader's counters when they were read. Taken in the caller
/// before it forks a fork server (prepare_crash_handler), so every worker forked from there
/// inherits it instead of walking the modules, resolving the main program's path and starting
/// the unwinder itself at each start. Immutable once published (PublishedSnapshot).
struct ModuleSnapshot {
    LoaderCounters counters;
    std::vector<Module> modules;              // the main program first, in the loader's order
    const ModuleSnapshot* previous = nullptr; // the one it replaced
};

constexpr std::size_t max_modules = 256;
PublishedSnapshot<ModuleSnapshot> published_snapshot;
std::atomic<bool> unwinder_started{false};
// What the handler reads: set by install_crash_handler, in a worker that runs one thread.
const ModuleSnapshot* handler_modules = nullptr;
int report_fd = -1;
// Room for a report's head (without the outcomes, which are sent from where they lie).
std::byte report[16 + max_crash_frames * (12 + max_module_path)];
alignas(16) std::byte alternate_stack[64 * 1024];

/// A walk over the loaded modules (dl_iterate_phdr) into a snapshot.
struct SnapshotWalk {
    ModuleSnapshot* snapshot;
    bool first = true;
};

int remember_module(dl_phdr_info* info, std::size_t size, void* data) {
    auto& walk = *static_cast<SnapshotWalk*>(data);
    ModuleSnapshot& snapshot = *walk.snapshot;
    if (walk.first) {
        // Read under the same loader lock as the modules, so they describe this snapshot.
        snapshot.counters = loader_counters_of(*info, size);
        walk.first = false;
    }
    if (snapshot.modules.size() == max_modules) {
        return 1;
    }
    Module module{};
    module.base = info->dlpi_addr;
    module.low = UINTPTR_MAX;
    module.high = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type == PT_LOAD) {
            const std::uintptr_t start = module.base + segment.p_vaddr;
            module.low = start < module.low ? start : module.low;
            module.high =
                start + segment.p_memsz > module.high ? start + segment.p_memsz : module.high;
        }
    }
    const char* name = info->dlpi_name;
    ssize_t length = name != nullptr ? static_cast<ssize_t>(std::strlen(name)) : 0;
    if (length == 0 && snapshot.modules.empty()) {
        // The main program has no name here; addr2line needs its path.
        length = readlink("/proc/self/exe", module.path, sizeof(module.path));
        length = length < 0 ? 0 : length;
    } else {
        length = length > static_cast<ssize_t>(max_module_path) ? 0 : length;
        std::memcpy(module.path, name, static_cast<std::size_t>(length));
    }
    module.path_length = static_cast<std::uint32_t>(length);
    if (module.path_length != 0 && module.low < module.high) {
        // Nameless modules (the vDSO) are left out: nothing could read them.
        try {
            snapshot.modules.push_back(module);
        } catch (const std::bad_alloc&) {
            // No exception may unwind through dl_iterate_phdr (the loader's lock would stay
            // held): the snapshot stops here, later modules show as raw addresses.
            return 1;
        }
    }
    return 0;
}

std::byte* put(std::byte* at, const void* data, std::size_t size) noexcept {
    std::memcpy(at, data, size);
    return at + size;
}

/// The interrupted instruction, where the platform says: frames above it are the handler's.
std::uintptr_t interrupted_pc(void* context) noexcept {
#if defined(__x86_64__)
    return static_cast<std::uintptr_t>(
        static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return static_cast<std::uintptr_t>(static_cast<ucontext_t*>(context)->uc_mcontext.pc);
#else
    (void)context;
    return 0;
#endif
}

void on_fatal_signal(int signal, siginfo_t*, void* context) {
    static volatile sig_atomic_t reporting = 0;
    if (reporting != 0) {
        // A second fatal signal while reporting the first: die of it, with no second report.
        ::signal(signal, SIG_DFL);
        raise(signal);
        return;
    }
    reporting = 1;
    const int saved_errno = errno;
    void* addresses[max_crash_frames + 8];
    const int depth = ::backtrace(addresses, static_cast<int>(max_crash_frames + 8));
    int first = 0;
    const std::uintptr_t pc = interrupted_pc(context);
    for (int i = 0; i < depth; ++i) {
        if (reinterpret_cast<std::uintptr_t>(addresses[i]) == pc) {
            first = i;
            break;
        }
    }
    const std::uint32_t count = static_cast<std::uint32_t>(depth - first) > max_crash_frames
                                    ? max_crash_frames
                                    : static_cast<std::uint32_t>(depth - first);

    const RunningItem item = running_item;
    std::byte* at = report;
    const std::int32_t signal_number = signal;
    at = put(at, &signal_number, sizeof(signal_number));
    at = put(at, &item.index, sizeof(item.index));
    at = put(at, &count, sizeof(count));
    for (std::uint32_t i = 0; i < count; ++i) {
        const auto address = reinterpret_cast<std::uintptr_t>(addresses[first + i]);
        const Module* found = nullptr;
        const std::size_t module_count =
            handler_modules != nullptr ? handler_modules->modules.size() : 0;
        for (std::size_t m = 0; m < module_count && found == nullptr; ++m) {
            const Module& module = handler_modules->modules[m];
            if (address >= module.low && address < module.high) {
                found = &module;
            }
        }
        const std::uint64_t offset = found != nullptr ? address - found->base : address;
        const std::uint32_t length = found != nullptr ? found->path_length : 0;
        at = put(at, &offset, sizeof(offset));
        at = put(at, &length, sizeof(length));
        if (found != nullptr) {
            at = put(at, found->path, length);
        }
    }
    iovec parts[2] = {{report, static_cast<std::size_t>(at - report)},
                      {const_cast<std::byte*>(item.outcomes),
                       item.outcomes != nullptr ? item.finished_bytes : 0}};
    send_frame_from_signal_handler(report_fd, FrameKind::crashed, parts, 2);
    // Die of the same signal (the handler was reset on entry), so the caller sees the cause.
    errno = saved_errno;
    raise(signal);
}

/// The preparation (see prepare_crash_handler); returns the current snapshot (null only if none
/// could ever be allocated).
const ModuleSnapshot* prepared_snapshot() noexcept {
    // The unwinder first: its first use may load a module (libgcc_s), which the snapshot must
    // then include. Once per process: a forked copy inherits it started.
    if (!unwinder_started.load(std::memory_order_acquire)) {
        void* warm_up[1];
        ::backtrace(warm_up, 1); // loads the unwinder now: not in the handler
        unwinder_started.store(true, std::memory_order_release);
    }
    // No exception may leave: a snapshot that cannot be allocated leaves the handler with the
    // one it had (raw addresses at worst).
    return published_snapshot.current([]() noexcept {
        std::unique_ptr<ModuleSnapshot> fresh(new (std::nothrow) ModuleSnapshot);
        if (fresh != nullptr) {
            SnapshotWalk walk{fresh.get()};
            dl_iterate_phdr(remember_module, &walk);
        }
        return fresh;
    });
}

} // namespace

void prepare_crash_handler() noexcept { prepared_snapshot(); }

void install_crash_handler(int channel_fd) noexcept {
    report_fd = channel_fd;
    handler_modules = prepared_snapshot(); // nothing to do when inherited current from the caller

    stack_t stack{};
    stack.ss_sp = alternate_stack;
    stack.ss_size = sizeof(alternate_stack);
    sigaltstack(&stack, nullptr);
    struct sigaction action {};
    action.sa_sigaction = on_fatal_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS}) {
        sigaction(signal, &action, nullptr);
    }
}

} // namespace mproc::detail
