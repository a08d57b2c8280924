// SPDX-License-Identifier: MIT
// Refused at the Pool API: an argument type that can neither be copied as bytes nor serialised.
#include <mproc/mproc.hpp>

#include <string>

struct Opaque {
    std::string text; // not trivially copyable, and no serialize() member
};

int length(const Opaque& value) { return static_cast<int>(value.text.size()); }

int main() {
    mproc::Pool pool(1);
    return pool.apply(length, Opaque{"abc"});
}
