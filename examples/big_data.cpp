// SPDX-License-Identifier: MIT
// Big data without copies: an image in a mproc::SharedArray, processed by tiles in worker
// processes that map the caller's pages. Each task reads its tile of the input and writes its
// tile of the output; only the tile numbers cross the socket. Then the same image pixel by
// pixel with map_into, which the workers also read and write in place.
//
//   big_data [megapixels]     (default 128: a 512 MiB image of floats, and as much output)

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <mproc/mproc.hpp>

namespace {

constexpr std::size_t width = 8192; // pixels a row; a tile is 64 rows

struct Tile {
    mproc::SharedArray<const float> in;
    mproc::SharedArray<float> out;
    std::size_t first_row;
    std::size_t rows;
    float gain;

    // The arrays cross as handles to their memory, not as their elements.
    template <class Archive>
    void serialize(Archive& archive) {
        archive(in, out, first_row, rows, gain);
    }
};

/// Brightens the tile's pixels into the output and returns the tile's largest input value.
/// A process-pool task: it takes its state as an argument, not from a capture.
float brighten(const Tile& tile) {
    float largest = 0;
    for (std::size_t i = tile.first_row * width; i < (tile.first_row + tile.rows) * width; ++i) {
        largest = tile.in[i] > largest ? tile.in[i] : largest;
        tile.out[i] = tile.in[i] * tile.gain;
    }
    return largest;
}

/// One pixel's gamma correction, for map_into over the whole image.
float gamma_corrected(float pixel) { return pixel * pixel; }

} // namespace

int main(int argc, char** argv) {
    const std::size_t megapixels = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 128;
    const std::size_t rows = megapixels * (1 << 20) / width;
    mproc::SharedArray<float> image(rows * width);
    for (std::size_t i = 0; i < image.size(); ++i) {
        image[i] = static_cast<float>(i % 1000) / 1000.0f;
    }
    mproc::SharedArray<float> brightened(image.size());

    std::vector<Tile> jobs;
    for (std::size_t row = 0; row < rows; row += 64) {
        jobs.push_back(Tile{image, brightened, row, std::min<std::size_t>(64, rows - row), 1.5f});
    }
    mproc::Pool pool;
    const std::vector<float> largest = pool.map(brighten, jobs);

    float overall = 0;
    for (float value : largest) {
        overall = value > overall ? value : overall;
    }
    std::printf("%zu tiles of a %zu MiB image; largest pixel %.3f; pixel 999 brightened: %.4f\n",
                jobs.size(), image.size() * sizeof(float) >> 20, overall,
                static_cast<double>(brightened[999]));

    // Pixel by pixel, from the image into a second array: each chunk's pixels are read, and
    // its results written, in the caller's memory by the worker that runs it.
    mproc::SharedArray<float> corrected(image.size());
    pool.map_into(gamma_corrected, mproc::SharedArray<const float>(image), corrected.span());
    std::printf("pixel 999 gamma-corrected: %.4f\n", static_cast<double>(corrected[999]));
}
