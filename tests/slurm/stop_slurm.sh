#!/usr/bin/env bash
# stop_slurm.sh - stop the daemons tests/slurm/start_slurm.sh started, by the pid files in its state directory
# (slurmd, slurmctld, and munged only when start_slurm.sh started it). Never kills by name.
# Usage: tests/slurm/stop_slurm.sh      (QB_SLURM_DIR as for start_slurm.sh, default /tmp/qb-slurm)
set -u
DIR=${QB_SLURM_DIR:-/tmp/qb-slurm}

stop_pidfile() {
    local f=$1 pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$f"
}

stop_pidfile "$DIR/slurmd.pid"
stop_pidfile "$DIR/slurmctld.pid"
stop_pidfile "$DIR/munged.pid"
echo "stop_slurm.sh: stopped the daemons of $DIR" >&2
