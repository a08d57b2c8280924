#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark runner (issue 7): sets up, builds bench/ in Release (build/bench), runs every
# workload against every peer several times, and writes docs/benchmarks.md (medians, ratios,
# targets, the machine) and the PNG plots next to it (docs/benchmarks-*.png).
#
#   scripts/bench_all.sh               3 runs of every program (about 10 minutes on 2 cores)
#   scripts/bench_all.sh --runs 5      more runs: the page quotes the median of the runs' own
#                                      medians and ratios, with their range
#   scripts/bench_all.sh --quick       a smoke run: every workload, tiny; written to
#                                      build/bench/benchmarks.md, never to docs/
#   scripts/bench_all.sh --report      only rewrite the page and plots from the last results
#
# One run: bench/thread_bench (ThreadPool against a sequential loop, OpenMP static and dynamic,
# oneTBB and std::execution::par, at 1, 2, 4, ... workers up to the core count), then the process
# workloads, Python's multiprocessing.Pool (bench/python_pool_bench.py) and bench/process_bench
# taking turns workload by workload, so that a burst of load on a shared machine hits both sides
# of a ratio. Every result line is kept in build/bench/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
quick=()
report_only=0
while (($#)); do
    case "$1" in
    --runs)
        runs="${2:?--runs needs a number}"
        shift 2
        ;;
    --quick)
        quick=(--quick)
        shift
        ;;
    --report)
        report_only=1
        shift
        ;;
    *)
        echo "usage: scripts/bench_all.sh [--runs N] [--quick] [--report]" >&2
        exit 2
        ;;
    esac
done

results=build/bench/results.jsonl
machine=build/bench/machine.json
page=docs/benchmarks.md
if ((${#quick[@]})); then
    results=build/bench/results-quick.jsonl
    machine=build/bench/machine-quick.json
    page=build/bench/benchmarks.md
fi

tag() { # adds the run number to every JSON line
    sed "s/^{/{\"run\": $1, /"
}

if ((!report_only)); then
    scripts/setup.sh
    cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
        -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCHMARKS=ON >/dev/null
    cmake --build build/bench --target thread_bench process_bench -j "$(nproc)" >/dev/null

    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    : >"$results"
    for ((run = 1; run <= runs; ++run)); do
        echo "bench_all: run $run of $runs: threads" >&2
        build/bench/bench/thread_bench "${quick[@]}" | tag "$run" >>"$results"
        echo "bench_all: run $run of $runs: processes and Python" >&2
        for workload in apply map imap_unordered medium lifecycle seed big; do
            python3 bench/python_pool_bench.py "${quick[@]}" --only "$workload" |
                tag "$run" >>"$results"
            [ "$workload" = seed ] && workload=seed_auto
            build/bench/bench/process_bench "${quick[@]}" --only "$workload" |
                tag "$run" >>"$results"
        done
        build/bench/bench/process_bench "${quick[@]}" --only payload,huge_shared,cancel,timeline,journal |
            tag "$run" >>"$results"
    done
    python3 - "$machine" "$runs" "$load_before" <<'PY'
import datetime, json, os, platform, subprocess, sys

model = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cpu": model,
    "cores": os.cpu_count(),
    "usable_cores": len(os.sched_getaffinity(0)),
    "kernel": platform.release(),
    "compiler": subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
    "python": platform.python_version(),
    "runs": int(sys.argv[2]),
    "load_before": sys.argv[3],
    "load_after": " ".join(open("/proc/loadavg").read().split()[:3]),
}, open(sys.argv[1], "w"), indent=1)
PY
fi

python3 bench/report.py "$results" "$machine" "$page"
echo "bench_all: wrote $page" >&2
