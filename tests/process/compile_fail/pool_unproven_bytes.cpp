// SPDX-License-Identifier: MIT
// Refused at the Pool API, at this file's line: a trivially copyable class with private members
// might hold an address, and mproc cannot see inside it. The message says how to give its word.
#include <mproc/mproc.hpp>

#include <cstdint>
#include <vector>

class Rgb {
  public:
    Rgb(std::uint8_t r, std::uint8_t g, std::uint8_t b) : r_(r), g_(g), b_(b) {}
    int brightness() const { return r_ + g_ + b_; }

  private:
    std::uint8_t r_, g_, b_;
};

int brightness(Rgb colour) { return colour.brightness(); }

int main() {
    mproc::Pool pool(1);
    const std::vector<Rgb> pixels(4, Rgb(1, 2, 3));
    return pool.map(brightness, pixels).front() == 6 ? 0 : 1; // refused
}
