#!/usr/bin/env bash
# Installs, from Debian packages, whatever the build, the tests, the demo and the benchmarks need
# and a fresh machine lacks. Idempotent, and silent when everything is already there.
set -euo pipefail

packages=(
    cmake g++ make          # toolchain
    libgtest-dev            # tests
    libtbb-dev              # bench/: the oneTBB and std::execution::par peers
    gnuplot-nox             # bench/: the plots of docs/benchmarks.md
    libcli11-dev            # command-line parsing of the demo
    libcereal-dev           # serialisation of values crossing a process boundary
    openmpi-bin libopenmpi-dev  # mproc::MpiPool (Open MPI: mpirun, headers, libraries)
    clang-format            # style check in the test command
    python3                 # the Python Pool peer in bench/
    clang libclang-rt-14-dev # libFuzzer for scripts/fuzz.sh
)

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
