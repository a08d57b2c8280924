// SPDX-License-Identifier: MIT
// Control for the address rule: what the refused files above do, done the ways their messages
// suggest, compiles.
#include <mproc/mproc.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

struct Values { // the data itself instead of a pointer and a size
    std::vector<double> values;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(values);
    }
};

struct Sample { // an aggregate of numbers: crosses as its bytes, no word needed
    int id;
    std::array<double, 3> position;
    std::chrono::milliseconds at;
};

class Rgb {
  public:
    Rgb() = default;
    Rgb(std::uint8_t r, std::uint8_t g, std::uint8_t b) : r_(r), g_(g), b_(b) {}
    int brightness() const { return r_ + g_ + b_; }

  private:
    std::uint8_t r_ = 0, g_ = 0, b_ = 0;
};
template <>
struct mproc::address_free<Rgb> : std::true_type {}; // the user's word

struct Tagged { // an anonymous union member: structured binding cannot take it apart, so a
                // serialize member must say what crosses (and is all that is looked at)
    int tag;
    union {
        int whole;
        float real;
    };
    template <class Archive>
    void serialize(Archive& archive) {
        archive(tag, whole);
    }
};

struct Scale { // a function object whose state is a number
    int factor;
    int operator()(int x) const { return x * factor; }
};

double sum(const Values& v) {
    double total = 0;
    for (double x : v.values) {
        total += x;
    }
    return total;
}
int brightness(Rgb colour) { return colour.brightness(); }
int sample_id(const Sample& sample) { return sample.id; }
int tag_of(const Tagged& tagged) { return tagged.tag + tagged.whole; }

int main() {
    mproc::Pool pool(1);
    const double total = pool.apply(sum, Values{{1, 2, 3, 4}});
    const int bright = pool.map(brightness, std::vector<Rgb>(4, Rgb(1, 2, 3))).front();
    const int id = pool.apply(sample_id, Sample{7, {1, 2, 3}, std::chrono::milliseconds(5)});
    const int scaled = pool.apply(Scale{3}, 2);
    Tagged tagged{};
    tagged.tag = 1;
    tagged.whole = 2;
    const int tag = pool.apply(tag_of, tagged);
    return total == 10 && bright == 6 && id == 7 && scaled == 6 && tag == 3 ? 0 : 1;
}
