#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python's multiprocessing.Pool on the workloads of bench/process_bench.cpp, same output format.

   apply            pool.apply(f, (7,)) round trip, one at a time, Pool(2) made once (us/call)
   map              pool.map(f, list(range(10**6))), default chunksize, Pool(2) made once (items/s)
   imap_unordered   pool.imap_unordered(f, range(n), chunksize=1), every result consumed (us/item)
   medium           pool.starmap(spin, [(i, 100)...], chunksize=1) over 2,000 tasks that spin 100 us
                    (time.perf_counter), Pool(2) made once (us per task)
   lifecycle        with Pool(2) as pool: pool.apply(f, (7,)); then pool.join() (ms)
   seed             the seed demo's 12 tasks, each 1/50 of the C++ steps (Python's loop is about
                    100 times slower), sequential ("python_sequential") and through
                    `with Pool(10) as pool: pool.map(burn, tasks)` ("python") (s): the speed-up,
                    not the time, is the figure to compare
   big              one 200 MiB argument: `bytes` through the pool ("python_bytes_argument"), as a
                    result ("python_bytes_result"), through multiprocessing.shared_memory (the
                    task attaches by name: "python_shared_memory"), and an apply of an int
                    ("python_int"), Pool(2) made once (ms per call)

f is `x * x + 1`. One JSON object a line:
  {"workload": ..., "impl": "python", "unit": ..., "better": ..., "median": ..., "min": ...,
   "max": ..., "repetitions": ..., "size": ..., "start_method": ...}

Standard library only. Usage: python_pool_bench.py [--quick] [--repetitions N] [--only a,b]
"""

import argparse
import json
import multiprocessing
import statistics
import time
from multiprocessing import resource_tracker, shared_memory


def square_plus_one(x):
    return x * x + 1


SIZES = {
    "repetitions_fast": 15,
    "repetitions_map": 7,
    "applies": 500,
    "map_items": 10**6,
    "imap_items": 2000,
    "medium_tasks": 2000,
    "lifecycles": 5,
    "repetitions_seed": 3,
    "seed_tasks": 12,
    "seed_iterations": 175_000_000 // 50,
    "repetitions_big": 3,
    "big_bytes": 200 << 20,
    "big_calls": 20,
}
QUICK = {
    "repetitions_fast": 3,
    "repetitions_map": 3,
    "applies": 20,
    "map_items": 10**4,
    "imap_items": 50,
    "medium_tasks": 20,
    "lifecycles": 1,
    "repetitions_seed": 2,
    "seed_tasks": 12,
    "seed_iterations": 20_000,
    "repetitions_big": 2,
    "big_bytes": 8 << 20,
    "big_calls": 3,
}


def burn(task):
    """The seed demo's task (examples/seed_demo.cpp): `iterations` steps of i * i * cycles."""
    index, iterations = task
    cycles = 1 + index * 7 % 100
    for i in range(iterations):
        _ = i * i * cycles
    return cycles


def spin_then_return(x, us):
    """The medium workload's task: spins `us` microseconds, then returns x."""
    until = time.perf_counter() + us * 1e-6
    while time.perf_counter() < until:
        pass
    return x


def ends_of(data):
    return data[0] + data[-1]


def big_result(size):
    return bytes(size)


def shared_ends_of(name):
    memory = shared_memory.SharedMemory(name=name)
    # The worker was forked before the caller's resource tracker started, so attaching
    # registered the memory with a tracker of its own, which would unlink it when the worker
    # ends (CPython issue 82300): only the caller owns it.
    resource_tracker.unregister(memory._name, "shared_memory")
    try:
        return memory.buf[0] + memory.buf[memory.size - 1]
    finally:
        memory.close()


def report(workload, unit, better, size, figures, impl="python", workers=2):
    print(
        json.dumps(
            {
                "workload": workload,
                "impl": impl,
                "workers": workers,
                "unit": unit,
                "better": better,
                "median": statistics.median(figures),
                "min": min(figures),
                "max": max(figures),
                "repetitions": len(figures),
                "size": size,
                "start_method": multiprocessing.get_start_method(),
            }
        ),
        flush=True,
    )


def run(measure, repetitions):
    measure()  # warm-up, untimed
    return [measure() for _ in range(repetitions)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every workload, tiny (smoke run)")
    parser.add_argument("--repetitions", type=int, help="timed repetitions of every workload")
    parser.add_argument("--only", help="comma-separated workloads (default: all)")
    args = parser.parse_args()
    s = dict(QUICK if args.quick else SIZES)
    if args.repetitions is not None:
        if args.repetitions <= 0:
            parser.error("--repetitions must be positive")
        s["repetitions_fast"] = s["repetitions_map"] = s["repetitions_seed"] = args.repetitions
    only = set(args.only.split(",")) if args.only else None

    def wanted(workload):
        return only is None or workload in only

    with multiprocessing.Pool(2) as pool:
        if wanted("apply"):

            def apply():
                t0 = time.perf_counter()
                for i in range(s["applies"]):
                    pool.apply(square_plus_one, (i,))
                return (time.perf_counter() - t0) / s["applies"] * 1e6

            report("apply", "us", "lower", 1, run(apply, s["repetitions_fast"]))

        if wanted("map"):
            items = list(range(s["map_items"]))

            def map_items():
                t0 = time.perf_counter()
                results = pool.map(square_plus_one, items)
                elapsed = time.perf_counter() - t0
                assert len(results) == len(items)
                return len(items) / elapsed

            report("map", "items/s", "higher", s["map_items"], run(map_items, s["repetitions_map"]))

        if wanted("imap_unordered"):

            def imap_unordered():
                t0 = time.perf_counter()
                received = sum(1 for _ in pool.imap_unordered(square_plus_one,
                                                              range(s["imap_items"]), 1))
                elapsed = time.perf_counter() - t0
                assert received == s["imap_items"]
                return elapsed / s["imap_items"] * 1e6

            report("imap_unordered", "us", "lower", s["imap_items"],
                   run(imap_unordered, s["repetitions_fast"]))

        if wanted("medium"):
            tasks = [(i, 100) for i in range(s["medium_tasks"])]

            def medium():
                t0 = time.perf_counter()
                results = pool.starmap(spin_then_return, tasks, 1)
                elapsed = time.perf_counter() - t0
                assert results[-1] == tasks[-1][0]
                return elapsed / len(tasks) * 1e6

            report("medium", "us", "lower", s["medium_tasks"], run(medium, s["repetitions_fast"]))

        if wanted("big"):
            data = b"x" * s["big_bytes"]
            memory = shared_memory.SharedMemory(create=True, size=s["big_bytes"])
            memory.buf[:] = data

            def per_call(call, calls):
                def measure():
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        call()
                    return (time.perf_counter() - t0) / calls * 1e3
                return measure

            try:
                for impl, call, calls in (
                        ("python_bytes_argument", lambda: pool.apply(ends_of, (data,)), 1),
                        ("python_bytes_result",
                         lambda: pool.apply(big_result, (s["big_bytes"],)), 1),
                        ("python_shared_memory",
                         lambda: pool.apply(shared_ends_of, (memory.name,)), s["big_calls"]),
                        ("python_int", lambda: pool.apply(square_plus_one, (3,)),
                         s["big_calls"])):
                    report("big", "ms", "lower", 1,
                           run(per_call(call, calls), s["repetitions_big"]), impl)
            finally:
                memory.close()
                memory.unlink()

    if wanted("lifecycle"):

        def lifecycle():
            t0 = time.perf_counter()
            for _ in range(s["lifecycles"]):
                with multiprocessing.Pool(2) as pool:
                    assert pool.apply(square_plus_one, (7,)) == 50
                # __exit__ terminates; join as mproc's destructor does, so no worker outlives it
                pool.join()
            return (time.perf_counter() - t0) / s["lifecycles"] * 1e3

        report("lifecycle", "ms", "lower", 2, run(lifecycle, s["repetitions_fast"]))

    if wanted("seed"):
        tasks = [(i, s["seed_iterations"]) for i in range(s["seed_tasks"])]

        def sequential():
            t0 = time.perf_counter()
            results = [burn(task) for task in tasks]
            elapsed = time.perf_counter() - t0
            assert len(results) == len(tasks)
            return elapsed

        def pooled():
            t0 = time.perf_counter()
            with multiprocessing.Pool(10) as pool:
                results = pool.map(burn, tasks)
            elapsed = time.perf_counter() - t0
            assert len(results) == len(tasks)
            return elapsed

        sequential_times, pool_times = [], []
        sequential()  # warm-up, untimed
        pooled()
        for _ in range(s["repetitions_seed"]):
            sequential_times.append(sequential())
            pool_times.append(pooled())
        report("seed", "s", "lower", s["seed_tasks"], sequential_times, "python_sequential", 1)
        report("seed", "s", "lower", s["seed_tasks"], pool_times, "python", 10)


if __name__ == "__main__":
    main()
