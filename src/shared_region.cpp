// Shared memory for mproc::SharedArray: memfd regions, and mapping another process's region
// through /proc/<pid>/fd/<fd>, which needs no change to how requests travel and works for
// every start method (the worker may be a child of a fork server or a fresh program).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/errors.hpp"
#include "mproc/shared_array.hpp"

namespace mproc::detail {

namespace {

thread_local bool this_host_requests = false;

std::byte* map_region(int fd, std::size_t bytes, int protection) {
    void* mapped = mmap(nullptr, bytes, protection, MAP_SHARED, fd, 0);
    return mapped == MAP_FAILED ? nullptr : static_cast<std::byte*>(mapped);
}

} // namespace

std::size_t shared_bytes(std::size_t count, std::size_t size) {
    // A mapping's length is a ptrdiff_t's worth at most, and the kernel caps it far below.
    if (size != 0 &&
        count > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / size) {
        throw std::length_error("mproc: a SharedArray of " + std::to_string(count) +
                                " elements of " + std::to_string(size) +
                                " bytes is larger than any mapping");
    }
    return count * size;
}

SharedRegion::SharedRegion(std::size_t bytes) : size_(bytes) {
    if (bytes == 0) {
        return;
    }
    fd_ = memfd_create("mproc-shared-array", MFD_CLOEXEC);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "mproc: memfd_create");
    }
    // ftruncate takes an off_t; shared_bytes kept the size below PTRDIFF_MAX.
    if (ftruncate(fd_, static_cast<off_t>(bytes)) != 0 ||
        (data_ = map_region(fd_, bytes, PROT_READ | PROT_WRITE)) == nullptr) {
        close(fd_);
        throw std::bad_alloc();
    }
}

SharedRegion::SharedRegion(long pid, int fd, std::size_t bytes, bool writable) : size_(bytes) {
    if (bytes == 0) {
        return;
    }
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    const int opened = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (opened < 0) {
        throw Error("mproc: a SharedArray cannot be opened in the worker process (" + path + ": " +
                    std::strerror(errno) +
                    "); the caller must be alive and readable through /proc by its workers");
    }
    struct stat status {};
    if (fstat(opened, &status) != 0 || status.st_size < 0 ||
        static_cast<std::uintmax_t>(status.st_size) < bytes) {
        close(opened);
        throw Error("mproc: a SharedArray's memory (" + path + ") is smaller than announced");
    }
    data_ = map_region(opened, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ);
    const int map_error = errno;
    close(opened); // the mapping keeps the memory
    if (data_ == nullptr) {
        throw Error(std::string("mproc: a SharedArray cannot be mapped in the worker process: ") +
                    std::strerror(map_error));
    }
}

SharedRegion::~SharedRegion() {
    if (data_ != nullptr) {
        munmap(data_, size_);
    }
    if (fd_ >= 0) {
        close(fd_);
    }
}

bool encoding_for_this_host() noexcept { return this_host_requests; }

ThisHostRequests::ThisHostRequests() noexcept : previous_(this_host_requests) {
    this_host_requests = true;
}

ThisHostRequests::~ThisHostRequests() { this_host_requests = previous_; }

long this_process_id() noexcept { return static_cast<long>(getpid()); }

} // namespace mproc::detail
