#include "mproc/detail/job.hpp"

#include <cstdio>
#include <cstdlib>

namespace mproc::detail {

void wire_call_on_in_process_job() noexcept {
    // A backend that crosses processes was given a job built without its wire half: a bug in
    // mproc, not in the user's program.
    std::fputs("mproc: internal error: wire call on an in-process job\n", stderr);
    std::abort();
}

} // namespace mproc::detail
