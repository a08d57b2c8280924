// SPDX-License-Identifier: MIT
// Refused: cereal can write this type but not load it (it loads into a default-constructed
// object, and a non-member serialize gives cereal::access no way in).
// (A type with a serialize *member* may instead open a private default constructor to
// cereal::access, as cereal documents; the conformance suite's NoDefault does that.)
#include <string>

#include "mproc/detail/wire/value_codec.hpp"

struct Named {
    explicit Named(std::string name) : name(std::move(name)) {}
    std::string name;
};

template <class Archive>
void serialize(Archive& archive, Named& named) {
    archive(named.name);
}

void refuse(mproc::detail::WireReader& in) { (void)mproc::detail::decode_value<Named>(in); }
