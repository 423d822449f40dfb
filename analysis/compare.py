"""compare.py - put qwenbench cells beside the published Qwen2.5 table and beside a peer engine.

Published (analysis/data/qwen2.5-speed-a100.csv, see analysis/data/README.md): measured on an A100 80GB, i.e.
another card. It is shown next to our numbers for context only and never divided into them.
Peer: cells of another engine (backend column other than cpu/cuda, e.g. "transformers") measured on the same
machine, from the same files or from --peer files. The ratio qwenbench / peer is the speed_mean quotient of
matching VALID cells: same model size, format, input length and generated length (same GPU count preferred).
"""
import os

import pandas as pd

from analysis.roofline import size_label

QWENBENCH_BACKENDS = ("cpu", "cuda")
PUBLISHED_CARD = "A100 80GB"
DEFAULT_PUBLISHED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "qwen2.5-speed-a100.csv")
PUBLISHED_QUANTS = {"BF16": "bf16", "GPTQ-Int8": "gptq-int8", "GPTQ-Int4": "gptq-int4", "AWQ": "awq"}
PUBLISHED_COLUMNS = ("model", "engine", "quant", "context", "gpus", "tok_s", "mem_gb", "note")


class CompareError(Exception):
    """A comparison input that cannot be used (one line)."""


def model_key(model):
    """The key that matches one model across names: its Qwen2.5 size ('7b', 'tiny'), else the base name."""
    label = size_label(model)
    return label if label else os.path.basename(str(model).rstrip("/")).lower()


def quant_key(quant):
    """Our format names for either spelling ('GPTQ-Int4' or 'gptq-int4' -> 'gptq-int4')."""
    return PUBLISHED_QUANTS.get(str(quant), str(quant).lower())


def load_published(path=DEFAULT_PUBLISHED):
    """The published table with model_key and our quant names added."""
    if not os.path.isfile(path):
        raise CompareError(f"{path}: no such file (published table)")
    try:
        table = pd.read_csv(path, dtype={"note": str}, keep_default_na=False, na_values={"mem_gb": [""]})
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise CompareError(f"{path}: cannot read the published table: {e}") from None
    missing = [c for c in PUBLISHED_COLUMNS if c not in table.columns]
    if missing:
        raise CompareError(f"{path}: published table lacks column(s) {', '.join(missing)}")
    try:
        table["context"] = table["context"].astype(int)
        table["gpus"] = table["gpus"].astype(int)
        table["tok_s"] = table["tok_s"].astype(float)
        table["mem_gb"] = pd.to_numeric(table["mem_gb"], errors="raise")
    except (ValueError, TypeError) as e:
        raise CompareError(f"{path}: published table has a non-numeric value: {e}") from None
    table["model_key"] = [model_key(m) for m in table["model"]]
    table["quant_key"] = [quant_key(q) for q in table["quant"]]
    return table


def is_qwenbench(cells):
    """Cells measured by qwenbench itself (not a peer engine, not from a --peer file)."""
    peer = cells["is_peer"].astype(bool) if "is_peer" in cells.columns else pd.Series(False, index=cells.index)
    return cells["backend"].isin(QWENBENCH_BACKENDS) & ~peer


def peer_ratios(cells):
    """One row per (qwenbench cell, peer backend) that both ran VALID: the speeds and their ratio."""
    ours = cells[is_qwenbench(cells) & (cells["status"] == "VALID")]
    peers = cells[~is_qwenbench(cells) & (cells["status"] == "VALID")]
    rows = []
    keys = ("model_key", "quant_key", "context_len", "gen_len")
    for _, c in ours.iterrows():
        match = peers
        for k in keys:
            match = match[match[k] == c[k]]
        for backend, group in match.groupby("backend", sort=True):
            same_gpus = group[group["n_ranks"] == c["n_ranks"]]
            p = (same_gpus if len(same_gpus) else group).iloc[-1]
            rows.append({"cell_id": c["cell_id"], "model": c["model"], "model_key": c["model_key"],
                         "quant": c["quant"], "context_len": c["context_len"], "gen_len": c["gen_len"],
                         "tp_size": c["tp_size"], "n_ranks": c["n_ranks"], "backend": c["backend"],
                         "speed_mean": c["speed_mean"], "peer_backend": backend, "peer_cell_id": p["cell_id"],
                         "peer_n_ranks": p["n_ranks"], "peer_speed_mean": p["speed_mean"],
                         "ratio": c["speed_mean"] / p["speed_mean"] if p["speed_mean"] > 0 else float("nan")})
    columns = ["cell_id", "model", "model_key", "quant", "context_len", "gen_len", "tp_size", "n_ranks", "backend",
               "speed_mean", "peer_backend", "peer_cell_id", "peer_n_ranks", "peer_speed_mean", "ratio"]
    return pd.DataFrame(rows, columns=columns)
