#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes docs/benchmarks.md and its PNG plots from the JSON lines scripts/bench_all.sh collected.

Usage: report.py RESULTS.jsonl MACHINE.json PAGE.md

Every figure on the page is a median over runs of each run's own median; every ratio is the
median of the ratios computed inside each run (both sides measured in the same run, minutes
apart at most), with the range over runs. The hand-written analysis in bench/benchmarks_notes.md
is appended as it is.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

results_path, machine_path, page_path = sys.argv[1:4]
machine = json.load(open(machine_path))
cores = machine["usable_cores"]
here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.dirname(os.path.abspath(page_path))
stem = os.path.splitext(os.path.basename(page_path))[0]

# (workload, impl, workers) -> {run: median}
figures = defaultdict(dict)
units = {}
for line in open(results_path):
    r = json.loads(line)
    figures[(r["workload"], r["impl"], r.get("workers", 0))][r["run"]] = r["median"]
    units[r["workload"]] = r["unit"]
runs = sorted({run for per_run in figures.values() for run in per_run})


def key(workload, impl, workers):
    return (workload, impl, workers)


def per_run(combine, *keys):
    """combine(values...) for every run in which every key has a figure."""
    values = []
    for run in runs:
        if all(run in figures.get(k, {}) for k in keys):
            values.append(combine(*(figures[k][run] for k in keys)))
    return values


def ratio(numerator, denominator):
    """numerator / denominator for every run in which both have a figure."""
    return per_run(lambda n, d: n / d, numerator, denominator)


def fmt(x, digits=3):
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:#.{digits}g}"


def summary(values, digits=3, suffix=""):
    if not values:
        return "-"
    text = f"{fmt(statistics.median(values), digits)}{suffix}"
    if len(values) > 1:
        text += f" [{fmt(min(values), digits)}-{fmt(max(values), digits)}]"
    return text


def figure(k, digits=3):
    return summary(list(figures.get(k, {}).values()), digits)


C = cores
seed_parallelism = min(cores, 10, 12)  # min(cores, workers, chunks): 12 tasks, chunksize 1

# ---- the targets of issue 7 -------------------------------------------------------------------
# (issue item, what, per-run values, "<=" or ">=", target, aim or None, how the value reads)
targets = [
    ("1a", "map_into, 10^7 trivial items: ThreadPool / OpenMP static (time)",
     ratio(key("tiny_into", "mproc_thread", C), key("tiny_into", "omp_static", C)),
     "<=", 1.1, None),
    ("1a", "map_into, 10^7 trivial items: ThreadPool / oneTBB parallel_for (time)",
     ratio(key("tiny_into", "mproc_thread", C), key("tiny_into", "tbb", C)),
     "<=", 1.0, None),
    ("1a", "map_into, 10^7 trivial items: ThreadPool / std::execution::par (time)",
     ratio(key("tiny_into", "mproc_thread", C), key("tiny_into", "std_par", C)),
     "<=", 1.0, None),
    ("1b", "map to a fresh vector: ThreadPool::map / OpenMP static into a fresh vector (time)",
     ratio(key("tiny_fresh", "mproc_thread", C), key("tiny_fresh", "omp_static", C)),
     "<=", 1.0, None),
    ("1b", "map to a fresh vector: ThreadPool::map / OpenMP static into pre-allocated storage (time)",
     ratio(key("tiny_fresh", "mproc_thread", C), key("tiny_into", "omp_static", C)),
     "<=", 5.0, None),
    # Met in the opt-in mode (PoolOptions::caller_runs_chunks: the caller runs chunks, as
    # OpenMP's master thread does); the default pool's figures stay on the page for the record.
    ("2", f"fork-join, map over {C} trivial items: ThreadPool with caller_runs_chunks / OpenMP parallel for (time)",
     ratio(key("forkjoin", "mproc_thread_helps", C), key("forkjoin", "omp_static", C)),
     "<=", 1.0, None),
    ("2", f"fork-join, map over {C} trivial items: ThreadPool with caller_runs_chunks, µs a round",
     list(figures.get(key("forkjoin", "mproc_thread_helps", C), {}).values()), "<=", 3.0, 1.0),
    ("2", f"fork-join, map over {C} trivial items: default ThreadPool / OpenMP parallel for (time), for the record",
     ratio(key("forkjoin", "mproc_thread", C), key("forkjoin", "omp_static", C)),
     None, None, None),
    ("2", f"fork-join, map over {C} trivial items: default ThreadPool, µs a round, for the record",
     list(figures.get(key("forkjoin", "mproc_thread", C), {}).values()), None, None, None),
    ("3", "ThreadPool::imap_unordered chunksize 1: µs an item",
     list(figures.get(key("imap", "mproc_thread", C), {}).values()), "<=", 1.0, None),
    ("4", "uneven work, auto chunksize: ThreadPool / min(OpenMP dynamic, TBB) (time)",
     per_run(lambda m, d, t: m / min(d, t), key("uneven", "mproc_thread", C),
             key("uneven", "omp_dynamic", C), key("uneven", "tbb", C)),
     "<=", 1.1, None),
    ("5", f"seed, ThreadPool(10), auto chunksize: speed-up / min(cores, workers, chunks) = /{seed_parallelism}",
     per_run(lambda s, m: s / m / seed_parallelism, key("seed", "sequential", 1), key("seed", "mproc_thread", 10)),
     ">=", 0.95, None),
    ("5", f"seed, Pool(10), auto chunksize: speed-up / {seed_parallelism}",
     per_run(lambda s, m: s / m / seed_parallelism, key("seed_auto", "sequential", 1), key("seed_auto", "mproc_pool", 10)),
     ">=", 0.95, None),
    ("5", f"seed, Python Pool(10) (1/50 of the steps): speed-up / {seed_parallelism}, for the record",
     per_run(lambda s, m: s / m / seed_parallelism, key("seed", "python_sequential", 1), key("seed", "python", 10)),
     None, None, None),
    ("6", "apply round trip: Python's time / Pool's",
     ratio(key("apply", "python", 2), key("apply", "mproc_pool", 2)),
     ">=", 10, 50),
    ("6", "map, 10^6 trivial items: Pool's throughput / Python's",
     ratio(key("map", "mproc_pool", 2), key("map", "python", 2)),
     ">=", 20, 30),
    ("6", "imap_unordered chunksize 1: Python's time an item / Pool's",
     ratio(key("imap_unordered", "python", 2), key("imap_unordered", "mproc_pool", 2)),
     ">=", 10, None),
    ("6", "map, tasks of 100 µs, chunksize 1: Python's time a task / Pool's, for the record",
     ratio(key("medium", "python", 2), key("medium", "mproc_pool", 2)),
     None, None, None),
    ("6", "create Pool(2) + first apply + destroy: Python's time / Pool's",
     ratio(key("lifecycle", "python", 2), key("lifecycle", "mproc_pool", 2)),
     ">=", 10, None),
    ("6", "create + apply + destroy: Pool's time / two bare fork+exit+wait (the floor), for the record",
     ratio(key("lifecycle", "mproc_pool", 2), key("lifecycle", "floor_fork", 1)),
     None, None, None),
    ("7", "payload, 1,000 × 1 MiB vectors: Pool::map throughput / memcpy bandwidth",
     ratio(key("payload", "mproc_pool", 2), key("payload", "memcpy", 1)),
     ">=", 0.5, None),
    ("7", "payload: Pool::map throughput / one copy into fresh vectors (the floor), for the record",
     ratio(key("payload", "mproc_pool", 2), key("payload", "floor_fresh_copy", 1)),
     None, None, None),
    ("13", f"map_into, 10^7 trivial items on ThreadPool({C}): mproc::fn<f> / the same call with a lambda (time)",
     ratio(key("tiny_into", "mproc_thread_fn", C), key("tiny_into", "mproc_thread", C)),
     "<=", 1.1, None),
    ("13", f"the same with f passed as a plain function (a pointer) / with a lambda (time), for the record",
     ratio(key("tiny_into", "mproc_thread_function_pointer", C), key("tiny_into", "mproc_thread", C)),
     None, None, None),
    ("12", f"as_completed over 10^4 apply_async results on ThreadPool({C}): µs a result over get() in submission order",
     per_run(lambda a, g: a - g, key("futures", "mproc_thread_as_completed", C),
             key("futures", "mproc_thread_get_in_order", C)),
     "<=", 1, None),
    ("12", f"nested: recursive Fibonacci(25), a task a call above n = 15, on ThreadPool({C}): time / oneTBB task_group's",
     ratio(key("nested", "mproc_thread", C), key("nested", "tbb", C)),
     "<=", 2, None),
    ("12", "the same: ThreadPool's time / the sequential recursion, for the record",
     ratio(key("nested", "mproc_thread", C), key("nested", "sequential", 1)),
     None, None, None),
    ("12", "cancel a running task of Pool(1): ms from cancel() to the result of the next apply (its replacement worker's)",
     list(figures.get(key("cancel", "mproc_pool_cancel_running", 1), {}).values()), "<=", 100, None),
    ("12", "the same / killing, reaping and forking a bare process (the floor), for the record",
     ratio(key("cancel", "mproc_pool_cancel_running", 1), key("cancel", "floor_kill_fork", 1)),
     None, None, None),
    ("15", "map, 10^6 trivial items on Pool(2): throughput without a timeline / with one",
     ratio(key("timeline_map", "mproc_pool_timeline_off", 2), key("timeline_map", "mproc_pool_timeline_on", 2)),
     "<=", 1.05, None),
    ("15", "ThreadPool(2) map in chunks of one: ns a chunk with a timeline, less without",
     per_run(lambda on, off: on - off, key("timeline_chunk", "mproc_thread_timeline_on", 2),
             key("timeline_chunk", "mproc_thread_timeline_off", 2)),
     "<=", 200, None),
    ("16", "map of 10^5 tasks of 100 µs on Pool(2): time through mproc::resumable (a fresh journal) / plain",
     ratio(key("journal", "mproc_pool_journal", 2), key("journal", "mproc_pool_plain", 2)),
     "<=", 1.1, None),
    ("11", "one 200 MiB std::vector<char> argument: Pool::apply's time / memcpy of the bytes",
     ratio(key("big", "mproc_pool_vector_argument", 2), key("big", "memcpy", 1)),
     "<=", 10, None),
    ("11", "one 200 MiB std::vector<char> result: Pool::apply's time / memcpy of the bytes",
     ratio(key("big", "mproc_pool_vector_result", 2), key("big", "memcpy", 1)),
     "<=", 10, None),
    ("11", "the same result: Pool::apply's time / (the task alone in the caller + memcpy), for the record",
     per_run(lambda r, t, m: r / (t + m), key("big", "mproc_pool_vector_result", 2),
             key("big", "task_alone_result", 1), key("big", "memcpy", 1)),
     None, None, None),
    ("11", "the same result read once from another process's memory (process_vm_readv) into a fresh vector / memcpy, the one-copy floor, for the record",
     ratio(key("big", "floor_cross_memory_result", 1), key("big", "memcpy", 1)),
     None, None, None),
    ("11", "the same 200 MiB as a SharedArray argument: Pool::apply's time / an apply of an int",
     ratio(key("big", "mproc_pool_shared_array", 2), key("big", "mproc_pool_int", 2)),
     "<=", 2, None),
    ("11", "one 200 MiB argument: Python's time with bytes / Pool's with std::vector<char>",
     ratio(key("big", "python_bytes_argument", 2), key("big", "mproc_pool_vector_argument", 2)),
     ">=", 20, None),
    ("11", "200 MiB in shared memory: Python's time with shared_memory / Pool's with SharedArray",
     ratio(key("big", "python_shared_memory", 2), key("big", "mproc_pool_shared_array", 2)),
     ">=", 1, None),
    ("11", "apply round trip: Pool's time / a round trip through shared memory and a futex between two processes (the floor)",
     ratio(key("apply", "mproc_pool", 2), key("apply", "floor_futex_shm", 1)),
     "<=", 1.5, None),
    ("11", "imap_unordered chunksize 1: Pool, µs an item",
     list(figures.get(key("imap_unordered", "mproc_pool", 2), {}).values()),
     "<=", 1.5, None),
    ("11", "map over 300 × 1 MiB std::vector<char>: Pool's bandwidth (bytes in + out) / memcpy's",
     ratio(key("big", "memcpy", 1), key("big", "mproc_pool_map_vectors", 2)),
     ">=", 0.25, None),
    ("11", "the same items and results read once from another process's memory, on one thread (the one-copy floor): bandwidth / memcpy's, for the record",
     ratio(key("big", "memcpy", 1), key("big", "floor_cross_memory_map", 1)),
     None, None, None),
    ("11", "map_into over 300 MiB of floats, SharedArray in and SharedArray out: bandwidth (in + out) / memcpy's",
     ratio(key("big", "memcpy", 1), key("big", "mproc_pool_map_into_shared", 2)),
     ">=", 0.5, None),
    ("11", "the same from a std::vector into a std::vector: bandwidth (in + out) / memcpy's, for the record",
     ratio(key("big", "memcpy", 1), key("big", "mproc_pool_map_into_vector", 2)),
     None, None, None),
    ("11", "a 1 GiB read-only SharedArray passed to 1,000 applies: Pool::apply's time / an apply of an int",
     ratio(key("huge_shared", "mproc_pool_shared_array", 2), key("huge_shared", "mproc_pool_int", 2)),
     "<=", 2, None),
    ("11", "the same 1,000 calls: a worker's resident memory after them less before (MiB)",
     list(figures.get(key("huge_shared_rss", "mproc_pool_worker_growth", 1), {}).values()),
     "<=", 16, None),
]
for workload in ("tiny_into", "uneven", "seed"):
    targets.append(
        ("8", f"scaling, {workload}: ThreadPool efficiency at {C} workers (speed-up / {C}), for the record",
         per_run(lambda s, m: s / m / C, key(workload, "sequential", 1), key(workload, "mproc_thread", C)),
         None, None, None))


def verdict(values, op, target):
    if not values or op is None:
        return "-"
    m = statistics.median(values)
    return "met" if (m <= target if op == "<=" else m >= target) else "**missed**"


# ---- the page -----------------------------------------------------------------------------------
out = []
w = out.append
w("# Benchmarks\n")
w("Written by `scripts/bench_all.sh` (issue 7); re-run it to refresh this page and its plots.\n")
w(f"- Machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
  f"Linux {machine['kernel']}; {machine['compiler']}; Python {machine['python']}")
w(f"- Date: {machine['date']}; {machine['runs']} run(s) of every program; load average "
  f"{machine['load_before']} before, {machine['load_after']} after (the machine is shared: "
  f"other work ran beside the benchmarks)")
w("- Every figure is the median over runs of each run's own median (5-15 repetitions inside a "
  "run, contenders taking turns); [brackets]: the range over runs. Every ratio is computed "
  "inside each run, then the median over runs is quoted, with its range.\n")

w("## The targets\n")
w("| # | what | measured: median [range] | target | aim | |")
w("|---|---|---|---|---|---|")
for item, what, values, op, target, aim in targets:
    w(f"| {item} | {what} | {summary(values)} | {f'{op} {target}' if op else '-'} | "
      f"{aim if aim is not None else '-'} | {verdict(values, op, target)} |")
w("")
w(f"Scaling at more cores (16-core efficiency with 1 ms tasks: 0.95 threads, 0.90 processes) "
  f"needs a machine with more cores; none was available, so only the {cores}-core set is here.\n")

thread_impls = ["sequential", "omp_static", "omp_dynamic", "tbb", "std_par", "mproc_thread",
                "mproc_thread_into", "mproc_thread_helps"]
thread_workloads = [("tiny_into", "10^7 trivial items into pre-allocated storage (ms)"),
                    ("tiny_fresh", "10^7 trivial items into a fresh vector (ms)"),
                    ("forkjoin", f"fork-join over {C} trivial items (µs a round)"),
                    ("imap", "imap_unordered chunksize 1 (µs an item)"),
                    ("nested", "Fibonacci(25), a task a call above n = 15 (ms)"),
                    ("uneven", "10^5 items of cost 1..1000 units (ms)"),
                    ("seed", "seed: 12 tasks × 175 M steps (s)")]
w(f"## Threads: mproc::ThreadPool and its peers at {C} workers\n")
w("`bench/thread_bench.cpp`. OpenMP: `parallel for schedule(static)` and `schedule(dynamic, "
  "chunk)` (chunk 4096 for the trivial items, 16 for the uneven ones, 1 for the seed tasks); "
  "oneTBB: `parallel_for` over a `blocked_range` with the default partitioner; std_par: "
  "`std::transform(std::execution::par, ...)`; mproc_thread: `ThreadPool::map_into` where the "
  "peers write into pre-allocated storage, `ThreadPool::map` where they allocate; "
  "mproc_thread_into: `map_into` in the fork-join; mproc_thread_helps: `map` on a ThreadPool "
  "with `PoolOptions::caller_runs_chunks` (the calling thread runs the chunks no worker has "
  "started, as OpenMP's master thread does), fork-join only. The sequential figure is the plain loop on one "
  "thread; the seed's mproc figure is the article's pool of 10 made inside the timed region.\n")
w("| workload | " + " | ".join(thread_impls) + " |")
w("|---" * (len(thread_impls) + 1) + "|")
for workload, label in thread_workloads:
    cells = []
    for impl in thread_impls:
        workers = 1 if impl == "sequential" else (10 if workload == "seed" and impl == "mproc_thread" else C)
        cells.append(figure(key(workload, impl, workers)))
    w(f"| {label} | " + " | ".join(cells) + " |")
w("")

process_rows = [("apply", "apply round trip (µs)", 1),
                ("map", "map, 10^6 trivial items (M items/s)", 1e-6),
                ("imap_unordered", "imap_unordered chunksize 1 (µs an item)", 1),
                ("medium", "map, 2,000 tasks of 100 µs, chunksize 1 (µs a task; 50 at best)", 1),
                ("lifecycle", "Pool(2) + apply + destroy (ms)", 1),
                ("payload", "map over 1,000 × 1 MiB vectors (GiB/s)", 1)]
w("## Processes: mproc::Pool and Python's multiprocessing.Pool, 2 workers\n")
w("`bench/process_bench.cpp` and `bench/python_pool_bench.py` (Python "
  f"{machine['python']}, start method fork), run back to back workload by workload. The floors "
  "are the same work with no pool around it (see process_bench.cpp).\n")
process_impls = ["python", "mproc_pool", "mproc_thread", "floor_socketpair", "floor_futex_shm",
                 "floor_socket_blocks", "floor_fork", "memcpy", "floor_fresh_copy"]
w("| workload | " + " | ".join(process_impls) + " |")
w("|---" * (len(process_impls) + 1) + "|")
for workload, label, scale in process_rows:
    cells = []
    for impl in process_impls:
        # Floors run on the caller's own thread(s) and are recorded with 1 worker.
        k = key(workload, impl, 2)
        if k not in figures:
            k = key(workload, impl, 1)
        values = [v * scale for v in figures.get(k, {}).values()]
        cells.append(summary(values))
    w(f"| {label} | " + " | ".join(cells) + " |")
w("")
w("Seed workload, speed-up over the sequential loop in the same program (12 tasks, pools of "
  "10 made inside the timed region, auto chunksize):\n")
w("| | sequential (s) | pool (s) | speed-up |")
w("|---|---|---|---|")
for label, seq, pool in (("mproc::ThreadPool", key("seed", "sequential", 1), key("seed", "mproc_thread", 10)),
                         ("mproc::Pool", key("seed_auto", "sequential", 1), key("seed_auto", "mproc_pool", 10)),
                         ("Python Pool (1/50 of the steps)", key("seed", "python_sequential", 1), key("seed", "python", 10))):
    w(f"| {label} | {figure(seq)} | {figure(pool)} | {summary(ratio(seq, pool))} |")
w("")

# ---- scaling -------------------------------------------------------------------------------------
worker_counts = sorted({k[2] for k in figures if k[0] == "tiny_into" and k[1] != "sequential"})
scaling_impls = ["omp_static", "omp_dynamic", "tbb", "std_par", "mproc_thread"]
w(f"## Scaling: speed-up over the sequential loop, 1 to {C} workers\n")
w(f"![speed-up against workers]({stem}-scaling.png)\n")
data_files = {}
for workload in ("tiny_into", "uneven", "seed"):
    w(f"**{workload}**\n")
    w("| workers | " + " | ".join(scaling_impls) + " |")
    w("|---" * (len(scaling_impls) + 1) + "|")
    rows = []
    for n in worker_counts:
        speedups = [ratio(key(workload, "sequential", 1), key(workload, impl, n))
                    for impl in scaling_impls]
        w(f"| {n} | " + " | ".join(summary(v) for v in speedups) + " |")
        rows.append((n, [statistics.median(v) if v else float("nan") for v in speedups]))
    w("")
    data_files[workload] = rows

w("## Where the targets stand\n")
w(f"![measured against target]({stem}-targets.png)\n")
notes = os.path.join(here, "benchmarks_notes.md")
if os.path.exists(notes):
    out.append(open(notes).read())

with open(page_path, "w") as f:
    f.write("\n".join(out).rstrip() + "\n")

# ---- plots -------------------------------------------------------------------------------------
gnuplot = shutil.which("gnuplot")
if gnuplot is None:
    print("report.py: gnuplot not found, no plots (scripts/setup.sh installs gnuplot-nox)",
          file=sys.stderr)
    sys.exit(0)

work = os.path.join(os.path.dirname(os.path.abspath(results_path)), "plots")
os.makedirs(work, exist_ok=True)
for workload, rows in data_files.items():
    with open(os.path.join(work, f"{workload}.dat"), "w") as f:
        f.write("# workers " + " ".join(scaling_impls) + "\n")
        for n, values in rows:
            f.write(f"{n} " + " ".join(f"{v:.4f}" for v in values) + "\n")

max_workers = max(worker_counts) if worker_counts else 1
script = [f'set terminal pngcairo noenhanced size 1500,480 font ",10"',
          f'set output "{os.path.join(out_dir, stem)}-scaling.png"',
          "set multiplot layout 1,3",
          "set key top left",
          "set grid",
          f"set xrange [0.8:{max_workers * 1.1}]",
          f"set yrange [0:{max_workers * 1.25}]",
          "set xlabel 'workers'",
          "set ylabel 'speed-up over sequential'"]
for workload in data_files:
    path = os.path.join(work, f"{workload}.dat")
    plots = [f"x with lines dashtype 2 lc 'gray' title 'ideal'"]
    for i, impl in enumerate(scaling_impls):
        plots.append(f"'{path}' using 1:{i + 2} with linespoints lw 2 title '{impl}'")
    script.append(f"set title '{workload} ({machine['cpu']}, {cores} cores)'")
    script.append("plot " + ", ".join(plots))
script.append("unset multiplot")

# Targets: how far each measured value is from its target; below 1 means met.
with open(os.path.join(work, "targets.dat"), "w") as f:
    n = 0
    for item, what, values, op, target, aim in targets:
        if not values or op is None:
            continue
        m = statistics.median(values)
        margin = m / target if op == "<=" else target / m
        label = f"{item}: {what}"
        if len(label) > 80:
            label = label[:77] + "..."
        f.write(f'{n} "{label}" {margin:.4f}\n')
        n += 1
script += [f'set terminal pngcairo noenhanced size 1400,{160 + 26 * n} font ",10"',
           f'set output "{os.path.join(out_dir, stem)}-targets.png"',
           "set title 'measured / target (time-like) or target / measured (rate-like): below 1 is met'",
           "set logscale x",
           "set xrange [0.01:100]",
           "set yrange [-1:%d]" % n,
           "set ytics nomirror",
           "unset key",
           "set grid x",
           "set xlabel 'margin (log scale)'",
           "unset ylabel",
           "set style fill solid 0.6",
           "set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb 'black' lw 2",
           f"plot '{os.path.join(work, 'targets.dat')}' using 3:1:($3 < 1 ? $3 : 1):($3 > 1 ? $3 : 1):"
           "($1 - 0.35):($1 + 0.35):($3 <= 1 ? 0x44aa77 : 0xcc4444):ytic(2) "
           "with boxxyerrorbars lc rgb variable"]
subprocess.run([gnuplot], input="\n".join(script), text=True, check=True)
