#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks a timeline written by mproc (the seed demo's --timeline) against the formats it claims.

  check_timeline_files.py TRACE.json PICTURE.svg --chunks N --lanes L

TRACE.json: Chrome's trace event format (the JSON object form, as Perfetto and chrome://tracing
load it): every event has the fields its phase requires, each lane is named, and there is one
complete event per chunk. PICTURE.svg: well-formed XML whose root is an <svg> element, with one
bar per chunk (its tooltip, a <title>, names its call). Exits non-zero with a message on the first violation.
"""
import argparse
import json
import sys
import xml.dom.minidom

# The fields the trace event format requires of each phase used (and of every event: ph, pid).
REQUIRED = {
    "X": ("name", "ph", "ts", "dur", "pid", "tid"),
    "i": ("name", "ph", "ts", "pid", "tid", "s"),
    "M": ("name", "ph", "pid", "args"),
}


def fail(message):
    print("check_timeline_files: " + message, file=sys.stderr)
    sys.exit(1)


def check_trace(path, chunks, lanes):
    with open(path, encoding="utf-8") as file:
        trace = json.load(file)
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        fail(f"{path}: not a trace object with a traceEvents list")
    complete = 0
    named_lanes = set()
    for event in trace["traceEvents"]:
        phase = event.get("ph")
        if phase not in REQUIRED:
            fail(f"{path}: event with unexpected phase {phase!r}: {event}")
        missing = [field for field in REQUIRED[phase] if field not in event]
        if missing:
            fail(f"{path}: {phase} event lacks {missing}: {event}")
        if phase in ("X", "i") and not isinstance(event["ts"], (int, float)):
            fail(f"{path}: ts is not a number: {event}")
        if phase == "X":
            if not isinstance(event["dur"], (int, float)) or event["dur"] < 0:
                fail(f"{path}: dur is not a non-negative number: {event}")
            complete += 1
        if phase == "i" and event["s"] not in ("g", "p", "t"):
            fail(f"{path}: instant event with scope {event['s']!r}")
        if phase == "M" and event["name"] == "thread_name":
            named_lanes.add(event["tid"])
    if complete != chunks:
        fail(f"{path}: {complete} complete events, expected one per chunk: {chunks}")
    if len(named_lanes) != lanes:
        fail(f"{path}: {len(named_lanes)} named lanes, expected {lanes}")


def check_picture(path, chunks):
    document = xml.dom.minidom.parse(path)
    root = document.documentElement
    if root.tagName != "svg":
        fail(f"{path}: the root element is <{root.tagName}>, not <svg>")
    bars = [title for title in document.getElementsByTagName("title")
            if title.firstChild is not None and title.firstChild.data.startswith("call ")]
    if len(bars) != chunks:
        fail(f"{path}: {len(bars)} bars with a title, expected one per chunk: {chunks}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("picture")
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--lanes", type=int, required=True)
    arguments = parser.parse_args()
    check_trace(arguments.trace, arguments.chunks, arguments.lanes)
    check_picture(arguments.picture, arguments.chunks)
    print(f"timeline files valid: {arguments.chunks} chunks on {arguments.lanes} lanes")


main()
