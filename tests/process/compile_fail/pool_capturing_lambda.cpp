// SPDX-License-Identifier: MIT
// Refused at the Pool API: a lambda with captures cannot be sent to a worker process. The
// message says how to pass the state instead.
#include <mproc/mproc.hpp>

int main() {
    mproc::Pool pool(1);
    int factor = 3;
    return pool.apply([factor](int x) { return x * factor; }, 2); // refused
}
