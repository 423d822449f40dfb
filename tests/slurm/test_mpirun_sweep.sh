#!/usr/bin/env bash
# test_mpirun_sweep.sh - `qwenbench --sweep configs/sweeps/cpu-tiny.json` under mpirun -np 2, started through
# launch/qwenbench-mpirun: the one results file holds the whole grid, every cell once, VALID, on 2 ranks.
# Usage: tests/slurm/test_mpirun_sweep.sh QWENBENCH_BINARY [SOURCE_DIR]
set -uo pipefail
BIN=$(realpath "$1")
SRC=$(realpath "${2:-$(dirname "$0")/../..}")
W=$(mktemp -d /tmp/qb-mpirun-test.XXXXXX)
trap 'rm -rf "$W"' EXIT
sweep=$SRC/configs/sweeps/cpu-tiny.json
if ! "$SRC/launch/qwenbench-mpirun" --np 2 --bin "$BIN" --backend cpu --threads 1 --sweep "$sweep" \
        --out "$W/tiny.h5" >"$W/log" 2>&1; then
    cat "$W/log" >&2
    echo "FAIL test_mpirun_sweep: qwenbench under launch/qwenbench-mpirun --np 2 failed" >&2
    exit 1
fi
grep -q '^+ NCCL_NVLS_ENABLE=0 mpirun -np 2 ' "$W/log" || { cat "$W/log" >&2; echo "FAIL: no printed command" >&2; exit 1; }
/usr/bin/python3 "$SRC/tests/slurm/check_results.py" "$W/tiny.h5" "$sweep" --complete --ranks 2 \
    || { cat "$W/log" >&2; echo "FAIL test_mpirun_sweep: results file check" >&2; exit 1; }
echo "PASS test_mpirun_sweep"
