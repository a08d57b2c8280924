// SPDX-License-Identifier: MIT
// mproc::Pool: the same calls as mproc::ThreadPool (see quickstart.cpp), on worker processes.
// Replacing `mproc::ThreadPool` by `mproc::Pool` moves a program to processes; what it buys is
// isolation, shown here:
//
//   1. a task that mutates a global mutates its worker's copy, never the caller's;
//   2. a task that throws its own exception type: the caller gets mproc::RemoteError with the
//      type's name, its what(), the worker's pid and the item's index (standard exception types
//      such as std::invalid_argument come back as themselves);
//   3. a struct with a cereal `serialize` member crosses to a worker as an argument (trivially
//      copyable types cross as bytes, with nothing to write);
//   4. a task that crashes the process costs its own result (mproc::WorkerLost); the pool starts
//      a replacement worker and goes on.
//
// What crosses to a worker must be transportable, checked at compile time: the callable is a
// function pointer or a lambda without captures (pass state as arguments), and arguments and
// results are trivially copyable or serialisable by cereal.
//
// Build and run:
//   cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release && cmake --build build/release
//   build/release/examples/process_pool_example

#include <unistd.h>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "mproc/mproc.hpp"

namespace {

// ---- 1. global state stays in the worker

int calls_here = 0; // every process has its own copy

/// Counts the calls made in this process and says where it ran.
int count_call(int) {
    ++calls_here;
    return calls_here;
}

// ---- 2. a task's own exception type

/// Not a standard exception type, so it comes back as mproc::RemoteError.
class ParseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

int parse_digit(char c) {
    if (c < '0' || c > '9') {
        throw ParseError(std::string("not a digit: '") + c + "'");
    }
    return c - '0';
}

// ---- 3. a user type with a cereal serialize member

struct Order {
    std::string customer;
    std::vector<double> prices;

    /// All cereal needs to carry an Order to a worker (std::string and std::vector need the two
    /// cereal/types headers included above).
    template <class Archive>
    void serialize(Archive& archive) {
        archive(customer, prices);
    }
};

double order_total(const Order& order) {
    return std::accumulate(order.prices.begin(), order.prices.end(), 0.0);
}

// ---- 4. a task that takes its process down

int crash_on_zero(int x) {
    if (x == 0) {
        std::abort(); // in a thread pool, this would end the whole program
    }
    return 100 / x;
}

} // namespace

int main() {
    mproc::Pool pool(2); // 2 worker processes; like ThreadPool, the destructor terminates and joins
    std::printf("caller pid %d, pool of %zu worker processes\n", static_cast<int>(getpid()),
                pool.workers());

    // 1. Each worker counts its own calls; the caller's counter does not move.
    const std::vector<int> counts = pool.map(count_call, std::vector<int>(6, 0), 1);
    std::printf("1. map(count_call, 6 items): each worker's own count after each call:");
    for (int count : counts) {
        std::printf(" %d", count);
    }
    std::printf("\n   the caller's calls_here is still %d\n", calls_here);

    // 2. A custom exception comes back as mproc::RemoteError; the pool is unharmed.
    try {
        pool.apply(parse_digit, 'x');
    } catch (const mproc::RemoteError& e) {
        std::printf("2. apply(parse_digit, 'x') threw mproc::RemoteError: type %s, message \"%s\", "
                    "item %llu, from worker pid %ld\n",
                    e.type_name().c_str(), e.message().c_str(), e.task_index(), e.worker_pid());
    }
    std::printf("   apply(parse_digit, '7') = %d\n", pool.apply(parse_digit, '7'));

    // 3. A serialisable struct as the argument.
    const Order order{"Ada", {2.50, 4.25, 10.00}};
    std::printf("3. apply(order_total, Order{\"%s\", 3 prices}) = %.2f\n", order.customer.c_str(),
                pool.apply(order_total, order));

    // 4. A crash costs one result, not the program, and the pool goes on.
    try {
        pool.apply(crash_on_zero, 0);
    } catch (const mproc::WorkerLost& e) {
        std::printf("4. apply(crash_on_zero, 0) threw mproc::WorkerLost: %s\n", e.what());
    }
    std::printf("   apply(crash_on_zero, 4) = %d (on a replacement worker)\n",
                pool.apply(crash_on_zero, 4));

    pool.close();
    pool.join();
    std::printf("closed and joined\n");
}
