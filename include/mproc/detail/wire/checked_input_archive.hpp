// SPDX-License-Identifier: MIT
#pragma once
// cereal's binary input archive with one more check, for bytes that come from another process:
// a container's announced size must not exceed the bytes left to read. cereal sizes a
// container (resize/reserve) before it reads the elements, so without the check a few garbled
// bytes announcing 2^32 elements cost gigabytes before the read fails; the wire-decoder fuzzer
// (fuzz/wire_decoder_fuzzer.cpp) found exactly that. Every element takes at least one byte,
// except empty classes, which cereal elides: a container of more empty objects than it has
// bytes left is refused too (an honest sender never sends that many).
//
// Byte-compatible with cereal::BinaryOutputArchive, which the sending side uses.

#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <type_traits>

namespace mproc::detail {

class CheckedBinaryInputArchive
    : public cereal::InputArchive<CheckedBinaryInputArchive, cereal::AllowEmptyClassElision> {
  public:
    explicit CheckedBinaryInputArchive(std::istream& stream)
        : InputArchive(this), stream_(stream) {}

    void loadBinary(void* data, std::streamsize size) {
        const auto read = stream_.rdbuf()->sgetn(static_cast<char*>(data), size);
        if (read != size) {
            throw cereal::Exception("Failed to read " + std::to_string(size) +
                                    " bytes from input stream! Read " + std::to_string(read));
        }
    }

    /// Bytes not read yet (the stream reads a span in memory, so this is exact).
    std::uint64_t remaining() const {
        const auto available = stream_.rdbuf()->in_avail();
        return available > 0 ? static_cast<std::uint64_t>(available) : 0;
    }

  private:
    std::istream& stream_;
};

} // namespace mproc::detail

namespace cereal {

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>>
CEREAL_LOAD_FUNCTION_NAME(mproc::detail::CheckedBinaryInputArchive& archive, T& value) {
    archive.loadBinary(std::addressof(value), sizeof(value));
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(mproc::detail::CheckedBinaryInputArchive& archive,
                                    NameValuePair<T>& pair) {
    archive(pair.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(mproc::detail::CheckedBinaryInputArchive& archive,
                                    SizeTag<T>& tag) {
    archive(tag.size);
    if (static_cast<std::uint64_t>(tag.size) > archive.remaining()) {
        throw Exception("a container announces " + std::to_string(tag.size) +
                        " elements with only " + std::to_string(archive.remaining()) +
                        " bytes left");
    }
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(mproc::detail::CheckedBinaryInputArchive& archive,
                               BinaryData<T>& data) {
    archive.loadBinary(data.data, static_cast<std::streamsize>(data.size));
}

} // namespace cereal

CEREAL_REGISTER_ARCHIVE(mproc::detail::CheckedBinaryInputArchive)
