#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python's multiprocessing.Pool.imap on the input of bench/imap_memory_bench.cpp: 1 KiB items
from a lazy generator, each returned reversed, the consumer checking every result (and, with
--consumer-sleep-us, sleeping that long per result). Prints one JSON line with the growth of
this process's resident memory over its baseline, as the C++ program does.

Python's imap takes no buffersize before 3.15/3.16; this measures the default, unbounded one.
"""
import argparse
import json
import multiprocessing
import time

PATTERN = bytes(range(256)) * 8


def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
    return -1


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def reversed_item(item):
    return item[::-1]


def records(count):
    for i in range(count):
        yield PATTERN[i & 255:(i & 255) + 1024]  # byte k is (i + k) mod 256


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--order", choices=["ordered", "unordered"], default="ordered")
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--chunksize", type=int, default=64)
    parser.add_argument("--consumer-sleep-us", type=int, default=0)
    args = parser.parse_args()
    pause = args.consumer_sleep_us * 1e-6

    with multiprocessing.Pool(2) as pool:
        imap = pool.imap if args.order == "ordered" else pool.imap_unordered
        for _ in imap(reversed_item, records(10_000), args.chunksize):  # warm up
            pass
        baseline = status_kib("VmRSS")
        peak_reset = reset_peak()
        start = time.perf_counter()
        consumed = checksum = 0
        sampled_peak = baseline
        for result in imap(reversed_item, records(args.items), args.chunksize):
            consumed += 1
            checksum += result[0]
            if consumed % 65536 == 0:
                sampled_peak = max(sampled_peak, status_kib("VmRSS"))
            if pause:
                time.sleep(pause)
        seconds = time.perf_counter() - start
        peak = status_kib("VmHWM") if peak_reset else max(sampled_peak, baseline)

    expected = sum((i + 1023) & 255 for i in range(args.items))
    print(json.dumps({
        "program": "python", "pool": "multiprocessing.Pool", "order": args.order,
        "items": args.items, "item_bytes": 1024, "chunksize": args.chunksize,
        "buffersize": None, "consumer_sleep_us": args.consumer_sleep_us,
        "baseline_kib": baseline, "growth_kib": peak - baseline,
        "peak_from": "VmHWM" if peak_reset else "sampled VmRSS",
        "seconds": round(seconds, 3),
        "results_ok": consumed == args.items and checksum == expected}))


if __name__ == "__main__":
    main()
