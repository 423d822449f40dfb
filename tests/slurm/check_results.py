#!/usr/bin/python3
"""check_results.py - check a qwenbench results file against the cells of a sweep config.

Usage: check_results.py RESULTS.h5 SWEEP.json [--complete | --partial] [--ranks N]
  --complete (default): every cell of the sweep appears exactly once, with status VALID.
  --partial: at least one cell and not all of them; none twice; every one VALID and part of the sweep.
  --ranks N: every cell ran on N ranks.
  --accept-bandwidth-floor: also accept INVALID cells whose only fault is "faster than the hardware allows"
    (the roofline check against the DRAM copy bandwidth): the tiny CPU test model's weights stay in the CPU
    cache, so it can legitimately beat that floor. These tests are about launching and resuming, not speed.
Prints "cells: <found>/<expected>" on success; exits 1 with the first problems otherwise.
Run with /usr/bin/python3 (Debian's python3-h5py).
"""
import argparse
import collections
import json
import sys

import h5py


def sweep_cells(path):
    """The (model, quant, context_len) cells of a sweep file, in file order (as src/config/sweep.c)."""
    with open(path) as f:
        sweep = json.load(f)
    cells = []
    for entry in sweep["entries"]:
        for model in entry["models"]:
            for quant in entry["quants"]:
                for length in entry["context_lengths"]:
                    cells.append((model, quant, int(length)))
    return cells


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("sweep")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--complete", action="store_true")
    mode.add_argument("--partial", action="store_true")
    ap.add_argument("--ranks", type=int, default=0)
    ap.add_argument("--accept-bandwidth-floor", action="store_true")
    args = ap.parse_args()

    expected = sweep_cells(args.sweep)
    with h5py.File(args.results, "r") as f:
        rows = f["cells"][()]
    found = [(text(r["model"]), text(r["quant"]), int(r["context_len"])) for r in rows]
    problems = []
    for cell, n in collections.Counter(found).items():
        if n > 1:
            problems.append(f"cell {cell} appears {n} times")
        if cell not in expected:
            problems.append(f"cell {cell} is not in the sweep")
    for r, cell in zip(rows, found):
        status = text(r["status"])
        reason = text(r["reason"])
        if (status == "INVALID" and args.accept_bandwidth_floor
                and reason.startswith("faster than the hardware allows")):
            print(f"note: cell {cell}: accepted INVALID ({reason})", file=sys.stderr)
        elif status != "VALID":
            problems.append(f"cell {cell}: status {status} ({text(r['reason'])})")
        if args.ranks and int(r["n_ranks"]) != args.ranks:
            problems.append(f"cell {cell}: ran on {int(r['n_ranks'])} ranks, expected {args.ranks}")
    missing = [c for c in expected if c not in found]
    if args.partial:
        if not found:
            problems.append("no cell in the file (expected a partial sweep)")
        elif not missing:
            problems.append("every cell is in the file (expected a partial sweep: the job ended too late)")
    elif missing:
        problems.append(f"{len(missing)} cell(s) missing, first {missing[0]}")
    if problems:
        print(f"{args.results}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems[:10]:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"cells: {len(set(found))}/{len(expected)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
