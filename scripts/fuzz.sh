#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes the wire decoder (fuzz/wire_decoder_fuzzer.cpp: everything the caller decodes from a
# worker process) with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, for a bounded
# time: scripts/fuzz.sh [seconds, default 60]. Builds with clang in build/fuzz. The corpus grows
# in build/fuzz/corpus (kept between runs); a crashing input is written to build/fuzz/ and
# makes the script fail. Not part of scripts/test.sh: the clang build alone takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seconds=${1:-60}

cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMPROC_BUILD_FUZZERS=ON -DMPROC_BUILD_TESTS=OFF -DMPROC_BUILD_EXAMPLES=OFF \
    "-DMPROC_SANITIZER=address,undefined" >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target wire_decoder_fuzzer >/dev/null

mkdir -p build/fuzz/corpus
echo "== fuzzing the wire decoder for ${seconds} s"
started=$(date +%s)
# -malloc_limit_mb: a garbled length must not turn into a large allocation.
status=0
build/fuzz/fuzz/wire_decoder_fuzzer build/fuzz/corpus -max_total_time="$seconds" \
    -malloc_limit_mb=256 -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix=build/fuzz/ \
    >build/fuzz/last_run.log 2>&1 || status=$?
grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+== ?ERROR|SUMMARY|artifact_prefix)" build/fuzz/last_run.log || true
echo "== ran $(($(date +%s) - started)) s, corpus: $(ls build/fuzz/corpus | wc -l) inputs," \
    "exit status $status (log: build/fuzz/last_run.log)"
exit "$status"
