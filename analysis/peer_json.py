"""peer_json.py - read the transformers peer's JSON (tests/peer_transformers.py --out FILE.json) as a Results.

The peer writes one object {"engine", "meta": {...}, "cells": [...]} whose cell and run fields carry qwenbench's
names (docs/RESULTS.md). This turns it into the same Results as analysis.load.load_results, so the report puts
the peer beside qwenbench (--peer FILE.json); the statistics qwenbench has and the peer's JSON lacks (decode
tokens/s, time per output token) are computed from its runs the way qwenbench computes them. The peer keeps no
per-step latencies and only the first tokens, so those arrays are empty.

    from analysis.peer_json import load_peer_json
    r = load_peer_json("peer_7b_compile.json")     # r.cells, r.runs, r.meta as load_results gives them

Any problem raises ResultsError with one line naming the file and the field.
"""
import json
import math
import os

from analysis.deps import require

require(__name__)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .load import CELL_STATUSES, Results, ResultsError  # noqa: E402

REQUIRED_CELL_KEYS = ("model", "quant", "backend", "context_len", "gen_len", "status", "speed_mean", "runs")
REQUIRED_RUN_KEYS = ("n_prompt", "n_gen", "total_s", "prefill_s")


def _stats(values):
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return (float("nan"),) * 4
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, std, min(vals), max(vals)


def _number(path, where, obj, key, default=None):
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ResultsError(f"{path}: {where}: '{key}' must be a number, is {v!r}"[:200])
    return v


def is_peer_json(path):
    """True when the file looks like JSON (first non-blank byte '{'), so --peer can take either format."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return False
    return head.startswith(b"{")


def load_peer_json(path):
    if not os.path.isfile(path):
        raise ResultsError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a peer JSON file: {e}"[:300]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise ResultsError(f"{path}: no 'cells' list (not tests/peer_transformers.py output?)")
    meta_in = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    cell_rows, run_rows = [], []
    for ci, c in enumerate(doc["cells"]):
        where = f"cells[{ci}]"
        if not isinstance(c, dict):
            raise ResultsError(f"{path}: {where} is not an object")
        for k in REQUIRED_CELL_KEYS:
            if k not in c:
                raise ResultsError(f"{path}: {where} lacks '{k}'")
        if c["status"] not in CELL_STATUSES:
            raise ResultsError(f"{path}: {where}: unknown status {c['status']!r}"[:200])
        runs = c["runs"]
        if not isinstance(runs, list):
            raise ResultsError(f"{path}: {where}: 'runs' must be a list")
        first = len(run_rows)
        for ri, r in enumerate(runs):
            rw = f"{where}.runs[{ri}]"
            if not isinstance(r, dict):
                raise ResultsError(f"{path}: {rw} is not an object")
            for k in REQUIRED_RUN_KEYS:
                _number(path, rw, r, k)
            n_gen, total, prefill = int(r["n_gen"]), float(r["total_s"]), float(r["prefill_s"])
            decode = float(r.get("decode_s", total - prefill))
            run_rows.append({"cell": ci, "repetition": int(r.get("repetition", ri)), "n_prompt": int(r["n_prompt"]),
                             "n_gen": n_gen, "total_s": total, "prefill_s": prefill, "decode_s": decode,
                             "tok_per_s": float(r.get("tok_per_s", n_gen / total if total > 0 else float("nan"))),
                             "decode_tok_per_s": (n_gen - 1) / decode if decode > 0 and n_gen > 1 else float("nan"),
                             "tpot_s": decode / (n_gen - 1) if n_gen > 1 else float("nan"),
                             "step_offset": 0, "token_offset": 0})
        mine = run_rows[first:]
        row = {"model": str(c["model"]), "quant": str(c["quant"]), "backend": str(c["backend"]),
               "context_len": int(_number(path, where, c, "context_len")),
               "gen_len": int(_number(path, where, c, "gen_len")),
               "tp_size": int(c.get("tp_size", 1)), "n_ranks": int(c.get("n_ranks", 1)),
               "repetitions": int(c.get("repetitions", len(mine))), "warmup": int(c.get("warmup", 0)),
               "seed": int(c.get("seed", meta_in.get("seed", 0))), "prompt_rule": str(c.get("prompt_rule", "")),
               "status": str(c["status"]), "reason": str(c.get("reason", "")),
               "warmup_total_s": float(c.get("warmup_total_s", 0.0)),
               "peak_mem_total_bytes": float(c.get("peak_mem_total_bytes", float("nan"))),
               "peak_mem_total_gib": float(c.get("peak_mem_total_gib", float("nan"))),
               "weights_bytes_rank0": float(meta_in.get("weights_bytes", float("nan"))),
               "kv_bytes_rank0": float("nan"), "n_runs": len(mine), "first_run": first}
        for prefix, key in (("speed", "tok_per_s"), ("ttft_s", "prefill_s"), ("tpot_s", "tpot_s"),
                            ("decode_tok_per_s", "decode_tok_per_s")):
            have = all(f"{prefix}_{s}" in c for s in ("mean", "std", "min", "max"))
            st = [float(c[f"{prefix}_{s}"]) for s in ("mean", "std", "min", "max")] if have \
                else _stats([r[key] for r in mine])
            for s, v in zip(("mean", "std", "min", "max"), st):
                row[f"{prefix}_{s}"] = v
        cell_rows.append(row)
    cells = pd.DataFrame(cell_rows)
    runs = pd.DataFrame(run_rows, columns=["cell", "repetition", "n_prompt", "n_gen", "total_s", "prefill_s",
                                           "decode_s", "tok_per_s", "decode_tok_per_s", "tpot_s", "step_offset",
                                           "token_offset"])
    device = str(meta_in.get("device", ""))
    engine = str(doc.get("engine", "transformers"))
    meta = {"schema_version": 1, "version": engine, "build_commit": "", "build_type": "",
            "command_line": "tests/peer_transformers.py", "start_time": "", "end_time": "", "hosts": "",
            "devices_json": json.dumps([{"name": device}]) if device else "", "driver_version": "",
            "cuda_version": str(meta_in.get("torch", "")), "nccl_version": "", "mpi_version": "",
            "hdf5_version": "", "settings_json": json.dumps(meta_in), "copy_bandwidth_gbps": float("nan")}
    rank_memory = pd.DataFrame({"cell": pd.Series(dtype=int), "rank": pd.Series(dtype=int),
                                "peak_bytes": pd.Series(dtype=float)})
    return Results(path, meta, cells, runs, rank_memory, np.zeros(0), np.zeros(0, dtype=np.int64))
