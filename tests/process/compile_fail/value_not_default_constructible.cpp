// Refused: cereal can write this type but not load it (it loads into a default-constructed
// object).
#include <string>

#include "mproc/detail/value_codec.hpp"

struct Named {
    explicit Named(std::string name) : name(std::move(name)) {}
    std::string name;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(name);
    }
};

void refuse(mproc::detail::WireReader& in) { (void)mproc::detail::decode_value<Named>(in); }
