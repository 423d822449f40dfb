#!/usr/bin/env bash
# start_slurm.sh - bring up a real one-node Slurm cluster on this machine, for the launch tests and CI.
#
# Installs Debian's slurm-wlm and munge when missing (apt-get; needs root), writes a one-node slurm.conf into
# a state directory of its own (nothing under /etc/slurm is touched: every client must see SLURM_CONF),
# starts munged, slurmctld and slurmd directly (no systemd), and waits until sinfo shows the node idle.
# Idempotent: when the cluster of this state directory already answers, it only prints the environment.
#
# Usage:  tests/slurm/start_slurm.sh            then:  source /tmp/qb-slurm/env.sh   (or eval its stdout)
#         tests/slurm/stop_slurm.sh             stops the daemons this script started (by their pid files)
# Environment:
#   QB_SLURM_DIR      state directory (default /tmp/qb-slurm): slurm.conf, env.sh, logs, spool, pid files
#   QB_SLURM_NO_INSTALL=1   never run apt-get (fail instead when slurm or munge is missing)
#   QB_SLURM_WAIT_S   how long to wait for the node to become idle (default 60)
#   QB_SLURM_FAKE_GPUS  GPUs the node declares as GRES (default 2; empty files stand for the devices), so the
#                     launch scripts' --gpus-per-node works unmodified on a machine without GPUs
# Exit status: 0 up; 1 could not be started (the reason is the last line on stderr).
# Stdout: the lines of env.sh (export SLURM_CONF=...), so `eval "$(start_slurm.sh)"` works.
set -euo pipefail

DIR=${QB_SLURM_DIR:-/tmp/qb-slurm}
WAIT_S=${QB_SLURM_WAIT_S:-60}
CONF=$DIR/slurm.conf
NODE=localhost

die() { echo "start_slurm.sh: $*" >&2; exit 1; }
log() { echo "start_slurm.sh: $*" >&2; }

[[ $EUID -eq 0 ]] || die "must run as root (it installs packages and starts munged/slurmctld/slurmd as root)"

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
        && command -v sbatch >/dev/null 2>&1 || missing+=(slurm-wlm)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ ${QB_SLURM_NO_INSTALL:-0} == 1 ]] && die "missing ${missing[*]} and QB_SLURM_NO_INSTALL=1"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} (apt-get)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            >"$DIR/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$DIR/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            >>"$DIR/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed (see $DIR/apt.log)"
    fi
}

write_env() {
    cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$CONF
EOF
    cat "$DIR/env.sh"
}

cluster_up() {
    [[ -f $CONF ]] || return 1
    local state
    state=$(SLURM_CONF=$CONF timeout 10 sinfo -h -n "$NODE" -o %t 2>/dev/null) || return 1
    [[ $state == idle* || $state == mix* || $state == alloc* ]]
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then mungekey --create --force
        else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    fi
    chmod 0400 /etc/munge/munge.key
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0 # a munged already answers on the default socket (ours or the system's)
    fi
    # Root runs it here (--force): the key and directories need not belong to a munge user.
    munged --force --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" 9>&- </dev/null >>"$DIR/munged.out" 2>&1 \
        || die "munged failed to start (see $DIR/munged.log)"
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "munged started but munge -n | unmunge fails (see $DIR/munged.log)"
}

# write_conf FILE: the slurm.conf for this machine into FILE (gres.conf and plugstack.conf beside it)
write_conf() {
    local target=$1 cpus mem sockets cores threads line mpi=none gpus=${QB_SLURM_FAKE_GPUS:-2}
    line=$(slurmd -C | head -1) || die "slurmd -C failed"
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$line")
    sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$line")
    cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$line")
    threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$line")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
    [[ -n $cpus && -n $mem ]] || die "cannot read CPUs/RealMemory from slurmd -C: $line"
    # pmix when Slurm has the plugin (Debian ships mpi_pmix); the launch scripts ask for it explicitly anyway.
    if ls /usr/lib/*/slurm-wlm/mpi_pmix*.so /usr/lib/slurm/mpi_pmix*.so >/dev/null 2>&1; then mpi=pmix; fi
    mkdir -p "$DIR/spool/ctld" "$DIR/spool/d" "$DIR/log"
    cat >"$target" <<EOF
# Written by qwenbench tests/slurm/start_slurm.sh: a one-node test cluster on this machine.
ClusterName=qbtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s)
AuthInfo=cred_expire=${QB_SLURM_CRED_EXPIRE:-15}
CredType=cred/munge
SlurmctldPort=${QB_SLURMCTLD_PORT:-6817}
SlurmdPort=${QB_SLURMD_PORT:-6818}
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=$mpi
ReturnToService=2
KillWait=10
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 Gres=gpu:$gpus CPUs=$cpus Boards=1 SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    # The fake GPUs: Slurm drops a GPU without a File, so each gets an empty regular file as its "device".
    mkdir -p "$DIR/fakegpu"
    for ((g = 0; g < gpus; g++)); do : >"$DIR/fakegpu/gpu$g"; done
    echo "NodeName=$NODE Name=gpu File=$DIR/fakegpu/gpu[0-$((gpus - 1))]" >"$DIR/gres.conf"
    # plugstack.conf: Debian's default is in /etc/slurm; point at an empty one so no site plugin interferes.
    : >"$DIR/plugstack.conf"
    echo "PlugStackConfig=$DIR/plugstack.conf" >>"$target"
}

# daemon_failed NAME: the reason, with the last lines of its output and log, then exit 1
daemon_failed() {
    tail -n 5 "$DIR/log/$1.out" "$DIR/log/$1.log" >&2 2>/dev/null || true
    die "$1 failed to start (see $DIR/log/$1.out and $DIR/log/$1.log)"
}

start_daemons() {
    export SLURM_CONF=$CONF
    if ! pid_alive "$DIR/slurmctld.pid"; then
        # -i: ignore state from an earlier run of this directory that no longer matches.
        slurmctld -i 9>&- </dev/null >>"$DIR/log/slurmctld.out" 2>&1 || daemon_failed slurmctld
    fi
    if ! pid_alive "$DIR/slurmd.pid"; then
        slurmd -N "$NODE" 9>&- </dev/null >>"$DIR/log/slurmd.out" 2>&1 || daemon_failed slurmd
    fi
}

wait_idle() {
    local state="" t0=$SECONDS
    while (( SECONDS - t0 < WAIT_S )); do
        state=$(SLURM_CONF=$CONF timeout 10 sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
        case $state in
            idle*) log "node $NODE idle after $((SECONDS - t0)) s"; return 0 ;;
            inval*) break ;; # the configuration does not match the node: waiting will not help
            down*|drain*|fail*) SLURM_CONF=$CONF scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    log "last lines of $DIR/log/slurmctld.log:"; tail -5 "$DIR/log/slurmctld.log" >&2 2>/dev/null || true
    log "last lines of $DIR/log/slurmd.log:"; tail -5 "$DIR/log/slurmd.log" >&2 2>/dev/null || true
    die "node $NODE not idle after ${WAIT_S} s (sinfo state: '${state:-no answer}')"
}

mkdir -p "$DIR"
# One bring-up at a time (tests may run concurrently and share the cluster).
exec 9>"$DIR/start.lock"
flock -w 120 9 || die "another start_slurm.sh holds $DIR/start.lock for over 120 s"
if cluster_up; then
    write_conf "$CONF.new"
    if cmp -s "$CONF" "$CONF.new"; then
        rm -f "$CONF.new"
        log "cluster of $DIR already up"
        write_env
        exit 0
    fi
    log "slurm.conf changed: restarting the daemons of $DIR"
    "$(dirname "${BASH_SOURCE[0]}")/stop_slurm.sh"
fi
install_packages
start_munge
write_conf "$CONF.new"
mv "$CONF.new" "$CONF"
start_daemons
wait_idle
write_env
