// SPDX-License-Identifier: MIT
#pragma once
/// @file thread_pool.hpp
/// `mproc::ThreadPool`: the Pool API on threads of this process (Python's
/// `multiprocessing.pool.ThreadPool`).

#include "mproc/basic_pool.hpp"
#include "mproc/detail/thread_backend.hpp"

namespace mproc {

/// Runs tasks on worker threads of this process. Arguments and results are used in place
/// (no serialisation), and an exception thrown by a task reaches the caller as the very same
/// object. The fastest pool; use `mproc::Pool` instead when tasks need isolation.
///
/// What it cannot do: interrupt a task that is running (`terminate()` drops queued work, but a
/// running task runs to its end, and the destructor waits for it), or contain a crash.
///
/// Example:
/// @code
///   mproc::ThreadPool pool(4);
///   std::vector<int> squares = pool.map([](int x) { return x * x; }, std::vector{1, 2, 3});
///   int seven = pool.apply([](int a, int b) { return a + b; }, 3, 4);
///   for (int r : pool.imap_unordered([](int x) { return x + 1; }, std::views::iota(0, 10))) {
///       std::cout << r << '\n';
///   }
/// @endcode
class ThreadPool : public BasicPool<detail::ThreadBackend> {
  public:
    using BasicPool::BasicPool;
};

} // namespace mproc
