#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs, from Debian packages, what a task needs and a fresh machine lacks. Idempotent, and
# silent when everything is already there.
#
#   scripts/setup.sh [demo|test|bench|all]     (default: all)
#
# demo: the toolchain and what the seed demo links (scripts/demo.sh); test: also what the tests
# alone need; bench: also the peers of the benchmarks. scripts/test.sh installs all: its normal
# build runs the benchmarks once each, as smoke tests.
set -euo pipefail

demo=(
    cmake g++ make          # toolchain
    libcli11-dev            # command-line parsing of the demo
    libcereal-dev           # serialisation of values crossing a process boundary
)
test=(
    libgtest-dev            # tests
    openmpi-bin libopenmpi-dev  # mproc::MpiPool (Open MPI: mpirun, headers, libraries)
    clang-format            # style check in the test command
    pkg-config              # the install test's pkg-config consumer
    clang libclang-rt-14-dev # libFuzzer for scripts/fuzz.sh
    clang-16 libclang-rt-16-dev # the test suite's second compiler (its sanitizer runtimes)
    doxygen                 # the API reference (target docs), built by the test command
    python3                 # checks the files the demo's --timeline writes
    slurm-wlm munge         # the seed demo under srun and sbatch, on a cluster the tests start
    iproute2                # ip netns: the MPI tests across test hosts (tests/hosts)
    procps                  # pgrep, ps: the tests that stop an MPI job's processes
)
bench=(
    libtbb-dev              # bench/: the oneTBB and std::execution::par peers
    gnuplot-nox             # bench/: the plots of docs/benchmarks.md
    python3                 # the Python Pool peer in bench/
)
case "${1:-all}" in
demo) packages=("${demo[@]}") ;;
test) packages=("${demo[@]}" "${test[@]}") ;;
bench) packages=("${demo[@]}" "${bench[@]}") ;;
all) packages=("${demo[@]}" "${test[@]}" "${bench[@]}") ;;
*)
    echo "usage: scripts/setup.sh [demo|test|bench|all]" >&2
    exit 2
    ;;
esac

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "mproc setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
