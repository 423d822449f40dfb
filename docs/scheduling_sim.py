#!/usr/bin/env python3
"""scheduling_sim.py - wall time of a whole Qwen2.5 sweep, serial vs --schedule packed, simulated.

Usage: python3 docs/scheduling_sim.py [REFERENCE_CSV] [--engine vllm] [--gpus-per-node 8]
Default table: ../shared/reference/qwen2.5-speed-a100.csv (the published Qwen2.5 speed table: model, engine, quant,
context, gpus, tok_s). Every (model, quant, context) row of one engine is a cell on its fewest listed GPUs.

Time of a cell: (warm-up + repetitions) runs of GENERATE tokens at the published tok/s (generated tokens / wall
time of the whole generation, prefill included) - qwenbench's defaults: 1 warm-up, 3 timed runs, 2048 tokens.
Time to load a unit (one model in one format, its cells one after the other; bench/packed_schedule.h): its weight
bytes at LOAD_GBPS per group. Packed: the dealer of src/bench/packed_dealer.c, replayed: phases by TP size,
largest first; groups carved per node; a free group takes the next cell of its unit, else the costliest unit nobody
started, else the last cell of the unit with the most cells left (two or more; it loads that unit's weights too),
else "none left"; then its ranks go on to their groups of the next phase, each group starting once all its ranks
are free (no barrier between phases). The column "with a barrier" replays the dealing before that change: every
phase started when the previous one had ended.
Interference between cells that run side by side (shared host CPU, PCIe, power) is NOT modelled: not measured yet.
Prints a Markdown table (docs/SCHEDULING.md).
"""
import csv
import os
import sys

GENERATE, RUNS, LOAD_GBPS = 2048, 1 + 3, 2.0
# weight bytes (GB) per format of each size: bf16 2 bytes/parameter, int8 ~1.1, int4 / AWQ ~0.6 (scales included)
PARAMS_B = {"0.5B": 0.49, "1.5B": 1.54, "3B": 3.09, "7B": 7.62, "14B": 14.7, "32B": 32.8, "72B": 72.7}
BYTES_PER_PARAM = {"BF16": 2.0, "GPTQ-Int8": 1.1, "GPTQ-Int4": 0.6, "AWQ": 0.6}


def size_of(model):
    return model.split("Qwen2.5-")[1].split("-")[0]


def load_cells(path, engine):
    cells = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["engine"] != engine or not r["tok_s"]:
                continue
            key = (size_of(r["model"]), r["quant"], int(r["context"]))
            gpus, speed = int(r["gpus"]), float(r["tok_s"])
            if key not in cells or gpus < cells[key][0]:  # the planner's choice: the fewest GPUs that hold it
                cells[key] = (gpus, speed)
    return [(k[0], k[1], k[2], g, RUNS * GENERATE / s) for k, (g, s) in sorted(cells.items())]


def load_s(size, quant):
    return PARAMS_B[size] * BYTES_PER_PARAM.get(quant, 2.0) / LOAD_GBPS


def serial(cells):
    units = {(c[0], c[1], c[3]) for c in cells}
    return sum(c[4] for c in cells) + sum(load_s(u[0], u[1]) for u in units)


def groups_of(tp, nodes, per_node):
    """The groups of one TP size, as lists of ranks (src/bench/rank_groups.c): carved per node, in rank order;
    across nodes only when no node has tp ranks. Ranks that do not fill a group sit the phase out."""
    if tp > per_node:
        return [list(range(i * tp, (i + 1) * tp)) for i in range(nodes * per_node // tp)]
    return [[n * per_node + i * tp + j for j in range(tp)] for n in range(nodes) for i in range(per_node // tp)]


def packed(cells, nodes, per_node, barrier=False):
    """Wall time of the packed schedule. A group of a phase starts once all its ranks are free of the earlier
    phases (barrier=False, today's dealing) or once every group of the earlier phase is done (barrier=True, the
    dealing before issue 23: each phase ended with its longest cells while the other ranks waited)."""
    rank_free = [0.0] * (nodes * per_node)
    for tp in sorted({c[3] for c in cells}, reverse=True):
        phase = [c for c in cells if c[3] == tp]
        groups = groups_of(tp, nodes, per_node)
        n_groups = len(groups)
        units = {}
        for c in phase:
            units.setdefault((c[0], c[1]), []).append(c)
        order = sorted(units, key=lambda u: -sum(c[4] for c in units[u]))
        left = {u: list(units[u]) for u in units}
        start = max(rank_free) if barrier else None
        free_at = [start if barrier else max(rank_free[r] for r in grp) for grp in groups]
        started, unit_of, done = set(), [None] * n_groups, [False] * n_groups
        while not all(done):
            g = min((i for i in range(n_groups) if not done[i]), key=lambda i: (free_at[i], i))  # the next to ask
            u = unit_of[g]
            if u is not None and left[u]:
                free_at[g] += left[u].pop(0)[4]
                continue
            fresh = [v for v in order if v not in started]
            if fresh:
                u = fresh[0]
                started.add(u)
                unit_of[g] = u
                free_at[g] += load_s(*u) + left[u].pop(0)[4]
                continue
            busy = max(order, key=lambda v: len(left[v]))
            if len(left[busy]) >= 2:
                unit_of[g] = busy
                free_at[g] += load_s(*busy) + left[busy].pop()[4]
            else:  # none left: the group's ranks go on to the next phase
                done[g] = True
                for r in groups[g]:
                    rank_free[r] = free_at[g]
    return max(rank_free)


def hours(s):
    return f"{s / 3600:.1f} h"


def main():
    args = sys.argv[1:]
    engine, per_node = "vllm", 8
    if "--engine" in args:
        engine = args.pop(args.index("--engine") + 1)
        args.remove("--engine")
    if "--gpus-per-node" in args:
        per_node = int(args.pop(args.index("--gpus-per-node") + 1))
        args.remove("--gpus-per-node")
    here = os.path.dirname(os.path.abspath(__file__))
    path = args[0] if args else os.path.join(here, "..", "..", "shared", "reference", "qwen2.5-speed-a100.csv")
    cells = load_cells(path, engine)
    total_gpu_s = sum(c[4] * c[3] for c in cells)
    longest = max(cells, key=lambda c: c[4])
    print(f"{len(cells)} cells ({engine} rows of {os.path.basename(path)}), {RUNS} runs x {GENERATE} tokens each; "
          f"GPU time {hours(total_gpu_s)}; longest cell {longest[0]} {longest[1]} input {longest[2]} on "
          f"{longest[3]} GPU(s): {longest[4] / 60:.0f} min")
    print()
    print("| machine | serial | packed | speed-up | packed with a barrier between phases (before) "
          "| packed lower bound (GPU time / GPUs) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    s = serial(cells)
    for nodes in (1, 4):
        p = packed(cells, nodes, per_node)
        before = packed(cells, nodes, per_node, barrier=True)
        bound = total_gpu_s / (nodes * per_node)
        print(f"| {nodes} node{'s' if nodes > 1 else ''} x {per_node} GPUs | {hours(s)} | {hours(p)} | "
              f"{s / p:.1f}x | {hours(before)} | {hours(bound)} |")


if __name__ == "__main__":
    main()
