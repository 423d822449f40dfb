#!/usr/bin/env bash
# test_namespace_hosts.sh - several hosts, for real, on one machine: --schedule packed across two "nodes".
#
# The test makes two nodes as network + UTS namespaces (ip netns + unshare --uts): host names qb-node-a and
# qb-node-b, addresses 10.233.X.1 and .2 on a veth pair, an /etc/hosts of their own (/etc/netns/NS/hosts, which
# `ip netns exec` mounts). mpirun starts in qb-node-a and reaches qb-node-b through its rsh agent, a script that
# runs the command in that node's namespaces; ranks talk over TCP between the nodes and shared memory inside one.
# So Open MPI sees two hosts, and the host grouping, per-host TP groups, dealing across hosts and rank 0's
# collection run as on a cluster.
#  1. --tp 2, 2 ranks per node: two groups of 2, one per node; every cell VALID with the tokens of a one-host
#     serial run; the file names both hosts; cells ran on both.
#  2. --tp 4: no node has 4 ranks, so the one group spans both nodes; VALID, the tokens of the serial run.
#  3. --tp 1 with every process of qb-node-b killed mid-sweep: the job ends (non-zero) with the cells received
#     kept (all VALID); --resume across both nodes completes the file, every cell once.
#
# Usage: tests/schedule/test_namespace_hosts.sh QWENBENCH QWENBENCH_TESTHOOKS [SOURCE_DIR]   (ctest: schedule.cmake)
# Exit: 0 pass; 1 fail; 77 skip - not root, or namespaces / veth links not permitted here.
set -uo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 QWENBENCH QWENBENCH_TESTHOOKS [SOURCE_DIR]" >&2; exit 2; }
BIN=$(realpath "$1")
HOOKS=$(realpath "$2")
SRC=$(realpath "${3:-$(dirname "$0")/../..}")
PY=/usr/bin/python3
FIX=$SRC/tests/fixtures
MODELS="qwen2.5-tiny,$FIX/gqa_untied,$FIX/sharded"
COMMON=(--backend cpu --threads 1 --generate-length 6 --repetitions 1 --warmup 1)
SWEEP=("${COMMON[@]}" --model "$MODELS")
LENGTHS=(--context-lengths 1,8,16)
TAG=$$
NS_A=qbhA$TAG NS_B=qbhB$TAG
NET=10.233.$((TAG % 200 + 20))
W="" made_a=0 made_b=0

skip() { echo "SKIP test_namespace_hosts: $*"; exit 77; }
fail() { echo "FAIL test_namespace_hosts: $*" >&2; [[ -n $W && -f $W/log ]] && tail -30 "$W/log" >&2; exit 1; }
cleanup() {
    # only what this test made: its namespaces (and the processes in them), their hosts files, its directory
    for ns in $NS_A $NS_B; do
        if ip netns list 2>/dev/null | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        fi
        rm -rf "/etc/netns/$ns"
    done
    [[ -n $W ]] && rm -rf "$W"
    return 0
}
trap cleanup EXIT

[[ $EUID -eq 0 ]] || skip "needs root to make network namespaces"
for tool in ip unshare mpirun; do command -v $tool >/dev/null || skip "$tool not found"; done
"$PY" -c 'import h5py' 2>/dev/null || skip "$PY cannot import h5py"
unshare --net --uts true 2>/dev/null || skip "unshare --net --uts is not permitted here"
ip netns add "$NS_A" 2>/dev/null || skip "ip netns add is not permitted here"
made_a=1
ip netns add "$NS_B" 2>/dev/null || skip "ip netns add is not permitted here"
made_b=1
ip link add "qbha$TAG" type veth peer name "qbhb$TAG" 2>/dev/null || skip "veth links are not permitted here"
ip link set "qbha$TAG" netns "$NS_A" && ip link set "qbhb$TAG" netns "$NS_B" || fail "moving the veth ends"
ip -n "$NS_A" addr add "$NET.1/24" dev "qbha$TAG" && ip -n "$NS_B" addr add "$NET.2/24" dev "qbhb$TAG" || fail "addresses"
for ns in $NS_A $NS_B; do ip -n "$ns" link set lo up || fail "lo up"; done
ip -n "$NS_A" link set "qbha$TAG" up && ip -n "$NS_B" link set "qbhb$TAG" up || fail "veth up"
for ns in $NS_A $NS_B; do
    mkdir -p "/etc/netns/$ns" || fail "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s.1 qb-node-a\n%s.2 qb-node-b\n' "$NET" "$NET" >"/etc/netns/$ns/hosts"
done

W=$(mktemp -d /tmp/qb-nshosts.XXXXXX)
chmod 755 "$W"
# mpirun's rsh agent: "agent HOST COMMAND..." runs COMMAND (shell words, as ssh would) in HOST's namespaces.
cat >"$W/rsh-agent" <<EOF
#!/bin/bash
host=\$1; shift
case \$host in qb-node-a) ns=$NS_A ;; qb-node-b) ns=$NS_B ;; *) echo "rsh-agent: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec "\$ns" unshare --uts /bin/sh -c 'hostname "\$1"; shift; eval "\$*"' sh "\$host" "\$@"
EOF
chmod +x "$W/rsh-agent"

# on_nodes BINARY ARGS...: mpirun in qb-node-a (at most 300 s), 4 ranks: 0-1 there and 2-3 on qb-node-b
on_nodes() {
    local exports=(-x PATH)
    for var in LD_LIBRARY_PATH QWENBENCH_TEST_CELL_DELAY; do [[ -n ${!var+x} ]] && exports+=(-x "$var"); done
    timeout 300 ip netns exec "$NS_A" unshare --uts /bin/sh -c 'hostname qb-node-a; exec "$@"' sh \
        mpirun --allow-run-as-root --oversubscribe --host qb-node-a:2,qb-node-b:2 -np 4 \
        --mca plm_rsh_agent "$W/rsh-agent" --mca oob_tcp_if_include "$NET.0/24" --mca btl_tcp_if_include "$NET.0/24" \
        --mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none --bind-to none "${exports[@]}" "$@"
}

# check FILE REFERENCE [partial] [both-hosts]: every cell once, VALID, tokens as in REFERENCE
check() {
    "$PY" - "$@" <<'EOF'
import sys, h5py
path, ref = sys.argv[1], sys.argv[2]
flags = sys.argv[3:]
def cells(p):
    out = {}
    with h5py.File(p, "r") as f:
        c, runs, tok = f["cells"][()], f["runs"][()], f["generated_tokens"][()]
        hosts = f.attrs["hosts"]
    for i, r in enumerate(c):
        key = (r["model"].decode(), int(r["context_len"]))
        assert key not in out, f"{key} twice in {p}"
        t = [tok[x["token_offset"]:x["token_offset"] + x["n_gen"]].tolist() for x in runs[runs["cell"] == i]]
        out[key] = (r["status"].decode(), r["checks"].decode(), t)
    return out, hosts.decode() if isinstance(hosts, bytes) else str(hosts)
got, hosts = cells(path)
want, _ = cells(ref)
problems = []
if "partial" in flags:
    if not got or len(got) >= len(want): problems.append(f"{len(got)} of {len(want)} cells: expected a partial file")
elif sorted(got) != sorted(want):
    problems.append(f"cells {sorted(got)} != {sorted(want)}")
for key, (status, checks, tokens) in got.items():
    if status != "VALID": problems.append(f"{key}: {status} ({checks})")
    if key in want and tokens != want[key][2]: problems.append(f"{key}: tokens differ from the one-host serial run")
if "both-hosts" in flags:
    if hosts != "qb-node-a,qb-node-a,qb-node-b,qb-node-b": problems.append(f"hosts attribute {hosts!r}")
    on = {h for h in ("qb-node-a", "qb-node-b") if any(f"on {h}" in c[1] for c in got.values())}
    if len(on) != 2: problems.append(f"cells ran on {sorted(on)} only")
for p in problems: print("check:", p, file=sys.stderr)
print(f"cells: {len(got)}/{len(want)}")
sys.exit(1 if problems else 0)
EOF
}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ref=$W/serial.h5
mpirun --oversubscribe --bind-to none -np 2 "$BIN" "${SWEEP[@]}" "${LENGTHS[@]}" --tp 2 --out "$ref" >"$W/log" 2>&1 \
    || fail "the one-host serial reference run"
ref1=$W/serial1.h5
"$BIN" "${SWEEP[@]}" "${LENGTHS[@]}" --tp 1 --out "$ref1" >"$W/log" 2>&1 || fail "the one-rank serial reference run"

echo "# 1. --tp 2 on two namespace nodes of 2 ranks"
on_nodes "$BIN" "${SWEEP[@]}" "${LENGTHS[@]}" --tp 2 --schedule packed --out "$W/tp2.h5" >"$W/log" 2>&1 || fail "packed --tp 2 across nodes"
grep -q '# packed groups: 2 groups of 2: \[0,1\] \[2,3\]$' "$W/log" || fail "--tp 2: not one group per node"
check "$W/tp2.h5" "$ref" both-hosts || fail "--tp 2: results"

echo "# 2. --tp 4: one group across both nodes"
on_nodes "$BIN" "${COMMON[@]}" --model qwen2.5-tiny --tp 4 --schedule packed --context-lengths 1,8 --out "$W/tp4.h5" >"$W/log" 2>&1 \
    || fail "packed --tp 4 across nodes"
grep -q 'across hosts (no host has 4 ranks)' "$W/log" || fail "--tp 4: the group does not say it spans hosts"
"$PY" -c 'import h5py,sys; c=h5py.File(sys.argv[1],"r")["cells"][()]; sys.exit(not (len(c)==2 and all(r["status"]==b"VALID" and r["n_ranks"]==4 for r in c)))' \
    "$W/tp4.h5" || fail "--tp 4: expected 2 VALID cells on 4 ranks"

echo "# 3. --tp 1, qb-node-b killed mid-sweep, then --resume"
out=$W/kill.h5
QWENBENCH_TEST_CELL_DELAY=1 on_nodes "$HOOKS" "${SWEEP[@]}" "${LENGTHS[@]}" --tp 1 --schedule packed --deadline 20 --out "$out" >"$W/log" 2>&1 &
job=$!
t0=$SECONDS
until [[ -f $out ]] && (( $("$PY" -c 'import h5py,sys; print(len(h5py.File(sys.argv[1],"r")["cells"]))' "$out" 2>/dev/null || echo 0) >= 2 )); do
    kill -0 $job 2>/dev/null || fail "the job ended before 2 cells were in the file"
    (( SECONDS - t0 < 120 )) || fail "no 2 cells in the file after 120 s"
    sleep 0.2
done
for pid in $(ip netns pids "$NS_B"); do kill -9 "$pid" 2>/dev/null; done
t1=$SECONDS
wait $job
rc=$?
(( rc != 0 )) || fail "the job with a killed node exited 0"
(( SECONDS - t1 < 60 )) || fail "the job took $((SECONDS - t1)) s to end after the node was killed"
check "$out" "$ref1" partial || fail "after the kill: results"
on_nodes "$BIN" "${SWEEP[@]}" "${LENGTHS[@]}" --tp 1 --schedule packed --deadline 20 --out "$out" --resume >"$W/log" 2>&1 \
    || fail "--resume across nodes"
check "$out" "$ref1" || fail "after --resume: results"
echo "PASS test_namespace_hosts"
