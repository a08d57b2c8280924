// SPDX-License-Identifier: MIT
#pragma once
/// @file process_pool.hpp
/// `mproc::Pool`: the Pool API on worker processes (Python's `multiprocessing.Pool`).

#include "mproc/address_free.hpp"
#include "mproc/basic_pool.hpp"
#include "mproc/detail/process_backend.hpp"
#include "mproc/portable_initializer.hpp"
#include "mproc/shared_array.hpp"

namespace mproc {

/// Runs tasks in worker processes: a task that mutates globals, calls a library that is not
/// thread-safe, or leaks, does so in its worker, not in the caller. Same API and semantics as
/// `mproc::ThreadPool`; what crosses to a worker must be transportable, which is checked at
/// compile time:
/// - the callable: a function pointer, a lambda without captures, or a function object with a
///   cereal `serialize` member (pass state as arguments or set it up in the initializer);
/// - arguments and results: trivially copyable types (sent as bytes), or types cereal can
///   serialise (std::string, std::vector, std::map, std::optional, std::tuple, ..., user types
///   with a `template <class Archive> void serialize(Archive&)` member).
///
/// A task's exception comes back as the same standard type (std::runtime_error,
/// std::invalid_argument, ...) or as `mproc::RemoteError` with its type name and message.
///
/// Example:
/// @code
///   int square(int x) { return x * x; }
///   mproc::Pool pool(4);                                      // 4 worker processes
///   std::vector<int> ys = pool.map(square, std::vector{1, 2, 3});
/// @endcode
class Pool : public BasicPool<detail::ProcessBackend> {
  public:
    using BasicPool::BasicPool;
};

} // namespace mproc
