#include "mproc/detail/job.hpp"

#include <cstdio>
#include <cstdlib>

#include "mproc/errors.hpp"

namespace mproc::detail {

std::exception_ptr unwanted_chunk_reason() {
    static const std::exception_ptr reason =
        std::make_exception_ptr(Error("mproc: nobody reads this result any more"));
    return reason;
}

void wire_call_on_in_process_job() noexcept {
    // A backend that crosses processes was given a job built without its wire half: a bug in
    // mproc, not in the user's program.
    std::fputs("mproc: internal error: wire call on an in-process job\n", stderr);
    std::abort();
}

} // namespace mproc::detail
