#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up, then builds and runs the whole test suite three times, warnings as errors: a normal
# build with GCC, AddressSanitizer+UndefinedBehaviorSanitizer built with Clang, and
# ThreadSanitizer with GCC. Also checks the formatting and builds the API reference. Exits
# non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh # all of it: the normal build also builds the benchmarks (smoke runs)

echo "== clang-format"
# The tracked sources in a git checkout; every source under the tree in a release tarball.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z '*.hpp' '*.cpp'
else
    find include src tests examples bench fuzz -name '*.hpp' -print0 -o -name '*.cpp' -print0
fi | xargs -0 clang-format --dry-run --Werror

jobs=$(nproc)
run_suite() { # name, extra cmake arguments...
    local name=$1
    shift
    local start=$SECONDS
    echo "== build: $name"
    cmake -S . -B "build/$name" -DMPROC_WARNINGS_AS_ERRORS=ON -DMPROC_BUILD_EXAMPLES=ON "$@" \
        >/dev/null
    cmake --build "build/$name" -j "$jobs" >/dev/null
    echo "== test: $name (built in $((SECONDS - start)) s)"
    start=$SECONDS
    (cd "build/$name" && ctest --output-on-failure -j "$jobs" --timeout 300 "${CTEST_ARGS[@]}")
    echo "== $name: tests took $((SECONDS - start)) s; $((SECONDS / 60)) min since the start"
}

CTEST_ARGS=()
run_suite normal -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_BUILD_BENCHMARKS=ON # benchmarks: smoke runs
echo "== API reference (an undocumented public member fails it)"
cmake --build build/normal --target docs >/dev/null
# The install test builds a consumer against an installed tree, and the compile checks run the
# compiler on files that must (not) compile (with GCC and with Clang), with no sanitizer
# involved: once is enough. Tests labelled "timing" check what the library decides from times
# it measures, which sanitizers stretch. The Slurm tests (label "slurm": the demo under a Slurm
# cluster they start and stop) and the MPI jobs across test hosts (label "hosts": the
# conformance suite and the seed demo over TCP between network namespaces) run in the normal
# build only: they test how ranks are started and reach each other, which no compiler or
# sanitizer changes. Nor does the MPI conformance suite's second rank count (label
# "more_ranks": the same code as its 3-rank run, with more ranks).
CTEST_ARGS=(-LE 'install|timing|compile_check|slurm|hosts|more_ranks')
# The second compiler builds the AddressSanitizer+UndefinedBehaviorSanitizer suite: every test
# compiled and run with Clang (Debian's clang-16; clang 14 cannot compile libstdc++ 12's
# <ranges>, which the API takes), on libstdc++, warnings as errors, with assertions on. -O1, as
# AddressSanitizer's own documentation advises: the suite runs faster than at -O0, and the
# checks are the same. One suite for both saves a whole build and run of the suite: on a 2-core
# machine each build takes 10 to 15 minutes, and the whole test command about 50.
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_CXX_FLAGS=-O1 \
    "-DMPROC_SANITIZER=address,undefined"
run_suite tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_SANITIZER=thread
echo "== all test suites passed"
