#!/usr/bin/env bash
# Sets up, builds bench/process_bench (Release, build/bench) and runs the process pool's
# benchmarks side by side with Python's multiprocessing.Pool (bench/python_pool_bench.py), then
# prints one table: workload, Python, mproc::Pool, mproc::ThreadPool, how Pool compares with
# Python (or, on the seed workload, with ThreadPool), the target and whether it is met.
#
#   scripts/bench_process.sh            3 runs of both programs, interleaved
#   scripts/bench_process.sh --runs 5   more runs (each run prints medians over repetitions; the
#                                       table shows the median of the runs' medians and their range)
#   scripts/bench_process.sh --quick    a smoke run: every workload, tiny, targets not meaningful
#   scripts/bench_process.sh --table    only print the table again from the last results
#
# Every run's JSON lines are kept in build/bench/process_bench.jsonl. Both programs use 2 workers
# (10 for the seed workload), whatever the machine: the targets were set on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
quick=()
table_only=0
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
    --table)
        table_only=1
        shift
        ;;
    *)
        echo "usage: scripts/bench_process.sh [--runs N] [--quick] [--table]" >&2
        exit 2
        ;;
    esac
done

results=build/bench/process_bench.jsonl
if ((!table_only)); then
    scripts/setup.sh
    cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
        -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCHMARKS=ON >/dev/null
    cmake --build build/bench --target process_bench -j "$(nproc)" >/dev/null

    : >"$results"
    # Python and mproc take turns workload by workload, so that a burst of load on a shared machine
    # hits both sides of a ratio rather than one.
    for ((run = 1; run <= runs; ++run)); do
        echo "run $run of $runs" >&2
        for workload in apply map imap_unordered lifecycle; do
            python3 bench/python_pool_bench.py "${quick[@]}" --only "$workload" |
                sed "s/^{/{\"run\": $run, /" >>"$results"
            build/bench/bench/process_bench "${quick[@]}" --only "$workload" |
                sed "s/^{/{\"run\": $run, /" >>"$results"
        done
        build/bench/bench/process_bench "${quick[@]}" --only seed_chunk4,seed_auto |
            sed "s/^{/{\"run\": $run, /" >>"$results"
    done
fi

python3 - "$results" "$(nproc)" <<'PY'
import json
import statistics
import sys
from collections import defaultdict

path, cores = sys.argv[1], sys.argv[2]
per_run = defaultdict(list)  # (workload, impl) -> the median of each run
by_run = defaultdict(dict)  # (workload, run) -> impl -> that run's median
units = {}
for line in open(path):
    r = json.loads(line)
    per_run[(r["workload"], r["impl"])].append(r["median"])
    by_run[(r["workload"], r["run"])][r["impl"]] = r["median"]
    units[r["workload"]] = r["unit"]
runs = max(len(v) for v in per_run.values())

# workload, label, scale to the shown unit, shown unit, comparison, target
#   comparison "python": how many times Pool beats Python (time: Python / Pool; rate: Pool /
#   Python); "thread": Pool's time / ThreadPool's time.
rows = [
    ("apply", "apply round trip", 1, "us", "python", 10),
    ("map", "map 10^6 trivial items", 1e-6, "M items/s", "python", 20),
    ("imap_unordered", "imap_unordered chunksize 1", 1, "us/item", "python", 10),
    ("lifecycle", "Pool(2) + apply + destroy", 1, "ms", "python", 10),
    ("seed_chunk4", "seed: 12 tasks, chunksize 4, 10 workers", 1, "s", "thread", 1.05),
    ("seed_auto", "seed: 12 tasks, map auto chunksize, 10 workers", 1, "s", "thread", 1.05),
]


def ratios(workload, compare):
    """The ratio in each run, Python and mproc having run back to back: how many times Pool
    beats Python (time: Python / Pool; rate: Pool / Python), or Pool's time / ThreadPool's."""
    found = []
    for (w, _), figures in sorted(by_run.items()):
        pool = figures.get("mproc_pool")
        other = figures.get("python" if compare == "python" else "mproc_thread")
        if w != workload or pool is None or other is None:
            continue
        if compare == "thread":
            found.append(pool / other)
        else:
            found.append(pool / other if units[workload].endswith("/s") else other / pool)
    return found


def ratio_text(values, suffix, digits):
    text = f"{statistics.median(values):.{digits}f}x {suffix}"
    if len(values) > 1:
        text += f" [{min(values):.{digits}f}-{max(values):.{digits}f}]"
    return text


def shown(workload, impl, scale):
    values = per_run.get((workload, impl))
    if not values:
        return "-"
    text = f"{statistics.median(values) * scale:.3g}"
    if len(values) > 1:
        text += f" [{min(values) * scale:.3g}-{max(values) * scale:.3g}]"
    return text


print(f"\nmedians of {runs} run(s), each the median of its repetitions; [range over runs]; "
      f"{cores} cores; 2 workers (10 for seed); 'Pool vs': the median of the runs' own ratios")
header = ("workload", "unit", "Python", "mproc Pool", "mproc ThreadPool", "Pool vs", "target",
          "met")
table = [header]
for workload, label, scale, unit, compare, target in rows:
    if not any(key[0] == workload for key in per_run):
        continue
    found = ratios(workload, compare)
    if compare == "python":
        target_text = f">= {target}x"
        text = ratio_text(found, "Python", 1) if found else "-"
        met = "-" if not found else "met" if statistics.median(found) >= target else "MISSED"
    else:
        target_text = f"<= {target}x Thread"
        text = ratio_text(found, "Thread", 3) if found else "-"
        met = "-" if not found else "met" if statistics.median(found) <= target else "MISSED"
    table.append((label, unit, shown(workload, "python", scale),
                  shown(workload, "mproc_pool", scale), shown(workload, "mproc_thread", scale),
                  text, target_text, met))

widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for n, row in enumerate(table):
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if n == 0:
        print("  ".join("-" * width for width in widths))

# Floors: the same work with no pool around it (see bench/process_bench.cpp), what a design
# change could approach.
floors = [
    ("apply", "floor_socketpair", 1, "us",
     "apply floor: the caller itself writes to and reads from a forked process over a socketpair"),
    ("apply", "floor_futex_shm", 1, "us",
     "apply floor: the caller and a forked process take turns on a shared-memory futex word"),
    ("map", "floor_socket_blocks", 1e-6, "M items/s",
     "map floor: raw int64 blocks to 2 forked processes over socketpairs, no per-item encoding"),
]
if any(key in per_run for key in ((w, i) for w, i, *_ in floors)):
    print()
for workload, impl, scale, unit, text in floors:
    if (workload, impl) in per_run:
        print(f"{text}: {shown(workload, impl, scale)} {unit}")
PY
