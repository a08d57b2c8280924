// SPDX-License-Identifier: MIT
#include "run_request.hpp"

#include <type_traits>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/worker_entry.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

FrameKind run_request(std::span<const std::byte> request, WireWriter& response,
                      const std::exception_ptr& initializer_error) {
    try {
        if (initializer_error) {
            std::rethrow_exception(initializer_error);
        }
        WireReader in(request.data(), request.size());
        const auto address = in.read<CodeAddress>();
        const WorkerEntry entry = resolve_function<std::remove_pointer_t<WorkerEntry>>(address);
        if (entry == nullptr) {
            throw Error("mproc: this worker runs a different binary than the caller (it has no "
                        "code at the address of the task's entry); refusing the task");
        }
        entry(in, response);
        return FrameKind::done;
    } catch (...) {
        response.clear();
        encode_exception(response, std::current_exception());
        return FrameKind::failed;
    }
}

} // namespace mproc::detail
