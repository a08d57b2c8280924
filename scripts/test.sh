#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up, then builds and runs the whole test suite four times: a normal build with GCC
# (warnings are errors), the same with Clang, AddressSanitizer+UndefinedBehaviorSanitizer, and
# ThreadSanitizer. Also checks the formatting and builds the API reference. Exits non-zero on
# the first failure.
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
# The second compiler: Clang (Debian's clang-16; clang 14 cannot compile libstdc++ 12's
# <ranges>, which the API takes), on libstdc++, warnings as errors; DWARF 4, which the
# memcheck test's Valgrind 3.19 reads (not Clang 16's default, 5). The install test and the
# compile checks already ran with both compilers. The Slurm tests (label "slurm": the demo
# under a Slurm cluster they start and stop) and the MPI jobs across test hosts (label "hosts":
# the conformance suite and the seed demo over TCP between network namespaces) run in the normal
# build only, to keep the four suites' time down: they test how ranks are started and reach
# each other, which no compiler or sanitizer changes. Nor does the MPI conformance suite's
# second rank count (label "more_ranks": the same code as its 3-rank run, with more ranks).
CTEST_ARGS=(-LE 'install|compile_check|slurm|hosts|more_ranks')
run_suite clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-16 \
    -DCMAKE_CXX_FLAGS=-gdwarf-4
# The install test builds a consumer against an installed tree, and the compile checks run the
# compiler on files that must (not) compile, with no sanitizer involved: once is enough. Tests
# labelled "timing" check what the library decides from times it measures, which sanitizers
# stretch. The Slurm and test-host jobs and the 5-rank MPI run ran once, in the normal build.
CTEST_ARGS=(-LE 'install|timing|compile_check|slurm|hosts|more_ranks')
run_suite asan -DCMAKE_BUILD_TYPE=Debug "-DMPROC_SANITIZER=address,undefined"
run_suite tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_SANITIZER=thread
echo "== all test suites passed"
