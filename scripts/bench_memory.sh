#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Memory of imap streams (issue 6): builds bench/imap_memory_bench (Release, build/bench) and
# measures how much the caller's resident memory grows over its baseline while 1 KiB items from a
# lazy generator stream through imap/imap_unordered, then does the same for Python's
# multiprocessing.Pool.imap (bench/python_imap_memory.py). Prints one Markdown table.
#
#   scripts/bench_memory.sh           the full set: 10^6 and 10^7 items on each pool class and
#                                     order, then a slow consumer beside Python (a few minutes)
#   scripts/bench_memory.sh --quick   the same shapes, 100x fewer items (a smoke run)
#
# Each measurement is a fresh process; its JSON line goes to build/bench/imap_memory.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=1
case "${1:-}" in
"") ;;
--quick) scale=100 ;;
*)
    echo "usage: scripts/bench_memory.sh [--quick]" >&2
    exit 2
    ;;
esac

scripts/setup.sh
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/bench --target imap_memory_bench -j "$(nproc)" >/dev/null

results=build/bench/imap_memory.jsonl
: >"$results"
run() { # program arguments...
    "$@" | tee -a "$results" >/dev/null
}

# A fast consumer: the growth must stay flat (and under 8 MiB) from 10^6 to 10^7 items.
for pool in thread process; do
    for order in ordered unordered; do
        for items in 1000000 10000000; do
            run build/bench/bench/imap_memory_bench --pool "$pool" --order "$order" \
                --items $((items / scale))
        done
    done
done
# Python's imap with the same fast consumer, for the record: its pipes pace the input here.
for items in 100000 400000; do
    run python3 bench/python_imap_memory.py --items $((items / scale))
done
# A consumer that sleeps 50 us per result (as one writing to disk or a socket): the workers
# outrun it. mproc's window stops the input; Python's imap keeps every result that arrived.
for items in 20000 80000; do
    n=$((items / scale))
    run build/bench/bench/imap_memory_bench --pool thread --order ordered --items "$n" \
        --consumer-sleep-us 50
    run build/bench/bench/imap_memory_bench --pool process --order ordered --items "$n" \
        --consumer-sleep-us 50
    run python3 bench/python_imap_memory.py --items "$n" --consumer-sleep-us 50
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| program | pool | order | items | consumer sleeps | RSS growth | read ahead (bound) | time | results |")
print("|---|---|---|---:|---:|---:|---:|---:|---|")
for r in rows:
    ahead = (f"{r['max_read_ahead']} ({r['read_ahead_bound']})" if "max_read_ahead" in r
             else "unbounded")
    print(f"| {r['program']} | {r['pool']} | {r['order']} | {r['items']:,} | "
          f"{r['consumer_sleep_us']} us | {r['growth_kib'] / 1024:.2f} MiB | {ahead} | "
          f"{r['seconds']:.2f} s | {'ok' if r['results_ok'] else 'WRONG'} |")
PY
