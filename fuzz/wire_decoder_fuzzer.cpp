// SPDX-License-Identifier: MIT
// libFuzzer target for everything the caller decodes from a worker process: frame headers, crash
// reports, outcomes (values of every transport: bytes, blocks, cereal) and exceptions, through
// the same code the process backend runs, including a map job's complete_chunk. A worker is
// untrusted (it may be a crashed, confused or hostile process): any input must end in a value
// or an exception, never a crash, an out-of-bounds read, undefined behaviour, a leak, or an
// allocation the bytes do not justify.
//
// Built with -DMPROC_BUILD_FUZZERS=ON and clang (scripts/fuzz.sh does both and runs it).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "mproc/detail/map_input.hpp"
#include "mproc/detail/wire/map_wire_job.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/worker_entry.hpp"
#include "mproc/detail/wire/worker_loss.hpp"
#include "process/channel.hpp"
#include "process/crash_report.hpp"

namespace {

using namespace mproc::detail;

struct Point {
    double x;
    double y;
};

int identity(int x) { return x; }

template <class T>
void decode_outcomes(WireReader& in) {
    while (in.remaining() != 0) {
        std::exception_ptr error;
        (void)read_outcome<T>(in, error, 1, 0);
    }
}

/// Runs one decoder over the bytes, chosen by the first byte.
void decode(std::uint8_t which, const std::byte* data, std::size_t size) {
    WireReader in(data, size);
    switch (which % 10) {
    case 0: {
        FrameHeader header{};
        in.read_bytes(&header, sizeof(header));
        (void)checked_frame_kind(header);
        break;
    }
    case 1:
        (void)decode_exception(in, 1, 0);
        break;
    case 2:
        (void)read_crash_report(in);
        decode_outcomes<int>(in);
        break;
    case 3:
        decode_outcomes<int>(in);
        break;
    case 4:
        decode_outcomes<std::string>(in);
        break;
    case 5:
        decode_outcomes<std::vector<Point>>(in);
        break;
    case 6:
        decode_outcomes<std::map<std::string, std::vector<std::string>>>(in);
        break;
    case 7:
        decode_outcomes<std::tuple<int, std::string, std::vector<double>>>(in);
        break;
    case 8: {
        // A map job of 4 items in one chunk, settled from the bytes as a `done` response.
        std::vector<int> items{1, 2, 3, 4};
        using Job =
            WireMapJob<int (*)(int), BorrowedInput<std::vector<int>>, Unpack::no, ResultSlots<int>>;
        auto job = make_job<Job>(&identity, BorrowedInput<std::vector<int>>(items), 4);
        job->acquire(); // the chunk's reference, as the pool takes it
        (void)job->complete_chunk(job->chunks()[0], in, 1, nullptr);
        break;
    }
    case 9:
        // What an MPI worker rank relays for a lost worker process: the loss, the outcomes.
        (void)decode_worker_loss(in);
        decode_outcomes<int>(in);
        break;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    try {
        decode(data[0], reinterpret_cast<const std::byte*>(data + 1), size - 1);
    } catch (const std::exception&) {
        // Refusing the bytes is the right answer; crashing on them is the bug being looked for.
    }
    return 0;
}
