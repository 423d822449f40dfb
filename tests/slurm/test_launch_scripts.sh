#!/usr/bin/env bash
# test_launch_scripts.sh - the launch scripts without a cluster: shell syntax, the mpirun wrapper's command
# (rank count from nvidia-smi / CUDA_VISIBLE_DEVICES / --np, root and oversubscribe flags, NCCL_NVLS_ENABLE,
# arguments passed through unchanged, --np as the total with --hostfile), and the two sbatch scripts' common
# bodies kept identical, with their site placeholders (account, partition, module load) and --cpus-per-task.
# Usage: tests/slurm/test_launch_scripts.sh SOURCE_DIR
set -uo pipefail
SRC=$(realpath "${1:-$(dirname "$0")/../..}")
WRAP=$SRC/launch/qwenbench-mpirun
failures=0
fail() { echo "FAIL test_launch_scripts: $*" >&2; failures=$((failures + 1)); }

for f in "$WRAP" "$SRC"/launch/slurm/*.sbatch "$SRC"/tests/slurm/*.sh; do
    bash -n "$f" || fail "$f: bash syntax error"
done
body() { sed -n '/^# ---- common body/,$p' "$1"; }
one=$SRC/launch/slurm/qwenbench-1node.sbatch multi=$SRC/launch/slurm/qwenbench-multinode.sbatch
[[ -n $(body "$one") ]] || fail "$one: no '# ---- common body' marker"
diff <(body "$one") <(body "$multi") >/dev/null || fail "the common bodies of $one and $multi differ"
for f in "$one" "$multi"; do
    for directive in '--signal=B:USR1@300' '--gpu-bind=none' '--ntasks-per-node=' '--gpus-per-node=' \
                     '--cpus-per-task='; do
        grep -q "^#SBATCH $directive" "$f" || fail "$f: no '#SBATCH $directive'"
    done
    # site settings: placeholders Slurm ignores (##SBATCH) until a site fills them in
    for placeholder in '##SBATCH --account=' '##SBATCH --partition='; do
        grep -q "^$placeholder" "$f" || fail "$f: no '$placeholder' placeholder"
    done
    grep -qE '^# *module load ' "$f" || fail "$f: no commented 'module load' placeholder"
    # Slurm reads #SBATCH lines only up to the first command: every directive must precede it
    first_cmd=$(grep -nvE '^(#|[[:space:]]*$)' "$f" | head -1 | cut -d: -f1)
    last_directive=$(grep -n '^#SBATCH' "$f" | tail -1 | cut -d: -f1)
    (( last_directive < first_cmd )) || fail "$f: an #SBATCH line after the first command (line $first_cmd)"
done

# dry_run ARGS... -> the printed command line
# shellcheck disable=SC2069 # stderr (the printed command) captured, stdout dropped
dry_run() { "$WRAP" --dry-run --bin /bin/true "$@" 2>&1 >/dev/null; }
expect() { # description, command line, pattern (grep -E), [absent]
    if [[ ${4:-} == absent ]]; then
        grep -qE -- "$3" <<<"$2" && fail "$1: '$3' should not be in: $2"
    else
        grep -qE -- "$3" <<<"$2" || fail "$1: '$3' not in: $2"
    fi
    return 0
}

fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
cat >"$fake/nvidia-smi" <<'EOS'
#!/bin/sh
for i in 0 1 2 3; do echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: GPU-fake-$i)"; done
EOS
chmod +x "$fake/nvidia-smi"

cores=$(nproc)
line=$(PATH=$fake:$PATH dry_run --sweep s.json --out "o u t.h5")
expect "4 GPUs from nvidia-smi" "$line" '-np 4 '
expect "NVLS off" "$line" '^\+ NCCL_NVLS_ENABLE=0 .*-x NCCL_NVLS_ENABLE'
expect "arguments passed through" "$line" '/bin/true --sweep s\.json --out o\\ u\\ t\.h5$'
expect "bind" "$line" '--bind-to none'
if [[ $EUID -eq 0 ]]; then expect "root" "$line" '--allow-run-as-root'
else expect "not root" "$line" '--allow-run-as-root' absent; fi
if (( 4 > cores )); then expect "4 ranks > $cores cores" "$line" '--oversubscribe'
else expect "4 ranks <= $cores cores" "$line" '--oversubscribe' absent; fi

line=$(PATH=$fake:$PATH CUDA_VISIBLE_DEVICES=2,3 dry_run)
expect "CUDA_VISIBLE_DEVICES limits the ranks" "$line" '-np 2 .*-x CUDA_VISIBLE_DEVICES'
line=$(PATH=$fake:$PATH dry_run --np 1 --bind numa -- --np 7)
expect "--np wins over nvidia-smi" "$line" '-np 1 --bind-to numa'
expect "-- ends the wrapper's options" "$line" '/bin/true --np 7$'
expect "1 rank never oversubscribes" "$line" '--oversubscribe' absent
line=$(PATH=/usr/bin:/bin NCCL_NVLS_ENABLE=1 NCCL_DEBUG=WARN dry_run)
expect "no nvidia-smi: 1 rank" "$line" '-np 1 '
expect "a user's NCCL_NVLS_ENABLE is kept" "$line" '^\+ NCCL_NVLS_ENABLE=1 '
expect "NCCL_* exported" "$line" '-x NCCL_DEBUG'
line=$(dry_run --np $((cores + 1)))
expect "more ranks than cores" "$line" '--oversubscribe'

# --hostfile: --np is the total (as mpirun -np), spread evenly over the file's hosts
hostfile=$fake/hosts
printf '# two nodes\nnode-a slots=4\n\n  node-b slots=4 # second\nnode-a\n' >"$hostfile"
line=$(dry_run --hostfile "$hostfile" --np 8 --sweep s.json)
expect "--np 8 over 2 hosts" "$line" "-np 8 --bind-to none --hostfile $hostfile --map-by ppr:4:node "
expect "no oversubscribe with a hostfile" "$line" '--oversubscribe' absent
line=$(dry_run --hostfile="$hostfile" --np=2)
expect "--np 2 over 2 hosts: 1 each" "$line" "-np 2 .*--map-by ppr:1:node "
line=$(PATH=$fake:$PATH dry_run --hostfile "$hostfile")
expect "no --np: this node's 4 GPUs x 2 hosts" "$line" "-np 8 .*--map-by ppr:4:node "
msg=$("$WRAP" --dry-run --bin /bin/true --hostfile "$hostfile" --np 3 2>&1 >/dev/null); rc=$?
[[ $rc == 2 ]] || fail "--np 3 over 2 hosts should exit 2, not $rc"
expect "--np not a multiple of the hosts" "$msg" '^qwenbench-mpirun: --np 3: not a multiple of the 2 hosts in .*total'
[[ $(wc -l <<<"$msg") == 1 ]] || fail "--np 3 over 2 hosts: not one line: $msg"
msg=$("$WRAP" --dry-run --bin /bin/true --hostfile "$hostfile" --np 10 2>&1 >/dev/null); rc=$?
[[ $rc == 2 ]] || fail "--np 10 over 2 hosts of 4 slots should exit 2, not $rc"
expect "more ranks per host than its slots" "$msg" 'puts 5 ranks on each, but node-(a|b) has slots=4$'
"$WRAP" --dry-run --bin /bin/true --hostfile "$fake/none" >/dev/null 2>&1; rc=$?
[[ $rc == 2 ]] || fail "a missing hostfile should exit 2, not $rc"
printf '# nothing\n\n' >"$fake/empty-hosts"
msg=$("$WRAP" --dry-run --bin /bin/true --hostfile "$fake/empty-hosts" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 ]] || fail "a hostfile without hosts should exit 2, not $rc"
expect "a hostfile without hosts" "$msg" 'names no host'
"$WRAP" --help | grep -q 'TOTAL number of ranks' || fail "--help does not say that --np is the total"

"$WRAP" --np 0 --dry-run >/dev/null 2>&1; [[ $? == 2 ]] || fail "--np 0 should exit 2"
"$WRAP" --bind sideways --dry-run >/dev/null 2>&1; [[ $? == 2 ]] || fail "--bind sideways should exit 2"
"$WRAP" --help | grep -q -- '--np N' || fail "--help does not list --np"

if (( failures )); then echo "test_launch_scripts: $failures failure(s)" >&2; exit 1; fi
echo "PASS test_launch_scripts"
