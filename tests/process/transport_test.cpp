// SPDX-License-Identifier: MIT
// The transport layer of the process pool: values, callables, code addresses and exceptions
// through WireWriter -> WireReader, as a worker and its caller exchange them.

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <bitset>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/detail/code_address.hpp"
#include "mproc/detail/wire/callable_codec.hpp"
#include "mproc/detail/wire/remote_exception.hpp"
#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/detail/wire/wire.hpp"
#include "mproc/detail/wire/worker_entry.hpp"
#include "mproc/errors.hpp"
#include "mproc/process_pool.hpp"

extern char** environ;

namespace mproc_transport_test {

using mproc::detail::CodeAddress;
using mproc::detail::WireError;
using mproc::detail::WireReader;
using mproc::detail::WireWriter;

// ---- types used below -----------------------------------------------------------------------

struct Point { // trivially copyable: crosses as bytes
    double x;
    double y;
    friend bool operator==(const Point&, const Point&) = default;
};

struct NoDefaultPoint { // trivially copyable, but only constructible from values
    NoDefaultPoint(int a, int b) : a(a), b(b) {}
    int a;
    int b;
};

} // namespace mproc_transport_test

// Not an aggregate, so mproc cannot see its members: the user's word that its bytes are its value.
template <>
struct mproc::address_free<mproc_transport_test::NoDefaultPoint> : std::true_type {};

namespace mproc_transport_test {

enum class Colour : std::uint8_t { red, green, blue };

struct Person { // a user type with a cereal serialize member
    std::string name;
    std::vector<int> scores;
    std::optional<Point> home;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(name, scores, home);
    }
    friend bool operator==(const Person&, const Person&) = default;
};

class Account { // a user type with a cereal save/load pair and private state
  public:
    Account() = default;
    Account(std::string owner, long long cents) : owner_(std::move(owner)), cents_(cents) {}
    const std::string& owner() const { return owner_; }
    long long cents() const { return cents_; }

    template <class Archive>
    void save(Archive& archive) const {
        archive(owner_, cents_);
    }
    template <class Archive>
    void load(Archive& archive) {
        archive(owner_, cents_);
    }

  private:
    std::string owner_;
    long long cents_ = 0;
};

struct HalfSent { // trivially copyable, but its serialize member says only `kept` crosses
    int kept = 0;
    int dropped = 0;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(kept);
    }
};

struct NotSerializable { // neither trivially copyable nor known to cereal
    std::string text;
};

template <class T>
WireWriter encoded(const T& value) {
    WireWriter out;
    mproc::detail::encode_value(out, value);
    return out;
}

template <class T>
T round_trip(const T& value) {
    const WireWriter out = encoded(value);
    WireReader in(out.data(), out.size());
    T back = mproc::detail::decode_value<T>(in);
    EXPECT_EQ(in.remaining(), 0u) << "the decoder must consume exactly the encoding";
    return back;
}

// ---- what can cross -------------------------------------------------------------------------

using mproc::detail::transportable_v;

static_assert(transportable_v<int>);
static_assert(transportable_v<double>);
static_assert(transportable_v<Colour>);
static_assert(transportable_v<Point>);
static_assert(transportable_v<NoDefaultPoint>);
static_assert(transportable_v<std::array<int, 4>>);
static_assert(transportable_v<std::monostate>);
static_assert(transportable_v<std::string>);
static_assert(transportable_v<std::vector<double>>);
static_assert(transportable_v<std::vector<Point>>);
static_assert(transportable_v<std::map<std::string, std::vector<Point>>>);
static_assert(transportable_v<std::unique_ptr<int>>);
static_assert(transportable_v<std::tuple<int, std::string, std::optional<double>>>);
static_assert(transportable_v<Person>);
static_assert(transportable_v<Account>);

static_assert(!transportable_v<int*>);
static_assert(!transportable_v<const char*>);
static_assert(!transportable_v<int Point::*>);
static_assert(!transportable_v<std::string_view>);
static_assert(!transportable_v<std::reference_wrapper<int>>);
static_assert(!transportable_v<std::array<int*, 2>>);
static_assert(!transportable_v<std::vector<int*>>);
static_assert(!transportable_v<std::map<std::string, std::string_view>>);
static_assert(!transportable_v<std::optional<const char*>>);
static_assert(!transportable_v<std::unique_ptr<int*>>);
static_assert(!transportable_v<NotSerializable>);
static_assert(!transportable_v<std::vector<NotSerializable>>);
static_assert(!transportable_v<std::vector<NoDefaultPoint>>); // cereal resizes, then loads
static_assert(!transportable_v<std::function<int(int)>>);
static_assert(!transportable_v<int[3]>);
static_assert(!transportable_v<int&>);
static_assert(!transportable_v<const int>);
static_assert(!transportable_v<void>);

// ---- the address rule: bytes only when provably free of addresses ---------------------------

struct View { // trivially copyable, but its bytes are an address: sent, it would read garbage
    const double* data;
    std::size_t size;
};
struct Sample { // an aggregate of numbers, nested and in standard composites
    int id;
    Point at;
    std::array<double, 3> weights;
    std::chrono::milliseconds when;
    Colour colour;
    int single[1]; // a one-element C array takes one initialiser like any member
};
struct WithView { // the address one level down
    int id;
    View view;
};
struct WithStringView {
    std::string_view name;
};
struct WithArrayMember { // a C array member: mproc cannot see the members, so it needs a word
    double values[3];
};
class Opaque { // private members: likewise
  public:
    explicit Opaque(int value = 0) : value_(value) {}
    int value() const { return value_; }

  private:
    int value_;
};
struct Times { // a function object whose state is a number
    int factor;
    int operator()(int x) const { return x * factor; }
};
struct LookUp { // a function object whose state is an address
    const int* table;
    int operator()(int i) const { return table[i]; }
};

} // namespace mproc_transport_test

template <>
struct mproc::address_free<mproc_transport_test::WithArrayMember> : std::true_type {};

namespace mproc_transport_test {

using mproc::detail::FirstAddress;
using mproc::detail::Transport;
using mproc::detail::transport_of;
using mproc::detail::transportable_callable_v;

static_assert(transport_of<Sample>() == Transport::bytes);
static_assert(transport_of<Times>() == Transport::bytes);
static_assert(transport_of<std::bitset<70>>() == Transport::bytes);
static_assert(transport_of<std::complex<float>>() == Transport::bytes);
static_assert(transport_of<std::chrono::steady_clock::time_point>() == Transport::bytes);
static_assert(transport_of<View>() == Transport::address_member);
static_assert(std::is_same_v<FirstAddress<View>::type, const double* const>);
static_assert(transport_of<WithView>() == Transport::address_member);
static_assert(std::is_same_v<FirstAddress<WithView>::type, const double* const>);
static_assert(transport_of<WithStringView>() == Transport::address_member);
static_assert(transport_of<std::vector<View>>() == Transport::address_member);
static_assert(
    std::is_same_v<mproc::detail::AddressInside<std::vector<View>>::type, const double* const>);
static_assert(std::is_same_v<mproc::detail::AddressInside<std::vector<int*>>::type, int*>);
static_assert(transport_of<int*>() == Transport::address);
// Standard types whose members mproc knows name the member too.
static_assert(transport_of<std::optional<View>>() == Transport::address_member);
static_assert(transport_of<std::array<View, 2>>() == Transport::address_member);
static_assert(transport_of<Opaque>() == Transport::unproven);
static_assert(transport_of<WithArrayMember>() == Transport::bytes); // by the user's word
static_assert(transport_of<NoDefaultPoint>() == Transport::bytes);  // likewise
static_assert(transportable_callable_v<Times>);
static_assert(!transportable_callable_v<LookUp>);

TEST(AddressRule, AggregatesOfNumbersCrossAsTheirBytes) {
    const Sample sample{
        7, {1.5, -2.5}, {0.25, 0.5, 0.75}, std::chrono::milliseconds(9), Colour::green, {11}};
    EXPECT_EQ(encoded(sample).size(), sizeof(Sample));
    const Sample back = round_trip(sample);
    EXPECT_EQ(back.id, 7);
    EXPECT_EQ(back.at, (Point{1.5, -2.5}));
    EXPECT_EQ(back.weights[2], 0.75);
    EXPECT_EQ(back.when, std::chrono::milliseconds(9));
    EXPECT_EQ(back.colour, Colour::green);
    EXPECT_EQ(back.single[0], 11);
    const WithArrayMember opted{{1, 2, 3}};
    EXPECT_EQ(round_trip(opted).values[2], 3);
}

TEST(AddressRule, AFunctionObjectWhoseStateIsANumberRunsInAWorker) {
    mproc::Pool pool(1);
    EXPECT_EQ(pool.apply(Times{3}, 2), 6);
    EXPECT_EQ(pool.map(Times{5}, std::vector<int>{1, 2, 3}), (std::vector<int>{5, 10, 15}));
}

int twice(int x) { return 2 * x; }
struct TwoInts { // the "same" type as another build might lay it out
    int a;
    int b;
};

// A request names its entry and fingerprints the types the entry reads and writes: a worker
// whose entry of that name reads other types (another build of the program) refuses the task.
TEST(EntryFingerprint, AnEntryRefusesARequestForOtherTypes) {
    using mproc::detail::apply_entry;
    using mproc::detail::types_fingerprint;
    const auto request = [](std::uint64_t fingerprint) {
        WireWriter out;
        out.write(fingerprint);
        mproc::detail::encode_callable(out, &twice);
        mproc::detail::encode_value(out, 21);
        return out;
    };
    static_assert(types_fingerprint<int (*)(int), int, int>() !=
                  types_fingerprint<int (*)(int), long, int>());
    static_assert(types_fingerprint<TwoInts>() != types_fingerprint<Point>());

    const WireWriter right = request(types_fingerprint<int (*)(int), int, int>());
    WireReader in(right.data(), right.size());
    WireWriter response;
    apply_entry<int (*)(int), int>(in, response);
    EXPECT_GT(response.size(), 0u);

    const WireWriter wrong = request(types_fingerprint<int (*)(int), long, int>());
    WireReader wrong_in(wrong.data(), wrong.size());
    WireWriter unused;
    try {
        apply_entry<int (*)(int), int>(wrong_in, unused);
        ADD_FAILURE() << "a request for other types was run";
    } catch (const mproc::Error& error) {
        EXPECT_NE(std::string(error.what()).find("another build of the program"), std::string::npos)
            << error.what();
    }
}

// ---- values ---------------------------------------------------------------------------------

TEST(ValueCodec, TriviallyCopyableValuesCrossAsTheirBytes) {
    EXPECT_EQ(round_trip(42), 42);
    EXPECT_EQ(round_trip(-1.5), -1.5);
    EXPECT_EQ(round_trip(Colour::blue), Colour::blue);
    EXPECT_EQ(round_trip(Point{1.5, -2.5}), (Point{1.5, -2.5}));
    EXPECT_EQ(round_trip(std::array<int, 4>{1, 2, 3, 4}), (std::array<int, 4>{1, 2, 3, 4}));
    EXPECT_EQ(round_trip(std::optional<int>(7)), std::optional<int>(7));
    EXPECT_EQ(round_trip(std::chrono::milliseconds(1234)), std::chrono::milliseconds(1234));
    EXPECT_EQ(round_trip(std::complex<double>(1, -2)), std::complex<double>(1, -2));
    EXPECT_EQ(encoded(Point{}).size(), sizeof(Point)); // no framing around bytes
}

TEST(ValueCodec, TriviallyCopyableTypeWithoutDefaultConstructor) {
    const NoDefaultPoint back = round_trip(NoDefaultPoint(3, 4));
    EXPECT_EQ(back.a, 3);
    EXPECT_EQ(back.b, 4);
}

TEST(ValueCodec, MonostateForVoidResults) {
    EXPECT_EQ(round_trip(std::monostate{}), std::monostate{});
    EXPECT_EQ(round_trip(std::vector<std::monostate>(5)).size(), 5u);
}

TEST(ValueCodec, Strings) {
    EXPECT_EQ(round_trip(std::string()), "");
    EXPECT_EQ(round_trip(std::string("hello, worker")), "hello, worker");
    const std::string binary("a\0b\xff", 4);
    EXPECT_EQ(round_trip(binary), binary);
    const std::string big(1 << 20, 'x');
    EXPECT_EQ(round_trip(big), big);
}

TEST(ValueCodec, Vectors) {
    EXPECT_EQ(round_trip(std::vector<double>()), std::vector<double>());
    const std::vector<double> numbers{1.0, 2.5, -3.25};
    EXPECT_EQ(round_trip(numbers), numbers);
    const std::vector<Point> points{{1, 2}, {3, 4}};
    EXPECT_EQ(round_trip(points), points);
    // A vector of a bytes type is a count and one block.
    EXPECT_EQ(encoded(points).size(), sizeof(std::uint64_t) + 2 * sizeof(Point));
    const std::vector<std::string> words{"a", "", "ccc"};
    EXPECT_EQ(round_trip(words), words);
    const std::vector<bool> bits{true, false, true};
    EXPECT_EQ(round_trip(bits), bits);
    const std::vector<std::vector<int>> nested{{1}, {}, {2, 3}};
    EXPECT_EQ(round_trip(nested), nested);
}

TEST(ValueCodec, PairsAndTuplesOfBytesTypesCrossMemberByMember) {
    const std::pair<std::int64_t, double> pair{-7, 2.5};
    EXPECT_EQ(round_trip(pair), pair);
    EXPECT_EQ(encoded(pair).size(), sizeof(std::int64_t) + sizeof(double)); // no cereal framing
    const std::tuple<char, Point, std::int32_t> tuple{'x', Point{3, 4}, 9};
    EXPECT_EQ(round_trip(tuple), tuple);
    EXPECT_EQ(encoded(tuple).size(), sizeof(char) + sizeof(Point) + sizeof(std::int32_t));
    EXPECT_EQ(round_trip(std::tuple<>{}), std::tuple<>{});
    // A member that is not a bytes type takes the whole value through cereal, as before.
    const std::pair<std::string, int> named{"ann", 31};
    EXPECT_EQ(round_trip(named), named);
    EXPECT_GT(encoded(named).size(), sizeof(std::uint64_t) + 3 + sizeof(int));
}

TEST(ValueCodec, StandardContainers) {
    const std::map<std::string, int> ages{{"ann", 31}, {"bob", 42}};
    EXPECT_EQ(round_trip(ages), ages);
    const std::unordered_map<int, std::string> names{{1, "one"}, {2, "two"}};
    EXPECT_EQ(round_trip(names), names);
    const std::set<std::string> tags{"x", "y"};
    EXPECT_EQ(round_trip(tags), tags);
    const std::deque<int> queue{5, 6, 7};
    EXPECT_EQ(round_trip(queue), queue);
    const std::list<std::string> list{"p", "q"};
    EXPECT_EQ(round_trip(list), list);
    const std::array<std::string, 2> pair_of_words{"left", "right"};
    EXPECT_EQ(round_trip(pair_of_words), pair_of_words);
}

TEST(ValueCodec, OptionalTuplePairVariant) {
    EXPECT_EQ(round_trip(std::optional<std::string>("set")), std::optional<std::string>("set"));
    EXPECT_EQ(round_trip(std::optional<std::string>()), std::nullopt);
    const std::tuple<int, std::string, double> tuple{1, "two", 3.0};
    EXPECT_EQ(round_trip(tuple), tuple);
    const std::pair<std::string, int> pair{"key", 9};
    EXPECT_EQ(round_trip(pair), pair);
    using Variant = std::variant<int, std::string>;
    EXPECT_EQ(round_trip(Variant(std::string("text"))), Variant(std::string("text")));
    EXPECT_EQ(round_trip(Variant(5)), Variant(5));
    using VoidOrText = std::variant<std::monostate, std::string>;
    EXPECT_EQ(round_trip(VoidOrText()), VoidOrText());
}

TEST(ValueCodec, NestedCombination) {
    using Nested = std::map<std::string, std::vector<std::optional<std::pair<int, std::string>>>>;
    const Nested value{
        {"first", {std::pair<int, std::string>{1, "one"}, std::nullopt}},
        {"empty", {}},
        {"second", {std::nullopt, std::pair<int, std::string>{2, "two"}}},
    };
    EXPECT_EQ(round_trip(value), value);
}

TEST(ValueCodec, TriviallyCopyableElementsInsideCerealContainers) {
    // Point has no serialize function: inside cereal-encoded values it crosses as bytes too.
    const std::map<int, Point> by_id{{1, {1, 1}}, {2, {2, 2}}};
    EXPECT_EQ(round_trip(by_id), by_id);
    const std::vector<std::pair<Point, std::string>> labelled{{{0, 1}, "a"}, {{2, 3}, "b"}};
    EXPECT_EQ(round_trip(labelled), labelled);
    const std::optional<std::vector<Point>> maybe_points{{{5, 6}}};
    EXPECT_EQ(round_trip(maybe_points), maybe_points);
}

TEST(ValueCodec, SmartPointers) {
    const auto number = round_trip(std::make_unique<int>(17));
    ASSERT_NE(number, nullptr);
    EXPECT_EQ(*number, 17);
    EXPECT_EQ(round_trip(std::unique_ptr<int>()), nullptr);
    const auto text = round_trip(std::make_shared<std::string>("shared"));
    ASSERT_NE(text, nullptr);
    EXPECT_EQ(*text, "shared");
}

TEST(ValueCodec, UserTypes) {
    const Person person{"Ada", {90, 95}, Point{1, 2}};
    EXPECT_EQ(round_trip(person), person);
    const Account account = round_trip(Account("Grace", 12345));
    EXPECT_EQ(account.owner(), "Grace");
    EXPECT_EQ(account.cents(), 12345);
    const std::vector<Person> people{person, Person{"Bob", {}, std::nullopt}};
    EXPECT_EQ(round_trip(people), people);
}

TEST(ValueCodec, ASerializeMemberWinsOverBytes) {
    const HalfSent back = round_trip(HalfSent{1, 2});
    EXPECT_EQ(back.kept, 1);
    EXPECT_EQ(back.dropped, 0);
}

TEST(ValueCodec, SeveralValuesInOneFrame) {
    WireWriter out;
    mproc::detail::encode_value(out, 7);
    mproc::detail::encode_value(out, std::string("middle"));
    mproc::detail::encode_value(out, std::map<int, int>{{1, 2}});
    mproc::detail::encode_value(out, Point{3, 4});
    WireReader in(out.data(), out.size());
    EXPECT_EQ(mproc::detail::decode_value<int>(in), 7);
    EXPECT_EQ(mproc::detail::decode_value<std::string>(in), "middle");
    EXPECT_EQ((mproc::detail::decode_value<std::map<int, int>>(in)), (std::map<int, int>{{1, 2}}));
    EXPECT_EQ(mproc::detail::decode_value<Point>(in), (Point{3, 4}));
    EXPECT_EQ(in.remaining(), 0u);
}

/// Decoding every proper prefix of `value`'s encoding throws WireError.
template <class T>
void expect_every_truncation_throws(const T& value) {
    const WireWriter out = encoded(value);
    ASSERT_GT(out.size(), 0u);
    for (std::size_t size = 0; size < out.size(); ++size) {
        WireReader in(out.data(), size);
        EXPECT_THROW(mproc::detail::decode_value<T>(in), WireError) << "prefix of " << size;
    }
}

TEST(ValueCodec, TruncatedBytesThrowWireError) {
    expect_every_truncation_throws(std::int64_t{123456789});
    expect_every_truncation_throws(std::pair<std::int32_t, double>{1, 2.0});
    expect_every_truncation_throws(Point{1, 2});
    expect_every_truncation_throws(NoDefaultPoint(1, 2));
}

TEST(ValueCodec, TruncatedCerealValueThrowsWireError) {
    expect_every_truncation_throws(std::map<std::string, std::vector<int>>{{"a", {1, 2, 3}}});
    expect_every_truncation_throws(Person{"Ada", {1, 2}, Point{3, 4}});
    expect_every_truncation_throws(std::string("block"));
    expect_every_truncation_throws(std::vector<double>{1, 2, 3});
}

TEST(ValueCodec, APayloadShorterThanItsContentThrowsWireError) {
    // The size prefix is intact but says less than the content needs: cereal runs out of bytes
    // inside the payload, and the reader never reads past it.
    WireWriter out = encoded(std::map<std::string, int>{{"key", 1}});
    std::uint64_t size = 0;
    std::memcpy(&size, out.data(), sizeof(size));
    out.patch<std::uint64_t>(0, size - 3);
    WireReader in(out.data(), out.size());
    EXPECT_THROW((mproc::detail::decode_value<std::map<std::string, int>>(in)), WireError);
}

TEST(ValueCodec, DecodingAsAnotherTypeIsCaughtBySize) {
    const WireWriter out = encoded(std::tuple<std::string, int, int>{"x", 1, 2});
    WireReader in(out.data(), out.size());
    EXPECT_THROW((mproc::detail::decode_value<std::tuple<std::string, int>>(in)), WireError);
}

TEST(ValueCodec, AHugeSequenceCountIsRefusedBeforeAllocating) {
    WireWriter out;
    out.write<std::uint64_t>(std::uint64_t{1} << 60);
    out.write<double>(1.0);
    WireReader in(out.data(), out.size());
    EXPECT_THROW(mproc::detail::decode_value<std::vector<double>>(in), WireError);
}

struct Throws {
    int value = 0;
    template <class Archive>
    void serialize(Archive&) {
        throw std::runtime_error("cannot save");
    }
};

TEST(ValueCodec, AFailedEncodingLeavesTheWriterAsItWas) {
    WireWriter out;
    mproc::detail::encode_value(out, 5);
    EXPECT_THROW(mproc::detail::encode_value(out, std::vector<Throws>(2)), std::runtime_error);
    EXPECT_EQ(out.size(), sizeof(int));
}

TEST(ValueCodec, BlocksDecodeFromAnyAlignment) {
    // In a frame a block follows fields of any size (an outcome's one-byte status, a count), so
    // its elements are rarely aligned; each offset from 0 to 7 is one case.
    std::vector<double> numbers(1000);
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        numbers[i] = 0.5 * static_cast<double>(i) - 7;
    }
    const std::vector<Point> points{{1, 2}, {3, 4}, {-5, 6.5}};
    const std::u32string text = U"misaligned";
    for (std::size_t offset = 0; offset < 8; ++offset) {
        WireWriter out;
        out.write_bytes("........", offset);
        mproc::detail::encode_value(out, numbers);
        mproc::detail::encode_value(out, points);
        mproc::detail::encode_value(out, text);
        WireReader in(out.data(), out.size());
        in.take(offset);
        EXPECT_EQ(mproc::detail::decode_value<std::vector<double>>(in), numbers) << offset;
        EXPECT_EQ(mproc::detail::decode_value<std::vector<Point>>(in), points) << offset;
        EXPECT_EQ(mproc::detail::decode_value<std::u32string>(in), text) << offset;
        EXPECT_EQ(in.remaining(), 0u);
    }
}

TEST(ValueCodec, KnownEncodedSizesAreTheEncodingsSizes) {
    using mproc::detail::known_encoded_size;
    const std::vector<double> numbers(300, 1.5);
    const std::string text(70, 'x');
    const Point point{1, 2};
    EXPECT_EQ(known_encoded_size(numbers), encoded(numbers).size());
    EXPECT_EQ(known_encoded_size(text), encoded(text).size());
    EXPECT_EQ(known_encoded_size(point), encoded(point).size());
    EXPECT_EQ(known_encoded_size(std::vector<Point>{}), encoded(std::vector<Point>{}).size());
    // Only found out by encoding: not known.
    EXPECT_EQ(known_encoded_size(std::vector<std::string>{"a"}), 0u);
    EXPECT_EQ(known_encoded_size(std::map<int, int>{{1, 2}}), 0u);
}

TEST(ValueCodec, LargeBlocksOfValuesThatOutliveTheSendAreBorrowed) {
    using mproc::detail::ValueLifetime;
    const std::vector<double> large(1 << 14, 2.5); // 128 KiB: above the borrowing threshold
    const std::vector<double> small(16, 1.0);
    WireWriter outbox;
    outbox.allow_borrowing();
    mproc::detail::encode_value(outbox, large, ValueLifetime::outlives_send);
    mproc::detail::encode_value(outbox, small, ValueLifetime::outlives_send);
    mproc::detail::encode_value(outbox, large, ValueLifetime::temporary);
    std::vector<const void*> parts;
    std::vector<std::byte> contents;
    outbox.for_each_part([&](const void* data, std::size_t size) {
        parts.push_back(data);
        const auto* bytes = static_cast<const std::byte*>(data);
        contents.insert(contents.end(), bytes, bytes + size);
    });
    // The writer's count, the borrowed block itself, then the writer's own bytes (the small
    // vector and the temporary's copy).
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[1], static_cast<const void*>(large.data()));
    ASSERT_EQ(contents.size(), outbox.size());
    WireReader in(contents.data(), contents.size());
    EXPECT_EQ(mproc::detail::decode_value<std::vector<double>>(in), large);
    EXPECT_EQ(mproc::detail::decode_value<std::vector<double>>(in), small);
    EXPECT_EQ(mproc::detail::decode_value<std::vector<double>>(in), large);
    EXPECT_EQ(in.remaining(), 0u);
}

TEST(ValueCodec, AFailedEncodingAfterABorrowedBlockLeavesTheWriterAsItWas) {
    const std::vector<double> large(1 << 14, 2.5);
    WireWriter outbox;
    outbox.allow_borrowing();
    mproc::detail::encode_value(outbox, large, mproc::detail::ValueLifetime::outlives_send);
    const std::size_t before = outbox.size();
    EXPECT_THROW(mproc::detail::encode_value(outbox, std::vector<Throws>(2)), std::runtime_error);
    EXPECT_EQ(outbox.size(), before);
    std::size_t own_bytes = 0;
    outbox.for_each_part([&](const void* data, std::size_t size) {
        if (data != static_cast<const void*>(large.data())) {
            own_bytes += size;
        }
    });
    EXPECT_EQ(own_bytes, sizeof(std::uint64_t)); // the count; nothing of the failed value
}

// ---- lent blocks: a worker's large result read from its memory (lent_memory.hpp) ----------
// This process plays the worker that lends and the caller that reads (process_vm_readv of its
// own pid), with LentValues of its own, so that nothing here lends for the other tests.

/// A frame holding one lent block of `count` elements at `address`.
std::vector<std::byte> lent_frame(std::uint64_t count, std::uint64_t address) {
    WireWriter out;
    out.write(count | mproc::detail::lent_block_flag);
    out.write(address);
    return {out.data(), out.data() + out.size()};
}

TEST(LentBlocks, ALargeResultIsLentWhereAllowedAndReadFromTheLendersMemory) {
    using mproc::detail::lend_block;
    mproc::detail::LentValues lends;
    std::vector<std::int32_t> result(std::size_t{1} << 19); // 2 MiB
    std::iota(result.begin(), result.end(), 7);
    const std::vector<std::int32_t> expected = result;
    WireWriter out;
    EXPECT_FALSE(lend_block(out, std::vector<std::int32_t>(result), lends)); // not allowed yet
    lends.allow();
    EXPECT_FALSE(lend_block(out, std::vector<std::int32_t>(1000, 1), lends)); // under 1 MiB
    EXPECT_FALSE(lend_block(out, result, lends)); // an lvalue: others may still refer to it
    EXPECT_FALSE(lends.lending());
    EXPECT_EQ(out.size(), 0u);
    const std::int32_t* elements = result.data();
    ASSERT_TRUE(lend_block(out, std::move(result), lends));
    EXPECT_TRUE(lends.lending());
    EXPECT_EQ(out.size(), 2 * sizeof(std::uint64_t)); // the count and the address, no bytes

    WireReader unread(out.data(), out.size()); // a reader that may not read lent blocks
    EXPECT_THROW(mproc::detail::decode_value<std::vector<std::int32_t>>(unread), WireError);
    WireReader in(out.data(), out.size());
    in.read_lent_from(getpid());
    const auto read = mproc::detail::decode_value<std::vector<std::int32_t>>(in);
    EXPECT_EQ(read, expected);
    EXPECT_NE(read.data(), elements); // a copy: the lender keeps its own until released
    EXPECT_EQ(in.remaining(), 0u);

    lends.sent();
    EXPECT_FALSE(lends.lending());
    EXPECT_TRUE(lends.release_oldest());
    EXPECT_FALSE(lends.release_oldest()); // one release per lent answer, no more
}

TEST(LentBlocks, StringsAreLentToo) {
    mproc::detail::LentValues lends;
    lends.allow();
    std::string text(std::size_t{3} << 20, 'q');
    text.back() = '!';
    const std::string expected = text;
    WireWriter out;
    ASSERT_TRUE(mproc::detail::lend_block(out, std::move(text), lends));
    WireReader in(out.data(), out.size());
    in.read_lent_from(getpid());
    EXPECT_EQ(mproc::detail::decode_value<std::string>(in), expected);
}

TEST(LentBlocks, AnUnreadableOrAbsurdLentBlockIsAWireErrorNotACrash) {
    using Bytes = std::vector<char>;
    const long self = getpid();
    auto decode = [&](const std::vector<std::byte>& frame, long lender) {
        WireReader in(frame.data(), frame.size());
        in.read_lent_from(lender);
        return mproc::detail::decode_value<Bytes>(in);
    };
    // An address the lender does not map; a count whose bytes overflow; counts past what any
    // frame could hold (refused before allocating); the address missing; a lender that is gone.
    EXPECT_THROW(decode(lent_frame(std::size_t{2} << 20, 4096), self), WireError);
    EXPECT_THROW(decode(lent_frame(~mproc::detail::lent_block_flag, 4096), self), WireError);
    EXPECT_THROW(decode(lent_frame(std::uint64_t{1} << 61, 4096), self), WireError);
    EXPECT_THROW(decode(lent_frame(PTRDIFF_MAX, 4096), self), WireError);
    std::vector<std::byte> no_address = lent_frame(16, 4096);
    no_address.resize(sizeof(std::uint64_t));
    EXPECT_THROW(decode(no_address, self), WireError);
    const pid_t gone = fork();
    if (gone == 0) {
        _exit(0);
    }
    ASSERT_GT(gone, 0);
    waitpid(gone, nullptr, 0);
    Bytes there(std::size_t{1} << 20, 'g');
    EXPECT_THROW(
        decode(lent_frame(there.size(), reinterpret_cast<std::uintptr_t>(there.data())), gone),
        WireError);
    EXPECT_EQ(
        decode(lent_frame(there.size(), reinterpret_cast<std::uintptr_t>(there.data())), self),
        there); // the same block from a lender that is there
}

TEST(LentBlocks, TheProbeTellsWhetherAProcessCanBeRead) {
    EXPECT_TRUE(mproc::detail::can_read_lent(getpid(), mproc::detail::lend_probe_address()));
    EXPECT_FALSE(mproc::detail::can_read_lent(getpid(), 4096)); // not mapped
    const std::uint64_t other_word = 42;
    EXPECT_FALSE(
        mproc::detail::can_read_lent(getpid(), reinterpret_cast<std::uintptr_t>(&other_word)));
}

TEST(WireWriter, LargeWritesKeepEveryByte) {
    // Grown many times over (each growth moves what was written), in pieces of odd sizes.
    WireWriter out;
    std::vector<std::byte> expected;
    std::size_t piece = 1;
    while (expected.size() < (std::size_t{3} << 20)) {
        std::vector<std::byte> bytes(piece);
        for (std::size_t i = 0; i < piece; ++i) {
            bytes[i] = static_cast<std::byte>((expected.size() + i) * 31 % 251);
        }
        out.write_bytes(bytes.data(), bytes.size());
        expected.insert(expected.end(), bytes.begin(), bytes.end());
        piece = piece * 3 + 1;
    }
    ASSERT_EQ(out.size(), expected.size());
    EXPECT_EQ(std::memcmp(out.data(), expected.data(), expected.size()), 0);
    mproc::detail::WireBytes copy;
    mproc::detail::assign_bytes(copy, expected.data(), 5);
    mproc::detail::assign_bytes(copy, expected.data() + 7, expected.size() - 7);
    ASSERT_EQ(copy.size(), expected.size() - 7);
    EXPECT_EQ(std::memcmp(copy.data(), expected.data() + 7, copy.size()), 0);
}

struct Reentrant { // a user type whose cereal functions use mproc's codec themselves
    std::map<std::string, int> inner;

    template <class Archive>
    void save(Archive& archive) const {
        WireWriter out;
        mproc::detail::encode_value(out, inner);
        archive(std::string(reinterpret_cast<const char*>(out.data()), out.size()));
    }
    template <class Archive>
    void load(Archive& archive) {
        std::string bytes;
        archive(bytes);
        WireReader in(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
        inner = mproc::detail::decode_value<std::map<std::string, int>>(in);
    }
};

TEST(ValueCodec, ASerializeFunctionMayUseTheCodecItself) {
    const Reentrant back = round_trip(Reentrant{{{"x", 1}, {"y", 2}}});
    EXPECT_EQ(back.inner, (std::map<std::string, int>{{"x", 1}, {"y", 2}}));
}

TEST(ValueCodec, ThreadsEncodeAndDecodeAtOnce) {
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&wrong, t] {
            for (int i = 0; i < 500; ++i) {
                const std::map<std::string, int> value{{std::to_string(t), i}};
                if (round_trip(value) != value) {
                    ++wrong;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
}

// ---- code addresses -------------------------------------------------------------------------

int triple(int x) { return 3 * x; }

using mproc::detail::code_address_of;
using mproc::detail::code_address_of_function;
using mproc::detail::resolve_code_address;
using mproc::detail::resolve_function;
using mproc::detail::this_program_id;

TEST(CodeAddress, AFunctionRoundTrips) {
    const CodeAddress address = code_address_of_function(&triple);
    EXPECT_EQ(address.module_id, this_program_id());
    EXPECT_EQ(resolve_function<int(int)>(address), &triple);
    EXPECT_EQ(resolve_function<int(int)>(address)(5), 15);
    EXPECT_EQ(code_address_of_function(&triple), address); // stable
}

TEST(CodeAddress, ALambdasStaticInvokerRoundTrips) {
    int (*invoker)(int) = [](int x) { return x + 1; };
    const CodeAddress address =
        code_address_of(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(invoker)));
    EXPECT_EQ(address.module_id, this_program_id());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(resolve_code_address(address)),
              reinterpret_cast<std::uintptr_t>(invoker));
}

TEST(CodeAddress, AFunctionInASharedLibraryNamesThatLibrary) {
    // libm's, which no sanitizer intercepts: Clang links a sanitizer's runtime, interceptors of
    // libc's string functions included, into the program itself.
    double (*root)(double) = &::cbrt;
    const CodeAddress address = code_address_of_function(root);
    EXPECT_NE(address.module_id, this_program_id());
    EXPECT_EQ(resolve_function<double(double)>(address), root);
    EXPECT_DOUBLE_EQ(resolve_function<double(double)>(address)(27.0), 3.0);
}

TEST(CodeAddress, UnknownModulesAndOffsetsOutsideTheCodeDoNotResolve) {
    const CodeAddress real = code_address_of_function(&triple);
    EXPECT_EQ(resolve_code_address({real.module_id ^ 0x5a5a5a5a5a5a5a5aULL, real.offset}), nullptr);
    EXPECT_EQ(resolve_code_address({0, real.offset}), nullptr);
    EXPECT_EQ(resolve_code_address({this_program_id(), 0}), nullptr); // the ELF header
    EXPECT_EQ(resolve_code_address({this_program_id(), std::uint64_t{1} << 62}), nullptr);
    EXPECT_EQ(resolve_code_address({this_program_id(), ~std::uint64_t{0}}), nullptr);
}

int global_data = 1;

TEST(CodeAddress, DataIsNotCode) {
    EXPECT_THROW(code_address_of(&global_data), mproc::Error);
    int local = 0;
    EXPECT_THROW(code_address_of(&local), mproc::Error);
    EXPECT_THROW(code_address_of(nullptr), mproc::Error);
}

TEST(CodeAddress, ConcurrentLookupsAgree) {
    const CodeAddress expected = code_address_of_function(&triple);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                if (code_address_of_function(&triple) != expected ||
                    resolve_function<int(int)>(expected) != &triple) {
                    ++wrong;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
}

#ifdef MPROC_TEST_PLUGIN_PATH
TEST(CodeAddress, ALibraryLoadedLaterIsFoundAndForgottenWhenUnloaded) {
    const CodeAddress before = code_address_of_function(&triple); // the table exists already
    void* plugin = dlopen(MPROC_TEST_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(plugin, nullptr) << dlerror();
    auto* entry = reinterpret_cast<int (*)(int)>(dlsym(plugin, "mproc_test_plugin_entry"));
    ASSERT_NE(entry, nullptr);
    const CodeAddress address = code_address_of_function(entry);
    EXPECT_NE(address.module_id, this_program_id());
    EXPECT_EQ(resolve_function<int(int)>(address), entry);
    EXPECT_EQ(resolve_function<int(int)>(address)(2), entry(2));
    ASSERT_EQ(dlclose(plugin), 0);
    EXPECT_EQ(resolve_code_address(address), nullptr) << "an unloaded module must not resolve";
    EXPECT_EQ(resolve_function<int(int)>(before), &triple);
}
#endif

// A process that re-executes this program (as the spawn start method does) loads it at another
// address, yet resolves the same CodeAddress to its own copy of the function. The child is this
// test binary, told by the environment which address to check.
constexpr const char* child_address_variable = "MPROC_TEST_CODE_ADDRESS";
constexpr int child_passed_status = 42;

TEST(CodeAddress, ChildSideOfReexecution) {
    const char* text = std::getenv(child_address_variable);
    if (text == nullptr) {
        GTEST_SKIP() << "runs only as the child of ARexecutedProgramResolvesTheSameAddress";
    }
    CodeAddress address{};
    ASSERT_EQ(std::sscanf(text, "%lx:%lx", &address.module_id, &address.offset), 2);
    EXPECT_EQ(resolve_function<int(int)>(address), &triple);
    EXPECT_EQ(this_program_id(), address.module_id);
    // A distinctive exit status, so that the parent can tell "checked and passed" from "did not
    // run the check" (a skip also exits 0).
    std::fflush(stdout);
    std::_Exit(HasFailure() ? 1 : child_passed_status);
}

TEST(CodeAddress, AReexecutedProgramResolvesTheSameAddress) {
    const CodeAddress address = code_address_of_function(&triple);
    char setting[128];
    std::snprintf(setting, sizeof(setting), "%s=%lx:%lx", child_address_variable, address.module_id,
                  address.offset);
    std::vector<char*> environment{setting};
    for (char** entry = environ; *entry != nullptr; ++entry) {
        if (std::strncmp(*entry, "GTEST_", 6) != 0) { // ctest's sharding must not filter us out
            environment.push_back(*entry);
        }
    }
    environment.push_back(nullptr);
    char program[] = "/proc/self/exe";
    char filter[] = "--gtest_filter=CodeAddress.ChildSideOfReexecution";
    char* arguments[] = {program, filter, nullptr};
    pid_t child = 0;
    ASSERT_EQ(posix_spawn(&child, program, nullptr, nullptr, arguments, environment.data()), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), child_passed_status)
        << "the re-executed program did not resolve the address";
}

// ---- callables ------------------------------------------------------------------------------

using mproc::detail::decode_callable;
using mproc::detail::encode_callable;
using mproc::detail::transportable_callable_v;

struct Scale { // a trivially copyable function object with state
    double factor;
    double operator()(double x) const { return factor * x; }
};

struct Prefixer { // a function object with state that cereal serializes
    std::string prefix;
    std::string operator()(const std::string& text) const { return prefix + text; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(prefix);
    }
};

template <class F>
struct Forwarding { // a function object template that holds another
    F f;
    auto operator()(int x) const { return f(x); }
};

template <class F>
F callable_round_trip(const F& f, std::size_t expected_size) {
    WireWriter out;
    encode_callable(out, f);
    EXPECT_EQ(out.size(), expected_size);
    WireReader in(out.data(), out.size());
    F back = decode_callable<F>(in);
    EXPECT_EQ(in.remaining(), 0u);
    return back;
}

inline constexpr auto stateless_square = [](int x) { return x * x; };

static_assert(transportable_callable_v<int (*)(int)>);
static_assert(transportable_callable_v<std::remove_const_t<decltype(stateless_square)>>);
static_assert(transportable_callable_v<std::plus<>>);
static_assert(transportable_callable_v<Scale>);
static_assert(transportable_callable_v<Prefixer>);
static_assert(!transportable_callable_v<std::function<int(int)>>);
static_assert(!transportable_callable_v<int (Point::*)()>);
static_assert(!transportable_callable_v<int(int)>);

TEST(CallableCodec, FunctionPointerCrossesAsACodeAddress) {
    int (*f)(int) = &triple;
    const auto back = callable_round_trip(f, sizeof(CodeAddress));
    EXPECT_EQ(back, &triple);
    EXPECT_EQ(back(4), 12);
}

TEST(CallableCodec, StatelessLambdaCrossesAsNothing) {
    const auto back = callable_round_trip(stateless_square, 0);
    EXPECT_EQ(back(7), 49);
    EXPECT_EQ(callable_round_trip(std::plus<>{}, 0)(2, 3), 5);
}

TEST(CallableCodec, CapturingLambdasAreRefused) {
    int n = 2;
    const std::string s = "x";
    auto by_value = [n](int x) { return x + n; };
    auto by_reference = [&n](int x) { return x + n; };
    auto with_string = [s](int) { return s; };
    auto default_reference = [&](int x) { return x; };
    static_assert(!transportable_callable_v<decltype(by_value)>);
    static_assert(!transportable_callable_v<decltype(by_reference)>);
    static_assert(!transportable_callable_v<decltype(with_string)>);
    static_assert(!transportable_callable_v<decltype(default_reference)>);
    auto generic = [n](auto x) { return x + n; };
    static_assert(!transportable_callable_v<decltype(generic)>);
    static_assert(!transportable_callable_v<Forwarding<decltype(by_reference)>>);
    static_assert(transportable_callable_v<Forwarding<Scale>>); // a struct, not a closure
    EXPECT_EQ(by_value(1) + by_reference(1) + default_reference(1), 7);
    EXPECT_EQ(with_string(0), "x");
}

TEST(CallableCodec, FunctionObjectsWithStateCrossAsValues) {
    EXPECT_EQ(callable_round_trip(Scale{2.5}, sizeof(Scale))(2.0), 5.0);
    const Prefixer back = callable_round_trip(Prefixer{"mproc: "}, 8 + 8 + 7);
    EXPECT_EQ(back("hi"), "mproc: hi");
}

TEST(CallableCodec, AFunctionFromAnotherBinaryIsRefused) {
    WireWriter out;
    encode_callable(out, &triple);
    CodeAddress address{};
    std::memcpy(&address, out.data(), sizeof(address));
    address.module_id ^= 1; // what a worker running another build would see
    out.patch(0, address);
    WireReader in(out.data(), out.size());
    try {
        decode_callable<int (*)(int)>(in);
        FAIL() << "an unknown module resolved";
    } catch (const mproc::Error& error) {
        EXPECT_NE(std::string(error.what()).find("different build"), std::string::npos)
            << error.what();
    }
}

TEST(CallableCodec, NullFunctionPointerIsAnInvalidArgument) {
    WireWriter out;
    int (*none)(int) = nullptr;
    EXPECT_THROW(encode_callable(out, none), std::invalid_argument);
}

TEST(CallableCodec, TruncatedFunctionPointerThrowsWireError) {
    WireWriter out;
    encode_callable(out, &triple);
    WireReader in(out.data(), out.size() - 1);
    EXPECT_THROW(decode_callable<int (*)(int)>(in), WireError);
}

// ---- exceptions -----------------------------------------------------------------------------

using mproc::detail::decode_exception;
using mproc::detail::encode_exception;

struct ParseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::exception_ptr exception_round_trip(std::exception_ptr error, long pid = 4242,
                                        unsigned long long index = 7) {
    WireWriter out;
    encode_exception(out, std::move(error));
    WireReader in(out.data(), out.size());
    std::exception_ptr back = decode_exception(in, pid, index);
    EXPECT_EQ(in.remaining(), 0u);
    return back;
}

/// The exception comes back as exactly E, with the same what().
template <class E>
void expect_comes_back_as_itself(const E& thrown) {
    const std::exception_ptr back = exception_round_trip(std::make_exception_ptr(thrown));
    try {
        std::rethrow_exception(back);
    } catch (const std::exception& caught) {
        EXPECT_EQ(typeid(caught), typeid(E)) << typeid(caught).name();
        EXPECT_STREQ(caught.what(), thrown.what());
    }
}

TEST(RemoteException, StandardTypesComeBackAsThemselves) {
    expect_comes_back_as_itself(std::runtime_error("runtime"));
    expect_comes_back_as_itself(std::logic_error("logic"));
    expect_comes_back_as_itself(std::invalid_argument("invalid argument"));
    expect_comes_back_as_itself(std::domain_error("domain"));
    expect_comes_back_as_itself(std::length_error("length"));
    expect_comes_back_as_itself(std::out_of_range("out of range"));
    expect_comes_back_as_itself(std::range_error("range"));
    expect_comes_back_as_itself(std::overflow_error("overflow"));
    expect_comes_back_as_itself(std::underflow_error("underflow"));
    expect_comes_back_as_itself(std::bad_alloc());
    expect_comes_back_as_itself(std::exception());
    expect_comes_back_as_itself(mproc::Error("mproc's own"));
}

TEST(RemoteException, OtherTypesBecomeRemoteError) {
    const std::exception_ptr back = exception_round_trip(
        std::make_exception_ptr(ParseError("line 3: unexpected ','")), 1234, 56);
    try {
        std::rethrow_exception(back);
    } catch (const mproc::RemoteError& error) {
        EXPECT_EQ(error.type_name(), "mproc_transport_test::ParseError");
        EXPECT_EQ(error.message(), "line 3: unexpected ','");
        EXPECT_EQ(error.worker_pid(), 1234);
        EXPECT_EQ(error.task_index(), 56u);
        EXPECT_NE(std::string(error.what()).find("ParseError"), std::string::npos);
    }
}

TEST(RemoteException, MprocErrorsThatMeanSomethingToTheCallerBecomeRemoteError) {
    // A TimeoutError from inside a task is not the caller's get() timing out.
    EXPECT_THROW(std::rethrow_exception(exception_round_trip(
                     std::make_exception_ptr(mproc::TimeoutError("inner pool timed out")))),
                 mproc::RemoteError);
}

TEST(RemoteException, NonStandardThrowsBecomeRemoteError) {
    const auto expect_remote = [](std::exception_ptr thrown, const char* type,
                                  const char* message) {
        try {
            std::rethrow_exception(exception_round_trip(std::move(thrown), 99, 3));
        } catch (const mproc::RemoteError& error) {
            EXPECT_EQ(error.type_name(), type);
            EXPECT_EQ(error.message(), message);
            EXPECT_EQ(error.worker_pid(), 99);
            EXPECT_EQ(error.task_index(), 3u);
        }
    };
    expect_remote(std::make_exception_ptr(42), "int", "42");
    expect_remote(std::make_exception_ptr("plain text"), "char const*", "plain text");
    expect_remote(std::make_exception_ptr(std::string("a string")),
                  "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
                  "a string");
    expect_remote(std::make_exception_ptr(Point{1, 2}), "mproc_transport_test::Point", "");
}

TEST(RemoteException, NullExceptionIsAnInvalidArgument) {
    WireWriter out;
    EXPECT_THROW(encode_exception(out, nullptr), std::invalid_argument);
}

TEST(RemoteException, GarbledOrTruncatedBytesThrowWireError) {
    WireWriter out;
    encode_exception(out, std::make_exception_ptr(std::runtime_error("message")));
    for (std::size_t size = 0; size < out.size(); ++size) {
        WireReader in(out.data(), size);
        EXPECT_THROW(decode_exception(in, 1, 0), WireError) << "prefix of " << size;
    }
    WireWriter garbled;
    garbled.write<std::uint8_t>(200);
    garbled.write_string("type");
    garbled.write_string("message");
    WireReader in(garbled.data(), garbled.size());
    EXPECT_THROW(decode_exception(in, 1, 0), WireError);
}

} // namespace mproc_transport_test
