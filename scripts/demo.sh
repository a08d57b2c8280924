#!/usr/bin/env bash
# Sets up, builds (Release) and runs the seed demo; arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=ON >/dev/null
cmake --build build/release --target seed_demo -j "$(nproc)" >/dev/null
exec build/release/examples/seed_demo "$@"
