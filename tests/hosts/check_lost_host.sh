#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A lost host: runs an MPI job (host_death_main) across the test hosts of DIR, loses the last
# host once the job's map runs, and checks that the job then ends within LIMIT seconds, with a
# non-zero exit status and a message naming the lost host, and that no process of the job is
# left on any host. HOW the host is lost:
#   kill  every process of the host is killed (the host's kernel closes its connections)
#   cut   the host's link to the bridge goes down (a crashed or unplugged node: nothing closes
#         the connections, only TCP keepalive finds out); it is brought back up at exit
#   freeze  every process of the host is stopped (SIGSTOP: a frozen node, whose kernel still
#         answers keepalive; only rank 0's watch for silent ranks finds out, after
#         MPROC_MPI_RANK_TIMEOUT s). Rank 0 must end within LIMIT seconds, naming the host; mpirun
#         then waits for the frozen host's daemon, as it must (its processes could resume): the
#         test kills them, and mpirun must end at once
#
#   check_lost_host.sh TEST_HOSTS_SCRIPT DIR HOW LIMIT -- MPIRUN ARGS...
set -uo pipefail

hosts=$1 dir=$2 how=$3 limit=$4
shift 4
[ "${1:-}" = "--" ] && shift
prefix="" count=""
# shellcheck source=/dev/null
. "$dir/state" # sets prefix and count
lost="${prefix}${count}"

out=$(mktemp)
job=""
cleanup() {
    if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then
        kill -KILL "$job" 2>/dev/null
    fi
    rm -f "$out"
    if [ "$how" = cut ]; then
        "$hosts" reconnect "$dir" "$count"
    fi
    if [ "$how" = freeze ]; then
        "$hosts" kill "$dir" "$count" # (SIGKILL ends stopped processes too)
    fi
}
trap cleanup EXIT
fail() {
    echo "--- the job's output:"
    cat "$out"
    "$hosts" show "$dir"
    echo "FAILED: $*"
    exit 1
}

"$hosts" run "$dir" -- "$@" >"$out" 2>&1 &
job=$! # mpirun's pid: each step of `run` execs the next

# The map has started, and the tasks run on every host.
for _ in $(seq 1 600); do
    grep -q "map started" "$out" && break
    kill -0 "$job" 2>/dev/null || fail "the job ended before its map started"
    sleep 0.1
done
grep -q "map started" "$out" || fail "the map did not start within 60 s"
sleep 2
kill -0 "$job" 2>/dev/null || fail "the job ended before the host was killed"

case "$how" in
kill)
    echo "killing every process of host $lost: $(ip netns pids "$lost" | tr '\n' ' ')"
    killed_at=$(date +%s.%N)
    "$hosts" kill "$dir" "$count" || fail "could not kill every process of $lost"
    ;;
cut)
    echo "cutting host $lost off the network"
    killed_at=$(date +%s.%N)
    "$hosts" cut "$dir" "$count" || fail "could not cut $lost off"
    ;;
freeze)
    echo "stopping every process of host $lost: $(ip netns pids "$lost" | tr '\n' ' ')"
    killed_at=$(date +%s.%N)
    ip netns pids "$lost" | xargs -r kill -STOP || fail "could not stop every process of $lost"
    ;;
*)
    fail "HOW is kill, cut or freeze, not $how"
    ;;
esac

# The job ends within the limit; with a frozen host, rank 0 does (mpirun waits for the host).
rank0=$(sed -n 's/^rank 0 on .* (pid \([0-9]*\)): map started$/\1/p' "$out")
ending=$job
[ "$how" = freeze ] && ending=$rank0
deadline=$(($(date +%s) + limit))
while kill -0 "$ending" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.1
done
if kill -0 "$ending" 2>/dev/null; then
    fail "the job (pid $ending) still ran $limit s after host $lost was lost ($how)"
fi
if [ "$how" = freeze ]; then
    took=$(awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "rank 0 ended $took s after host $lost froze; killing the frozen host's processes"
    "$hosts" kill "$dir" "$count" || fail "could not kill the processes of $lost"
    for _ in $(seq 1 100); do
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$job" 2>/dev/null && fail "mpirun still ran 10 s after the frozen host was killed"
fi
wait "$job"
status=$?
job=""
[ "$how" = freeze ] || took=$(awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "--- the job's output:"
cat "$out"
echo "--- the job ended with status $status, $took s after the host was lost ($how)"
[ "$status" -ne 0 ] || fail "the job exited with status 0 after losing a host"
if grep -q "the map ended" "$out"; then
    fail "rank 0 ended its map without the lost host's results"
fi
grep -q "$lost" "$out" || fail "no message names the lost host $lost"

# Nothing of the job is left on any host (the processes that mpirun kills may take a moment).
for _ in $(seq 1 100); do
    left=$("$hosts" pids "$dir" | grep -v ':$' || true)
    [ -z "$left" ] && break
    sleep 0.1
done
[ -z "$left" ] || fail "processes left on the hosts 10 s after the job ended: $left"
echo "host lost ($how): the job ended in $took s with status $status, named $lost, and left no process"
