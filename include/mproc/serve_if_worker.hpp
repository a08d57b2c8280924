#pragma once
/// @file serve_if_worker.hpp
/// The one line the `spawn` and `forkserver` start methods need at the top of `main`.

namespace mproc {

/// If this process was started by mproc as a pool worker (or fork server) of a `spawn` or
/// `forkserver` pool, serves the pool and exits without returning; otherwise returns at once
/// and does nothing. Call it first thing in `main`, before anything the workers must not do
/// (Python's `if __name__ == "__main__":` guard, the other way round). Pools with the default
/// `fork` start method do not need it.
///
/// Example:
/// @code
///   int main(int argc, char** argv) {
///       mproc::serve_if_worker(argc, argv);
///       mproc::Pool pool({.workers = 4, .start_method = mproc::StartMethod::spawn});
///       ...
///   }
/// @endcode
void serve_if_worker(int& argc, char**& argv);

} // namespace mproc
