"""test_analysis_synth.py - writes small synthetic qwenbench results files (schema_version 1) with h5py.

Not a test by itself: the analysis tests import it so that they do not depend on the C writer. The layout is
written out here independently of analysis/load.py (docs/RESULTS.md is the reference), so a drift between the
reader and the schema shows up as a failing test.

    /usr/bin/python3 tests/test_analysis_synth.py OUT.h5     # writes the default sample file
"""
import json
import sys

import h5py
import numpy as np

CELL_DTYPE = np.dtype(
    [("model", "S128"), ("quant", "S16"), ("backend", "S16"), ("context_len", "<i4"), ("gen_len", "<i4"),
     ("tp_size", "<i4"), ("n_ranks", "<i4"), ("repetitions", "<i4"), ("warmup", "<i4"), ("seed", "<u8"),
     ("prompt_rule", "S64"), ("rope_scaling", "S32"), ("status", "S16"), ("reason", "S512")]
    + [(f"{p}_{s}", "<f8") for p in ("speed", "ttft_s", "tpot_s", "decode_tok_per_s")
       for s in ("mean", "std", "min", "max")]
    + [("warmup_total_s", "<f8"), ("speed_cv", "<f8"), ("noisy", "<i4"), ("implied_bandwidth_gbps", "<f8"),
       ("copy_bandwidth_gbps", "<f8"), ("checks", "S512"), ("peak_mem_total_bytes", "<f8"), ("peak_mem_total_gib", "<f8"),
       ("weights_bytes_rank0", "<f8"), ("kv_bytes_rank0", "<f8"), ("n_runs", "<i4"), ("first_run", "<i8")])
# The fields a newer writer adds to /cells (docs/RESULTS.md); written only when a cell description sets them.
ENGINE_FIELDS = [("engine_options", "S256"), ("engine_choices", "S512")]
# The energy fields (docs/RESULTS.md); written only when a cell description sets energy (a dict of them).
ENERGY_FIELDS = [("energy_source", "S96"), ("energy_j", "<f8"), ("joules_per_token", "<f8"),
                 ("power_mean_w", "<f8"), ("power_peak_w", "<f8"), ("sm_clock_mhz", "<f8"), ("mem_clock_mhz", "<f8"),
                 ("temperature_max_c", "<f8"), ("throttled", "<i4"), ("throttle_reasons", "<i8")]
UNAVAILABLE_ENERGY = {"energy_source": "unavailable: no GPU", "energy_j": float("nan"),
                      "joules_per_token": float("nan"), "power_mean_w": float("nan"), "power_peak_w": float("nan"),
                      "sm_clock_mhz": float("nan"), "mem_clock_mhz": float("nan"),
                      "temperature_max_c": float("nan"), "throttled": -1, "throttle_reasons": -1}
RANK_MEMORY_DTYPE = np.dtype([("cell", "<i4"), ("rank", "<i4"), ("peak_bytes", "<f8")])
RUN_DTYPE = np.dtype([("cell", "<i4"), ("repetition", "<i4"), ("n_prompt", "<i4"), ("n_gen", "<i4"),
                      ("total_s", "<f8"), ("prefill_s", "<f8"), ("decode_s", "<f8"), ("tok_per_s", "<f8"),
                      ("decode_tok_per_s", "<f8"), ("tpot_s", "<f8"), ("step_offset", "<i8"),
                      ("token_offset", "<i8")])

DEFAULT_META = {
    "version": "0.1.0", "build_commit": "abc123def456", "build_type": "Release",
    "command_line": "qwenbench --model qwen2.5-7b --out synth.h5", "start_time": "2026-11-25T20:00:00Z",
    "end_time": "2026-11-25T20:10:00Z", "hosts": "node-a,node-a",
    "devices_json": json.dumps([{"rank": 0, "host": "node-a", "name": "Synthetic GPU", "uuid": "GPU-0"},
                                {"rank": 1, "host": "node-a", "name": "Synthetic GPU", "uuid": "GPU-1"}]),
    "driver_version": "580.00", "cuda_version": "13.0", "nccl_version": "2.28.3", "mpi_version": "Open MPI 4.1.4",
    "hdf5_version": "1.10.8", "settings_json": json.dumps({"generate_length": 16, "repetitions": 3}),
}


def stats(x):
    """mean, sample stddev (0 for one value), min, max - as record.h defines them."""
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return 0.0, 0.0, 0.0, 0.0
    mean = float(np.mean(x))
    std = float(np.sqrt(np.sum((x - mean) ** 2) / (len(x) - 1))) if len(x) > 1 else 0.0
    return mean, std, float(np.min(x)), float(np.max(x))


def cell(model="qwen2.5-7b", quant="bf16", backend="cuda", context_len=1, gen_len=16, tp_size=1, step_s=0.01,
         prefill_s=0.02, repetitions=3, status="VALID", reason="", gib=15.5, jitter=0.03, noisy=0,
         engine_options=None, engine_choices=None, energy=None):
    """A cell description: its runs are made from step_s (per-step time) with a per-repetition jitter.
    noisy: the file's noisy flag (speed_cv is computed); engine_options / engine_choices: the recorded strings
    (the fields are written when any cell of the file sets one)."""
    return dict(model=model, quant=quant, backend=backend, context_len=context_len, gen_len=gen_len, tp_size=tp_size,
                step_s=step_s, prefill_s=prefill_s, repetitions=repetitions, status=status, reason=reason, gib=gib,
                jitter=jitter, noisy=noisy, engine_options=engine_options, engine_choices=engine_choices,
                energy=energy)


def default_cells():
    """7B: bf16 and gptq-int4 at TP1/TP2, inputs 1 and 6144; one cell of each non-VALID status; one VALID cell
    faster than its bandwidth floor at 3000 GB/s (so the report marks it INVALID)."""
    cells = []
    for quant, step in (("bf16", 0.010), ("gptq-int4", 0.004)):
        for tp in (1, 2):
            for n in (1, 6144):
                cells.append(cell(quant=quant, tp_size=tp, context_len=n, step_s=step / tp * (1 + n / 60000),
                                  gib=(15.3 if quant == "bf16" else 5.6) + 0.1 * tp + n / 10000))
    cells.append(cell(quant="gptq-int8", context_len=1, status="INVALID",
                      reason="generated tokens differ between ranks at step 3", step_s=0.006))
    cells.append(cell(quant="gptq-int8", context_len=6144, status="DOES_NOT_FIT", repetitions=0,
                      reason="needs 90.1 GiB on rank 0, device has 79.2 GiB"))
    cells.append(cell(quant="awq", context_len=1, status="FAILED", repetitions=0, reason="cuda: out of memory"))
    cells.append(cell(quant="awq", context_len=6144, step_s=0.0005))  # 2000 tok/s: above the floor
    return cells


def build(cells):
    """The datasets' arrays for a list of cell descriptions."""
    rng = np.random.default_rng(1234)
    with_engine = any(c.get("engine_options") is not None or c.get("engine_choices") is not None for c in cells)
    dtype = np.dtype(CELL_DTYPE.descr + ENGINE_FIELDS) if with_engine else CELL_DTYPE
    with_energy = any(c.get("energy") is not None for c in cells)
    if with_energy:
        dtype = np.dtype(dtype.descr + ENERGY_FIELDS)
    cell_rows, run_rows, mem_rows, steps, tokens = [], [], [], [], []
    for ci, c in enumerate(cells):
        row = np.zeros((), dtype=dtype)
        for k in ("model", "quant", "backend", "status", "reason"):
            row[k] = c[k].encode()
        if with_engine:
            row["engine_options"] = (c.get("engine_options") or "").encode()
            row["engine_choices"] = (c.get("engine_choices") or "").encode()
        row["noisy"] = c.get("noisy", 0)
        if with_energy:
            for k, v in dict(UNAVAILABLE_ENERGY, **(c.get("energy") or {})).items():
                row[k] = v.encode() if isinstance(v, str) else v
        row["prompt_rule"] = b"random"
        for k in ("context_len", "gen_len", "tp_size", "repetitions"):
            row[k] = c[k]
        row["n_ranks"], row["warmup"], row["seed"] = c["tp_size"], 1, 42
        first_run = len(run_rows)
        per_run = []
        for rep in range(c["repetitions"] if c["status"] in ("VALID", "INVALID") else 0):
            scale = 1 + c["jitter"] * (rep - 1)
            step = c["step_s"] * scale * (1 + 0.05 * rng.random(c["gen_len"] - 1))
            prefill = c["prefill_s"] * scale
            decode = float(np.sum(step))
            total = prefill + decode
            run = (ci, rep, c["context_len"], c["gen_len"], total, prefill, decode, c["gen_len"] / total,
                   (c["gen_len"] - 1) / decode, decode / (c["gen_len"] - 1), sum(len(s) for s in steps),
                   sum(len(t) for t in tokens))
            run_rows.append(run)
            per_run.append(run)
            steps.append(step)
            tokens.append(rng.integers(0, 151643, c["gen_len"], dtype=np.int32))
        if per_run:
            runs = np.array(per_run, dtype=RUN_DTYPE)
            for prefix, field in (("speed", "tok_per_s"), ("ttft_s", "prefill_s"), ("tpot_s", "tpot_s"),
                                  ("decode_tok_per_s", "decode_tok_per_s")):
                for suffix, v in zip(("mean", "std", "min", "max"), stats(runs[field])):
                    row[f"{prefix}_{suffix}"] = v
            row["warmup_total_s"] = float(runs["total_s"][0]) * 1.3
            row["speed_cv"] = row["speed_std"] / row["speed_mean"]
        total_bytes = c["gib"] * 2 ** 30
        row["peak_mem_total_bytes"], row["peak_mem_total_gib"] = total_bytes, c["gib"]
        row["weights_bytes_rank0"] = total_bytes / c["tp_size"] * 0.9
        row["kv_bytes_rank0"] = total_bytes / c["tp_size"] * 0.1
        row["n_runs"], row["first_run"] = len(per_run), first_run
        cell_rows.append(row)
        for rank in range(c["tp_size"]):
            mem_rows.append((ci, rank, total_bytes / c["tp_size"]))
    return {"cells": np.array(cell_rows, dtype=dtype), "runs": np.array(run_rows, dtype=RUN_DTYPE),
            "rank_memory": np.array(mem_rows, dtype=RANK_MEMORY_DTYPE),
            "step_latency_s": np.concatenate(steps) if steps else np.zeros(0),
            "generated_tokens": np.concatenate(tokens) if tokens else np.zeros(0, dtype=np.int32)}


def write(path, cells=None, meta=None, bandwidth_gbps=3000.0, skip=(), replace=None):
    """Write a results file. skip: dataset names to leave out; replace: {name: array} written instead."""
    data = build(default_cells() if cells is None else cells)
    data.update(replace or {})
    with h5py.File(path, "w") as f:
        for k, v in dict(DEFAULT_META, **(meta or {})).items():
            f.attrs[k] = v  # a Python str becomes a vlen UTF-8 string attribute
        f.attrs["schema_version"] = np.int32(1)
        if bandwidth_gbps is not None:
            f.attrs["copy_bandwidth_gbps"] = np.float64(bandwidth_gbps)
        for name in ("cells", "rank_memory", "runs", "step_latency_s", "generated_tokens"):
            if name not in skip:
                f.create_dataset(name, data=data[name])
    return data


def peer_cells():
    """A transformers peer of the same model on the same machine, in the published naming (model and 'BF16')."""
    return [cell(model="Qwen2.5-7B-Instruct", backend="transformers", quant=q, context_len=n, step_s=s)
            for q, s in (("BF16", 0.025), ("gptq-int4", 0.02)) for n in (1, 6144)]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: test_analysis_synth.py OUT.h5")
    # the whole documented schema, the engine's option and choice strings included (the C reader needs them)
    write(sys.argv[1], cells=[dict(c, engine_options="allreduce=auto;tp_exchange=auto;allreduce_norm=auto;"
                                   "decode_fusion=auto;quant_layout=auto;attn_prefill=auto;pdl=auto",
                                   engine_choices="engine=cpu-reference", energy=UNAVAILABLE_ENERGY)
                         for c in default_cells()])
