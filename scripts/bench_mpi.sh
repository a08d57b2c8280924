#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up, builds bench/mpi_bench and bench/mpi_farm (Release, build/bench) and runs, under
# mpirun on this machine, mproc::MpiPool against its floor: a hand-written MPI master-worker
# farm (plain MPI_Send/MPI_Recv, one task per message, 2 ranks), with mproc::Pool beside both, and
# MpiPool with the tasks run in the ranks themselves (PoolOptions::in_rank, "in-rank");
# then map throughput of MpiPool (3 ranks: 2 worker ranks) beside Pool (2 worker processes).
# Prints one table of medians over the runs, with MpiPool's ratio to the farm and the target.
#
#   scripts/bench_mpi.sh              5 runs, interleaved program by program
#   scripts/bench_mpi.sh --runs 9     more runs
#   scripts/bench_mpi.sh --table      only print the table again from the last results
#   scripts/bench_mpi.sh --baseline D an A/B: D holds mpi_bench built from another commit (e.g.
#                                     main's); its MpiPool and Pool run in the same turns and
#                                     appear as rows of their own ("baseline")
#   scripts/bench_mpi.sh --hosts      the map rows only, MpiPool and the farm each with one rank
#                                     on each of 3 test hosts (tests/hosts/test_hosts.sh: network
#                                     namespaces on this machine, TCP between them; root)
#
# The map rows run the farm's map too (bench/mpi_farm.cpp: the same chunks, by hand). Every
# run's JSON lines are kept in build/bench/mpi_bench.jsonl (mpi_bench_hosts.jsonl with --hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
table_only=0
baseline=""
hosts=0
while (($#)); do
    case "$1" in
    --runs)
        runs="${2:?--runs needs a number}"
        shift 2
        ;;
    --table)
        table_only=1
        shift
        ;;
    --baseline)
        baseline="${2:?--baseline needs a directory holding mpi_bench}"
        shift 2
        ;;
    --hosts)
        hosts=1
        shift
        ;;
    *)
        echo "usage: scripts/bench_mpi.sh [--runs N] [--table] [--baseline DIR] [--hosts]" >&2
        exit 2
        ;;
    esac
done

results=build/bench/mpi_bench.jsonl
((hosts)) && results=build/bench/mpi_bench_hosts.jsonl
if ((!table_only)); then
    scripts/setup.sh
    cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF \
        -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCHMARKS=ON -DMPROC_WITH_MPI=ON >/dev/null
    cmake --build build/bench --target mpi_bench mpi_farm -j "$(nproc)" >/dev/null

    # As in the tests: more ranks than cores is fine, root is fine, no single-copy (containers).
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
    mpirun=(mpirun --oversubscribe --allow-run-as-root)
    if ((hosts)); then
        # The flags of the tests' runs across test hosts (CMakeLists.txt, MPROC_HOSTS_MPIEXEC).
        dir=$PWD/build/bench/test_hosts
        tests/hosts/test_hosts.sh up "$dir" 3
        trap 'tests/hosts/test_hosts.sh down "$dir"' EXIT
        mpirun=(tests/hosts/test_hosts.sh run "$dir" -- "${mpirun[@]}" --hostfile "$dir/hostfile"
            --mca plm_rsh_agent "$dir/rsh_agent" --mca plm_rsh_no_tree_spawn 1
            --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24
            --mca oob_tcp_if_include 10.77.0.0/24)
    fi
    : >"$results"
    for ((run = 1; run <= runs; ++run)); do
        echo "run $run of $runs" >&2
        if ((hosts)); then
            for program in mpi_farm mpi_bench; do
                "${mpirun[@]}" -n 3 "$PWD/build/bench/bench/$program" --workload map --reps 5 |
                    sed "s/^{/{\"run\": $run, /" >>"$results"
            done
            continue
        fi
        # The farm and the pool take turns, so that a burst of load hits both sides of a ratio.
        for work_us in 0 100; do
            tasks=$((work_us == 0 ? 20000 : 2000))
            "${mpirun[@]}" -n 2 build/bench/bench/mpi_farm --tasks "$tasks" --work-us "$work_us" |
                sed "s/^{/{\"run\": $run, /" >>"$results"
            "${mpirun[@]}" -n 2 build/bench/bench/mpi_bench --workload per_task --tasks "$tasks" \
                --work-us "$work_us" | sed "s/^{/{\"run\": $run, /" >>"$results"
            if [[ -n $baseline ]]; then
                "${mpirun[@]}" -n 2 "$baseline/mpi_bench" --workload per_task --tasks "$tasks" \
                    --work-us "$work_us" | sed -e "s/^{/{\"run\": $run, /" \
                    -e 's/"impl": "\([a-z_]*\)"/"impl": "\1_baseline"/' >>"$results"
            fi
        done
        "${mpirun[@]}" -n 3 build/bench/bench/mpi_farm --workload map --reps 5 |
            sed "s/^{/{\"run\": $run, /" >>"$results"
        "${mpirun[@]}" -n 3 build/bench/bench/mpi_bench --workload map --reps 5 |
            sed "s/^{/{\"run\": $run, /" >>"$results"
        if [[ -n $baseline ]]; then
            "${mpirun[@]}" -n 3 "$baseline/mpi_bench" --workload map --reps 5 |
                sed -e "s/^{/{\"run\": $run, /" \
                    -e 's/"impl": "\([a-z_]*\)"/"impl": "\1_baseline"/' >>"$results"
        fi
    done
fi

python3 - "$results" "$hosts" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def values(workload, impl, key, work_us=None):
    return [r[key] for r in rows if r["workload"] == workload and r["impl"] == impl
            and (work_us is None or r.get("work_us") == work_us)]
def ratios(workload, impl, base, key, work_us=None):
    # each run's own ratio, then the median of those
    out = []
    for run in sorted({r["run"] for r in rows}):
        a = [r[key] for r in rows if r["run"] == run and r["workload"] == workload
             and r["impl"] == impl and (work_us is None or r.get("work_us") == work_us)]
        b = [r[key] for r in rows if r["run"] == run and r["workload"] == workload
             and r["impl"] == base and (work_us is None or r.get("work_us") == work_us)]
        if a and b:
            out.append(a[0] / b[0])
    return out
runs = len({r["run"] for r in rows})
across_hosts = sys.argv[2] == "1"
if across_hosts:
    print(f"MpiPool against a hand-written MPI farm across 3 test hosts (TCP); medians of {runs} runs")
else:
    print(f"MpiPool against a hand-written MPI farm; medians of {runs} runs (2 ranks: 1 worker)")
if values("per_task", "mpi_farm", "per_task_us"):
    print()
    print("| task | MPI farm (floor) | mproc::MpiPool | mproc::Pool | MpiPool / farm (range) | target | |")
    print("|---|---|---|---|---|---|---|")
for work_us in (0, 100):
    farm = values("per_task", "mpi_farm", "per_task_us", work_us)
    for suffix, label in (("", ""), ("_baseline", " (baseline)")):
        mpi = values("per_task", "mpi_pool" + suffix, "per_task_us", work_us)
        pool = values("per_task", "process_pool" + suffix, "per_task_us", work_us)
        if not (farm and mpi and pool):
            continue
        r = ratios("per_task", "mpi_pool" + suffix, "mpi_farm", "per_task_us", work_us)
        ratio = statistics.median(r)
        print(f"| spin {work_us} µs, chunksize 1{label} | {statistics.median(farm):.2f} µs/task "
              f"| {statistics.median(mpi):.2f} µs/task | {statistics.median(pool):.2f} µs/task "
              f"| {ratio:.2f}x ({min(r):.2f}–{max(r):.2f}) | ≤ 1.5x | {'met' if ratio <= 1.5 else 'missed'} |")
        in_rank = values("per_task", "mpi_pool_in_rank" + suffix, "per_task_us", work_us)
        if in_rank:
            r = ratios("per_task", "mpi_pool_in_rank" + suffix, "mpi_farm", "per_task_us", work_us)
            ratio = statistics.median(r)
            print(f"| spin {work_us} µs, chunksize 1, in-rank{label} | {statistics.median(farm):.2f} µs/task "
                  f"| {statistics.median(in_rank):.2f} µs/task | | {ratio:.2f}x ({min(r):.2f}–{max(r):.2f}) "
                  f"| ≤ 1.5x | {'met' if ratio <= 1.5 else 'missed'} |")
header = False
farm = values("map", "mpi_farm", "items_per_s")
for suffix, label in (("", ""), ("_baseline", " (baseline)")):
    mpi = values("map", "mpi_pool" + suffix, "items_per_s")
    pool = values("map", "process_pool" + suffix, "items_per_s")
    if not (mpi and pool and farm):
        continue
    r = ratios("map", "mpi_farm", "mpi_pool" + suffix, "items_per_s")  # farm's time / pool's
    p = ratios("map", "mpi_pool" + suffix, "process_pool" + suffix, "items_per_s")
    if not header:
        print()
        where = "3 ranks, one per test host" if across_hosts else "3 ranks"
        print(f"| map, 10^6 int64, default chunksize, 2 workers ({where}) | MPI farm (floor) "
              "| mproc::MpiPool | mproc::Pool (rank 0's machine) | MpiPool's time / farm's (range) "
              "| target | | MpiPool / Pool |")
        print("|---|---|---|---|---|---|---|---|")
        header = True
    ratio = statistics.median(r)
    print(f"| throughput{label} | {statistics.median(farm) / 1e6:.1f} M items/s "
          f"| {statistics.median(mpi) / 1e6:.1f} M items/s | {statistics.median(pool) / 1e6:.1f} M items/s "
          f"| {ratio:.2f}x ({min(r):.2f}–{max(r):.2f}) | ≤ 1.5x | {'met' if ratio <= 1.5 else 'missed'} "
          f"| {statistics.median(p):.2f} ({min(p):.2f}–{max(p):.2f}) |")
PY
