// SPDX-License-Identifier: MIT
#include "portable_initializer.hpp"

#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "mproc/detail/code_address.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

std::function<void()> initializer_from_portable(std::vector<std::byte> portable) {
    if (portable.empty()) {
        return {};
    }
    CodeAddress address{};
    if (portable.size() < sizeof address) {
        throw Error("mproc: the initializer's portable form is truncated");
    }
    std::memcpy(&address, portable.data(), sizeof address);
    const PortableInitializerEntry entry =
        resolve_function<std::remove_pointer_t<PortableInitializerEntry>>(address);
    if (entry == nullptr) {
        throw Error("mproc: the initializer names code this program does not have");
    }
    return [entry, bytes = std::move(portable)] {
        constexpr std::size_t state = sizeof(CodeAddress);
        entry(bytes.data() + state, bytes.size() - state);
    };
}

void throw_truncated_initializer(std::size_t size, std::size_t expected) {
    throw Error("mproc: the initializer's portable state is " + std::to_string(size) +
                " bytes where its entry reads " + std::to_string(expected) + " (truncated)");
}

void require_portable(const Initializer& initializer) {
    if (initializer && initializer.portable().empty()) {
        throw std::invalid_argument(
            "mproc: initializer cannot be sent to a re-executed worker (spawn/forkserver start "
            "methods): use a function pointer, a lambda without captures, or "
            "mproc::portable_initializer(f) of a function object with a serialize member");
    }
}

} // namespace mproc::detail
