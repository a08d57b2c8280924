#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A one-node Slurm cluster for the tests, on this machine, in one directory: its own munged
# (private key and socket), slurmctld and slurmd, with their own slurm.conf, ports, state, spool
# and logs. Nothing outside DIR and LOGDIR is written and no system service is touched. Run as root: slurmd
# starts each job as its user.
#
#   slurm_cluster.sh up DIR [LOGDIR]
#                                 start the daemons, wait until the node is idle; their logs
#                                 and the batch jobs' output go to LOGDIR (default DIR/log)
#   slurm_cluster.sh batch DIR JOBSCRIPT [ARGS...]
#                                 sbatch --wait the job script, then print its output file
#   slurm_cluster.sh down DIR     cancel the jobs, stop the daemons, check that none is left
#
# Clients find the cluster through SLURM_CONF=DIR/slurm.conf.
set -euo pipefail

die() {
    echo "slurm_cluster: $*" >&2
    exit 1
}

[ $# -ge 2 ] || die "usage: $0 up|batch|down DIR [...]"
command=$1
dir=$(realpath -m "$2")
shift 2
logdir=$dir/log
[ ! -s "$dir/logdir" ] || logdir=$(cat "$dir/logdir")
conf=$dir/slurm.conf
# For the clients below, and inherited by the daemons and so by their step daemons and jobs,
# which is how down finds those of them that outlived the cluster.
export SLURM_CONF=$conf

# A daemon of this cluster: the pid in its pid file, alive (a zombie has exited already) and
# started with a command line naming DIR, so that a reused pid is never taken for it.
daemon_pid() { # pidfile
    local pid state
    pid=$(cat "$1" 2>/dev/null) || return 1 # munged removes its pid file as it exits
    [ -n "$pid" ] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/" || return 1
    echo "$pid"
}

# Waits up to $2 seconds for the daemon of pid file $1 to be gone.
wait_gone() { # pidfile seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        daemon_pid "$1" >/dev/null || return 0
        sleep 0.1
    done
    return 1
}

stop_daemon() { # pidfile
    local pid
    pid=$(daemon_pid "$1") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$1" 10 && return 0
    echo "slurm_cluster: pid $pid ($1) ignored SIGTERM for 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$1" 5
}

port_in_use() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

down() {
    [ -d "$dir" ] || return 0
    if daemon_pid "$dir/slurmctld.pid" >/dev/null; then
        # Jobs first: their slurmstepd outlive a stopped slurmd.
        local i jobs
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
        scontrol shutdown >/dev/null 2>&1 || true
    fi
    stop_daemon "$dir/slurmd.pid"
    stop_daemon "$dir/slurmctld.pid"
    stop_daemon "$dir/munge/munged.pid"
    local left=()
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        daemon_pid "$pidfile" >/dev/null && left+=("$pidfile")
    done
    [ ${#left[@]} -eq 0 ] || die "still running after SIGKILL: ${left[*]}"
    # Step daemons and job processes of this cluster that outlived it (a run interrupted before
    # its jobs were cancelled): they carry this SLURM_CONF, and the tasks a job id.
    local pid environ strays=()
    for environ in $(grep -lzxF "SLURM_CONF=$conf" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${environ#/proc/}
        pid=${pid%/environ}
        [ "$pid" != $$ ] || continue
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmstepd ] ||
            grep -qz '^SLURM_JOB_ID=' "$environ" 2>/dev/null; then
            strays+=("$pid")
        fi
    done
    if [ ${#strays[@]} -gt 0 ]; then
        echo "slurm_cluster: SIGKILL to job processes left behind: ${strays[*]}" >&2
        kill -KILL "${strays[@]}" 2>/dev/null || true
    fi
    if [ -s "$dir/ports" ]; then
        for port in $(cat "$dir/ports"); do
            ! port_in_use "$port" || die "port $port still accepts connections"
        done
    fi
    # The logs stay for a look after a failure; the key, sockets, state and spool go, and DIR
    # itself unless it holds the logs.
    rm -rf "$dir"/{munge,state,spool,tmp} "$dir/slurm.conf" "$dir"/*.pid "$dir/ports" \
        "$dir/logdir"
    rmdir "$dir" 2>/dev/null || true
}

show_logs() {
    local log
    for log in "$dir/munge/munged.log" "$logdir"/*.log; do
        [ -f "$log" ] || continue
        echo "---- $log (last 20 lines)" >&2
        tail -n 20 "$log" >&2
    done
}

up() {
    down # what a previous run interrupted before its cleanup left running
    rm -rf "$dir"
    # Unix socket paths (munged's, slurmd's and PMIx's for each job step) must fit in 108 bytes.
    [ ${#dir} -le 56 ] || die "$dir: over 56 characters, too long for the daemons' sockets"
    logdir=$(realpath -m "${1:-$dir/log}")
    mkdir -p "$dir"/{munge,state,spool,tmp} "$logdir"
    echo "$logdir" >"$dir/logdir"
    rm -f "$logdir"/*.log "$logdir"/batch-*.out # the daemons append to their logs
    # munged wants its key readable by its user only and the socket's directory searchable by
    # all (clients connect as any user).
    chmod 711 "$dir/munge"
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    # Two free ports side by side, away from Slurm's defaults (6817, 6818), so that a system
    # Slurm on the same machine is no obstacle.
    local port=46817
    while port_in_use "$port" || port_in_use $((port + 1)); do
        port=$((port + 2))
        [ "$port" -lt 46917 ] || die "no two free ports in 46817-46916"
    done
    echo "$port $((port + 1))" >"$dir/ports"
    local host
    host=$(hostname -s)
    cat >"$conf" <<EOF
# Written by slurm_cluster.sh: a one-node cluster in $dir
ClusterName=mproc
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
# Where the PMIx plugin makes its directory for each job step's ranks (else /tmp).
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$logdir/slurmctld.log
SlurmdLogFile=$logdir/slurmd.log
# No cgroups (a container may not delegate them): processes are tracked by their parentage.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
# No mail is sent; slurmctld only checks that the program exists.
MailProg=/bin/true
ReturnToService=2
# sbatch --wait polls every 2 s while this is at most 4 s, and every 8 s past 2 s otherwise; a
# finished job's record then stays 4 s or more, so a poll still sees it.
MinJobAge=4
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=10 State=UP OverSubscribe=YES
EOF
    trap 'show_logs; down' ERR
    munged --force "--socket=$dir/munge/munge.socket" "--key-file=$dir/munge/munge.key" \
        "--pid-file=$dir/munge/munged.pid" "--log-file=$dir/munge/munged.log" \
        "--seed-file=$dir/munge/munged.seed"
    slurmctld -f "$conf"
    slurmd -f "$conf"
    local i state=""
    for ((i = 0; i < 300; i++)); do
        state=$(sinfo -h -o %t 2>/dev/null || true)
        [ "$state" = idle ] && break
        sleep 0.1
    done
    if [ "$state" != idle ]; then
        false # the ERR trap shows the logs and stops the daemons
    fi
    trap - ERR
    echo "slurm_cluster: node $host idle after $((i / 10)).$((i % 10)) s" \
        "(ports $port, $((port + 1)); SLURM_CONF=$conf)"
}

batch() { # jobscript args...
    [ $# -ge 1 ] || die "batch: no job script"
    local out=$logdir/batch-$(basename "$1").out
    rm -f "$out"
    local status=0
    sbatch --wait --quiet "--output=$out" "$@" || status=$?
    [ -f "$out" ] && cat "$out"
    [ $status -eq 0 ] || die "sbatch --wait $*: exit status $status"
}

case $command in
up) up "$@" ;;
batch) batch "$@" ;;
down) down && echo "slurm_cluster: stopped; no daemon left" ;;
*) die "unknown command $command (up, batch, down)" ;;
esac
