// SPDX-License-Identifier: MIT
// Refused at the Pool API, at this file's line: a function object whose state holds an
// address (its table lives in the caller's memory, not the worker's).
#include <mproc/mproc.hpp>

#include <vector>

struct LookUp {
    const int* table;
    int operator()(int i) const { return table[i]; }
};

int main() {
    mproc::Pool pool(1);
    const std::vector<int> table{10, 20, 30};
    return pool.apply(LookUp{table.data()}, 1) == 20 ? 0 : 1; // refused
}
