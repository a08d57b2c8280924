#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up, builds (Release) and runs the seed demo; arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "demo.sh: $*" >&2; }
say "checking the Debian packages the demo needs (cmake, g++, make, CLI11, cereal)"
scripts/setup.sh demo
say "configuring build/release"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=ON >/dev/null
say "building the seed demo and the library (about a minute on 2 cores the first time)"
cmake --build build/release --target seed_demo -j "$(nproc)" >/dev/null
say "running build/release/examples/seed_demo $*"
exec build/release/examples/seed_demo "$@"
