// SPDX-License-Identifier: MIT
// Refused at the Pool API, at this file's line: a struct whose bytes hold an address. Sent as
// its bytes, the pointer would mean nothing in the worker, and the sum would be silently wrong.
#include <mproc/mproc.hpp>

#include <cstddef>
#include <vector>

struct View {
    const double* data;
    std::size_t size;
};

double sum(View view) {
    double total = 0;
    for (std::size_t i = 0; i < view.size; ++i) {
        total += view.data[i];
    }
    return total;
}

int main() {
    mproc::Pool pool(1);
    const std::vector<double> values{1, 2, 3, 4};
    return static_cast<int>(pool.apply(sum, View{values.data(), values.size()})); // refused
}
