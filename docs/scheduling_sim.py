#!/usr/bin/env python3
"""scheduling_sim.py - wall time of a whole Qwen2.5 sweep, serial vs --schedule packed, simulated.

Usage: python3 docs/scheduling_sim.py [REFERENCE_CSV] [--engine vllm] [--gpus-per-node 8]
Default table: ../shared/reference/qwen2.5-speed-a100.csv (the published Qwen2.5 speed table: model, engine, quant,
context, gpus, tok_s). Every (model, quant, context) row of one engine is a cell on its fewest listed GPUs.

Time of a cell: (warm-up + repetitions) runs of GENERATE tokens at the published tok/s (generated tokens / wall
time of the whole generation, prefill included) - qwenbench's defaults: 1 warm-up, 3 timed runs, 2048 tokens.
Time to load a unit (one model in one format, its cells one after the other; bench/packed_schedule.h): its weight
bytes at LOAD_GBPS per group. Packed: the dealer of src/bench/packed_schedule.c, replayed: phases by TP size,
largest first; groups carved per node; a free group takes the next cell of its unit, else the costliest unit nobody
started, else the last cell of the unit with the most cells left (two or more; it loads that unit's weights too).
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


def packed(cells, nodes, per_node):
    t_end = 0.0
    for tp in sorted({c[3] for c in cells}, reverse=True):
        phase = [c for c in cells if c[3] == tp]
        n_groups = nodes * (per_node // tp) if tp <= per_node else (nodes * per_node) // tp
        units = {}
        for c in phase:
            units.setdefault((c[0], c[1]), []).append(c)
        order = sorted(units, key=lambda u: -sum(c[4] for c in units[u]))
        left = {u: list(units[u]) for u in units}
        started, free_at, unit_of = set(), [t_end] * n_groups, [None] * n_groups
        while any(left.values()):
            g = min(range(n_groups), key=lambda i: (free_at[i], i))  # the next group to ask
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
            else:
                free_at[g] = float("inf")  # none left for this group
        t_end = max(t for t in free_at if t != float("inf"))
    return t_end


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
    print("| machine | serial | packed | speed-up | packed lower bound (GPU time / GPUs) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    s = serial(cells)
    for nodes in (1, 4):
        p = packed(cells, nodes, per_node)
        bound = total_gpu_s / (nodes * per_node)
        print(f"| {nodes} node{'s' if nodes > 1 else ''} x {per_node} GPUs | {hours(s)} | {hours(p)} | "
              f"{s / p:.1f}x | {hours(bound)} |")


if __name__ == "__main__":
    main()
