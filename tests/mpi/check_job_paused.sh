#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole job paused and continued (every process of it stopped, as a debugger or a suspended
# session does, then continued) is not taken for a silent rank: runs an MPI job whose long
# tasks run on the worker ranks, stops every process of it for PAUSE seconds (longer than
# MPROC_MPI_RANK_TIMEOUT) once its tasks run, continues them, and checks that the job passes.
#
#   check_job_paused.sh PAUSE -- MPIRUN ARGS...
set -uo pipefail

pause=$1
shift
[ "${1:-}" = "--" ] && shift
out=$(mktemp)
job=""
cleanup() {
    if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then
        # shellcheck disable=SC2046 # one word per pid
        kill -CONT $(tree "$job") 2>/dev/null
        kill -KILL "$job" 2>/dev/null
    fi
    rm -f "$out"
}
trap cleanup EXIT
fail() {
    echo "--- the job's output:"
    cat "$out"
    echo "FAILED: $*"
    exit 1
}
tree() { # a process and all its descendants
    echo "$1"
    for child in $(pgrep -P "$1"); do tree "$child"; done
}

"$@" >"$out" 2>&1 &
job=$!
for _ in $(seq 1 600); do
    grep -q "RUN .*TasksLongerThanTheLimit" "$out" && break
    kill -0 "$job" 2>/dev/null || fail "the job ended before its tasks ran"
    sleep 0.1
done
grep -q "RUN .*TasksLongerThanTheLimit" "$out" || fail "the tasks did not start within 60 s"
sleep 1
pids=$(tree "$job" | tr '\n' ' ')
# mpirun, its 3 ranks and their worker processes at the least: the whole job, not a part of it.
[ "$(wc -w <<<"$pids")" -ge 4 ] || fail "found only these processes of the job: $pids"
echo "stopping the job's processes for $pause s: $pids"
# shellcheck disable=SC2086 # one word per pid
kill -STOP $pids || fail "could not stop the job"
sleep "$pause"
# shellcheck disable=SC2086
kill -CONT $pids
wait "$job"
status=$?
job=""
cat "$out"
[ "$status" -eq 0 ] || fail "the job ended with status $status after it was paused and continued"
grep -q "PASSED.*1 test" "$out" || fail "the test did not pass"
echo "paused for $pause s and continued: the job passed"
