#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Test hosts on one machine: N network namespaces, each with its own loopback, one veth interface
# on a private subnet and its own host name, joined by a bridge that lives in a namespace of its
# own. Nothing is added to the machine's own network namespace, so the subnet cannot clash with
# the machine's networks nor with another set of test hosts, and traffic between the hosts
# reaches only their addresses. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
#
#   test_hosts.sh up DIR N          makes hosts 1..N; DIR receives the state, a hostfile and an
#                                   rsh agent for mpirun (an existing DIR is taken down first)
#   test_hosts.sh down DIR          kills every process on those hosts and removes all they made
#   test_hosts.sh run DIR -- CMD..  runs CMD on host 1 (mpirun runs there)
#   test_hosts.sh kill DIR I        kills every process on host I (SIGKILL) until none is left
#   test_hosts.sh pids DIR          lists the processes still running on each host
#   test_hosts.sh show DIR          what each host runs (state, wait channel), its neighbour
#                                   entries and TCP connections: where a job that hangs waits
#   test_hosts.sh cut DIR I         takes host I's link to the bridge down (a host unplugged)
#   test_hosts.sh reconnect DIR I   brings it back, forgotten as unreachable by every host
#   test_hosts.sh agent DIR HOST CMD...  the rsh agent: runs CMD (a shell command line, as ssh
#                                   would) on HOST, a host name or address of DIR's hostfile
#
# Host I is namespace <prefix>I with address 10.77.0.I on interface eth0, and host name
# <prefix>I: the prefix is mproc-h<pid>- (the pid of `up`), so that sets made in parallel never
# share a name. Each host's /etc/hosts (ip netns exec's per-namespace files in /etc/netns) names
# all hosts, and each command runs in a UTS namespace of its own that carries its host's name.
set -euo pipefail

subnet_prefix=10.77.0
self=$(readlink -f "$0")

usage() {
    sed -n '3,24p' "$self" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The state of DIR: prefix, count.
load() {
    local dir=$1
    [ -f "$dir/state" ] || {
        echo "test_hosts: no test hosts in $dir (run: test_hosts.sh up $dir N)" >&2
        exit 1
    }
    # shellcheck source=/dev/null
    . "$dir/state"
}

# Kills every process whose network namespace is $1, until none is left (a process may fork
# while the others are killed).
kill_namespace() {
    local ns=$1 tries=0 pids
    while pids=$(ip netns pids "$ns" 2>/dev/null) && [ -n "$pids" ]; do
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ]; then
            echo "test_hosts: processes left in $ns: $pids" >&2
            return 1
        fi
        sleep 0.05
    done
}

down() {
    local dir=$1 status=0 i
    [ -f "$dir/state" ] || return 0
    load "$dir"
    for i in $(seq 1 "$count"); do
        if ip netns list | grep -qw "${prefix}$i"; then
            kill_namespace "${prefix}$i" || status=1
            ip netns delete "${prefix}$i" || status=1
        fi
        rm -rf "/etc/netns/${prefix}$i"
    done
    if ip netns list | grep -qw "${prefix}br"; then
        kill_namespace "${prefix}br" || status=1
        ip netns delete "${prefix}br" || status=1 # its bridge and veth ends go with it
    fi
    rmdir /etc/netns 2>/dev/null || true # only when empty: another user may keep files there
    rm -f "$dir/state" "$dir/hostfile" "$dir/hosts" "$dir/rsh_agent"
    rmdir "$dir" 2>/dev/null || true
    return $status
}

up() {
    local dir=$1 n=$2 i
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 200 ]; then
        usage
    fi
    down "$dir" # what an interrupted run left
    mkdir -p "$dir"
    prefix="mproc-h$$-"
    count=$n
    printf 'prefix=%s\ncount=%s\n' "$prefix" "$count" >"$dir/state"
    # From here on a failure takes down what was made.
    trap 'down "$dir"' ERR
    : >"$dir/hosts"
    : >"$dir/hostfile"
    for i in $(seq 1 "$n"); do
        printf '%s.%s %s%s\n' "$subnet_prefix" "$i" "$prefix" "$i" >>"$dir/hosts"
        printf '%s%s slots=1\n' "$prefix" "$i" >>"$dir/hostfile"
    done
    ip netns add "${prefix}br"
    ip -n "${prefix}br" link set lo up
    ip -n "${prefix}br" link add br0 type bridge
    ip -n "${prefix}br" link set br0 up
    for i in $(seq 1 "$n"); do
        ip netns add "${prefix}$i"
        ip -n "${prefix}$i" link set lo up
        ip -n "${prefix}br" link add "v$i" type veth peer name eth0 netns "${prefix}$i"
        ip -n "${prefix}br" link set "v$i" master br0 up
        ip -n "${prefix}$i" addr add "$subnet_prefix.$i/24" dev eth0
        ip -n "${prefix}$i" link set eth0 up
        mkdir -p "/etc/netns/${prefix}$i"
        { printf '127.0.0.1 localhost\n'; cat "$dir/hosts"; } >"/etc/netns/${prefix}$i/hosts"
    done
    printf '#!/bin/sh\nexec %q agent %q "$@"\n' "$self" "$(readlink -f "$dir")" >"$dir/rsh_agent"
    chmod +x "$dir/rsh_agent"
    trap - ERR
    echo "test_hosts: $n hosts up (${prefix}1..${prefix}$n, $subnet_prefix.1..$subnet_prefix.$n);" \
        "hostfile $dir/hostfile, rsh agent $dir/rsh_agent"
}

# Runs a command line on host $2 of DIR $1, under its host name.
on_host() {
    local dir=$1 i=$2
    shift 2
    load "$dir"
    # shellcheck disable=SC2016 # the inner shell expands them
    exec ip netns exec "${prefix}$i" unshare --uts sh -c 'hostname "$0" && exec "$@"' \
        "${prefix}$i" "$@"
}

command=${1:-}
[ $# -ge 2 ] || usage
dir=$2
shift 2
case "$command" in
up)
    [ $# -eq 1 ] || usage
    up "$dir" "$1"
    ;;
down)
    down "$dir"
    ;;
run)
    [ "${1:-}" = "--" ] && shift
    [ $# -ge 1 ] || usage
    on_host "$dir" 1 "$@"
    ;;
kill)
    [ $# -eq 1 ] || usage
    load "$dir"
    kill_namespace "${prefix}$1"
    ;;
pids)
    load "$dir"
    for i in $(seq 1 "$count"); do
        printf '%s:%s\n' "${prefix}$i" "$(ip netns pids "${prefix}$i" | sed 's/^/ /' | tr -d '\n')"
    done
    ;;
show)
    load "$dir"
    for i in $(seq 1 "$count"); do
        echo "--- host ${prefix}$i:"
        pids=$(ip netns pids "${prefix}$i" | tr '\n' ',' | sed 's/,$//')
        [ -z "$pids" ] || ps -o pid,stat,wchan:24,etime,args -p "$pids"
        ip -n "${prefix}$i" neigh show
        ip netns exec "${prefix}$i" ss -tnp
    done
    ;;
cut)
    [ $# -eq 1 ] || usage
    load "$dir"
    ip -n "${prefix}br" link set "v$1" down
    ;;
reconnect)
    [ $# -eq 1 ] || usage
    load "$dir"
    ip -n "${prefix}br" link set "v$1" up
    # The hosts that tried to reach each other meanwhile keep a failed neighbour entry, which
    # fails the next connection at once (EHOSTUNREACH: a daemon of the next MPI job on these
    # hosts would give up, and mpirun wait for it for ever).
    for i in $(seq 1 "$count"); do
        ip -n "${prefix}$i" neigh flush all
    done
    ;;
agent)
    # mpirun calls it as it would call ssh: options, the host, then words of one command line.
    while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
    [ $# -ge 2 ] || usage
    host=$1
    shift
    load "$dir"
    i=$(awk -v host="$host" '$1 == host || $2 == host { print NR; exit }' "$dir/hosts")
    if [ -z "$i" ]; then
        echo "test_hosts agent: $host is not one of the test hosts in $dir/hosts" >&2
        exit 255
    fi
    on_host "$dir" "$i" sh -c "$*"
    ;;
*)
    usage
    ;;
esac
