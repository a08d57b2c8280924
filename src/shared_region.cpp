// SPDX-License-Identifier: MIT
// Shared memory for mproc::SharedArray: memfd regions, and mapping another process's region
// through /proc/<pid>/fd/<fd>, which needs no change to how requests travel and works for
// every start method (the worker may be a child of a fork server or a fresh program).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/errors.hpp"
#include "mproc/shared_array.hpp"

namespace mproc::detail {

namespace {

thread_local bool this_host_requests = false;

/// The regions this process created and still holds, by their first byte: where a map's input
/// or output may lie. Guarded by regions_mutex; live_regions counts them, so that a process with
/// none (most) never takes the lock.
struct OwnRegion {
    std::uintptr_t end;
    int fd;
};
std::mutex regions_mutex;
std::map<std::uintptr_t, OwnRegion> own_regions;
std::atomic<std::size_t> live_regions{0};

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
    const auto begin = reinterpret_cast<std::uintptr_t>(data_);
    try {
        const std::lock_guard lock(regions_mutex);
        own_regions.emplace(begin, OwnRegion{begin + bytes, fd_});
    } catch (...) {
        munmap(data_, bytes);
        close(fd_);
        throw;
    }
    live_regions.fetch_add(1, std::memory_order_relaxed);
}

SharedRegion::SharedRegion(long pid, int fd, std::size_t bytes, bool writable) : size_(bytes) {
    // The whole region, lazily: a task may touch a few elements of a large array.
    map_from(pid, fd, bytes, writable, 0, false);
}

SharedRegion::SharedRegion(long pid, int fd, std::size_t bytes, bool writable, std::size_t offset,
                           std::size_t window)
    : size_(window) {
    if (offset > bytes || window > bytes - offset) {
        throw Error("mproc: a window outside a SharedArray's memory");
    }
    // Populated at once: a map chunk reads or writes all of it.
    map_from(pid, fd, bytes, writable, offset, true);
}

void SharedRegion::map_from(long pid, int fd, std::size_t bytes, bool writable, std::size_t offset,
                            bool populate) {
    if (size_ == 0) {
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
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    mapped_before_ = offset % page;
    const int flags = populate ? MAP_SHARED | MAP_POPULATE : MAP_SHARED;
    void* mapped =
        mmap(nullptr, mapped_before_ + size_, writable ? PROT_READ | PROT_WRITE : PROT_READ, flags,
             opened, static_cast<off_t>(offset - mapped_before_));
    const int map_error = errno;
    close(opened); // the mapping keeps the memory
    if (mapped == MAP_FAILED) {
        throw Error(std::string("mproc: a SharedArray cannot be mapped in the worker process: ") +
                    std::strerror(map_error));
    }
    data_ = static_cast<std::byte*>(mapped) + mapped_before_;
}

SharedRegion::~SharedRegion() {
    if (fd_ >= 0) {
        const std::lock_guard lock(regions_mutex);
        own_regions.erase(reinterpret_cast<std::uintptr_t>(data_));
        live_regions.fetch_sub(1, std::memory_order_relaxed);
    }
    if (data_ != nullptr) {
        munmap(data_ - mapped_before_, mapped_before_ + size_);
    }
    if (fd_ >= 0) {
        close(fd_);
    }
}

std::optional<SharedSpan> find_shared_span(const void* data, std::size_t bytes) noexcept {
    if (live_regions.load(std::memory_order_relaxed) == 0 || bytes == 0) {
        return std::nullopt;
    }
    const auto begin = reinterpret_cast<std::uintptr_t>(data);
    const std::lock_guard lock(regions_mutex);
    auto after = own_regions.upper_bound(begin);
    if (after == own_regions.begin()) {
        return std::nullopt;
    }
    const auto& [region_begin, region] = *std::prev(after);
    if (begin >= region.end || bytes > region.end - begin) {
        return std::nullopt;
    }
    return SharedSpan{static_cast<std::int64_t>(getpid()), region.fd,
                      static_cast<std::uint64_t>(region.end - region_begin),
                      static_cast<std::uint64_t>(begin - region_begin)};
}

namespace {

/// A mapping map_callers_region keeps, and what it maps: the caller's descriptor and the
/// memory it named (device and inode), so that a descriptor the caller has since given to
/// other memory is never taken for it.
struct KeptMapping {
    long pid;
    int fd;
    std::size_t bytes;
    bool writable;
    dev_t device;
    ino_t inode;
    std::shared_ptr<SharedRegion> region;
};

// A worker maps regions on its one task thread; the lock is for tasks that start threads.
std::mutex kept_mutex;
std::vector<KeptMapping> kept_mappings; // the most recently used last
constexpr std::size_t max_kept_mappings = 8;

} // namespace

std::shared_ptr<SharedRegion> map_callers_region(long pid, int fd, std::size_t bytes,
                                                 bool writable) {
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    struct stat target {};
    if (bytes == 0 || stat(path.c_str(), &target) != 0) {
        // Nothing to keep; the constructor reports a descriptor it cannot open.
        return std::make_shared<SharedRegion>(pid, fd, bytes, writable);
    }
    const std::lock_guard lock(kept_mutex);
    for (auto kept = kept_mappings.begin(); kept != kept_mappings.end(); ++kept) {
        if (kept->pid == pid && kept->fd == fd && kept->bytes == bytes &&
            kept->writable == writable && kept->device == target.st_dev &&
            kept->inode == target.st_ino) {
            std::rotate(kept, kept + 1, kept_mappings.end()); // now the most recent
            return kept_mappings.back().region;
        }
    }
    // The caller keeps the descriptor for as long as the request is out, so it names the same
    // memory from the stat above to the open in the constructor.
    auto region = std::make_shared<SharedRegion>(pid, fd, bytes, writable);
    if (kept_mappings.size() == max_kept_mappings) {
        kept_mappings.erase(kept_mappings.begin());
    }
    kept_mappings.push_back({pid, fd, bytes, writable, target.st_dev, target.st_ino, region});
    return region;
}

void forget_callers_regions() noexcept {
    std::vector<KeptMapping> dropped;
    {
        const std::lock_guard lock(kept_mutex);
        dropped.swap(kept_mappings);
    } // unmapped here, outside the lock
}

bool encoding_for_this_host() noexcept { return this_host_requests; }

ThisHostRequests::ThisHostRequests() noexcept : previous_(this_host_requests) {
    this_host_requests = true;
}

ThisHostRequests::~ThisHostRequests() { this_host_requests = previous_; }

long this_process_id() noexcept { return static_cast<long>(getpid()); }

} // namespace mproc::detail
