#!/usr/bin/env bash
# Sets up, builds the benchmarks (Release, build/bench) and runs map_bench: ThreadPool::map
# against a sequential loop and OpenMP over 10^7 trivial items. Prints Google Benchmark's table,
# then the medians and the ratios mproc/OpenMP and mproc/sequential. Arguments go to map_bench
# (e.g. --benchmark_filter=openmp). The JSON lands in build/bench/map_bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
    -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/bench --target map_bench -j "$(nproc)" >/dev/null

json=build/bench/map_bench.json
# Repetitions are set in the program (10, medians reported); interleaving them at random keeps a
# burst of load on a shared machine from landing on one contender only.
build/bench/bench/map_bench --benchmark_enable_random_interleaving=true \
    --benchmark_out="$json" --benchmark_out_format=json "$@"

python3 - "$json" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    report = json.load(f)
medians = {}
for run in report["benchmarks"]:
    if run.get("run_type") == "aggregate" and run.get("aggregate_name") == "median":
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[run["time_unit"]]
        medians[run["run_name"].split("/")[0]] = run["real_time"] * scale

print()
print(f"medians over {report['context'].get('num_cpus', '?')} CPUs (real time):")
order = ["sequential", "openmp", "mproc_map", "allocation_floor"]
for name in sorted(medians, key=lambda n: order.index(n) if n in order else len(order)):
    print(f"  {name:<18} {medians[name]:8.2f} ms")

def ratio(a, b, floor=0.0):
    if a in medians and b in medians and medians[b] > floor:
        return (medians[a] - floor) / (medians[b] - floor)
    return None

floor = medians.get("allocation_floor", 0.0)
for label, a, b in (("mproc / OpenMP", "mproc_map", "openmp"),
                    ("mproc / sequential", "mproc_map", "sequential")):
    whole, above = ratio(a, b), ratio(a, b, floor)
    if whole is None:
        continue
    line = f"  {label:<19} {whole:5.2f}x"
    if above is not None and floor:
        line += f"   (above the allocation floor: {above:5.2f}x)"
    print(line)
PY
