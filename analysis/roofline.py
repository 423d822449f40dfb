"""roofline.py - the bandwidth floor of batch-1 decode: bytes each GPU must read per token, and the speed limit.

Per decode token every rank reads its shard of every layer's weights, the lm_head shard and the KV cache of
its key/value heads up to the current position; the embedding is read one row per token.
    weights: q/k/v/o and gate/up/down shards at the format's bytes per parameter (bf16 2; GPTQ/AWQ: bits/8
             plus an fp16 scale and a bits-wide zero per group of group_size inputs; the format facts come
             from configs/formats.json, i.e. the C table, via analysis/formats.py); biases, norms and the
             lm_head (never quantized in the Qwen2.5 releases) at 2 bytes.
    KV cache: 2 (K and V) * layers * kv_heads_local * head_dim * 2 bytes * positions, positions = the mean
             context position during decode = context_len + gen_len / 2.
    floor tok/s = copy bandwidth (bytes/s) / bytes per token.
With TP, q/k/v split by whole heads (kv heads replicated when there are fewer than ranks), gate/up/down and
lm_head split evenly. The all-reduce cost is not counted: the floor is optimistic, so a cell above 100 % of it
claims more than the memory can deliver and is marked INVALID - unless the bytes per token are below
CACHE_RESIDENT_BYTES (256 MiB, above any GPU L2 and most CPU L3 caches): such a working set (the CPU test
models) can be served from caches faster than the copy bandwidth, so the floor is shown but not enforced.
Check: 7B BF16 on one GPU at 3.0 TB/s -> 212 tok/s; 7B GPTQ-Int4 -> ~670; 72B BF16 TP8 -> 168.

    python3 -m analysis.roofline qwen2.5-7b bf16 --tp 1 --context 1 --bandwidth-gbps 3000
"""
import argparse
import json
import math
import os
import re

from analysis import formats

KV_CACHE_BYTES = 2      # bf16 K/V cache
DENSE_BYTES = formats.dense_bytes()  # bf16 / fp16 tensors: biases, norms, lm_head
DEFAULT_GROUP_SIZE = formats.default_group_size()
CACHE_RESIDENT_BYTES = 256 * 2 ** 20
QUANT_BITS = {name: formats.bits(name) for name in formats.FORMAT_ORDER}  # configs/formats.json

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG_DIR = os.path.join(os.path.dirname(HERE), "configs", "models")


class ModelShape:
    """The architecture numbers the floor needs (from a Hugging Face style config.json)."""

    def __init__(self, name, layers, hidden, intermediate, heads, kv_heads, head_dim, vocab, tied, group_size):
        self.name, self.layers, self.hidden, self.intermediate = name, layers, hidden, intermediate
        self.heads, self.kv_heads, self.head_dim, self.vocab = heads, kv_heads, head_dim, vocab
        self.tied, self.group_size = tied, group_size

    @classmethod
    def from_config(cls, cfg, name):
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        quant = cfg.get("quantization_config") or {}
        return cls(name, int(cfg["num_hidden_layers"]), hidden, int(cfg["intermediate_size"]), heads,
                   int(cfg.get("num_key_value_heads", heads)), int(cfg.get("head_dim") or hidden // heads),
                   int(cfg["vocab_size"]), bool(cfg.get("tie_word_embeddings", False)),
                   int(quant.get("group_size") or quant.get("q_group_size") or DEFAULT_GROUP_SIZE))


def config_dir():
    return os.environ.get("QWENBENCH_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def size_label(model):
    """'qwen2.5-7b', 'Qwen2.5-7B-Instruct-AWQ', '/ckpt/Qwen2.5-0.5B-Instruct' -> '7b' / '0.5b'; a preset
    named by a word ('qwen2.5-tiny') -> 'tiny'; anything else (a fine-tune, 'qwen2.5-fixture-0') -> None."""
    base = os.path.basename(str(model).rstrip("/")).lower()
    m = re.search(r"qwen2\.5-(\d+(?:\.\d+)?b)(?![a-z0-9.])", base) or re.fullmatch(r"qwen2\.5-([a-z]+)", base)
    return m.group(1) if m else None


def find_shape(model, directory=None):
    """Shapes for a model name: <model>/config.json when it is a checkpoint directory, then
    configs/models/<model>.json, then the preset of the same size (qwen2.5-<size>.json). None if not found."""
    directory = directory or config_dir()
    candidates = [os.path.join(str(model), "config.json")]
    base = os.path.basename(str(model).rstrip("/"))
    candidates.append(os.path.join(directory, base + ".json"))
    candidates.append(os.path.join(directory, base.lower() + ".json"))
    label = size_label(model)
    if label:
        candidates.append(os.path.join(directory, f"qwen2.5-{label}.json"))
    for path in candidates:
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    return ModelShape.from_config(json.load(f), base)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # an unreadable config: try the next candidate, else no floor
    return None


def bytes_per_param(quant, group_size):
    """Bytes per weight of a quantized linear layer, scales and zeros included."""
    bits = QUANT_BITS.get(quant)
    if bits is None:
        return float(DENSE_BYTES)
    return bits / 8 + (formats.FORMATS[quant]["scale_bytes"] + bits / 8) / group_size


def kv_heads_local(shape, tp):
    return max(1, shape.kv_heads // tp)


def weight_bytes_per_token(shape, quant, tp):
    """Weight bytes one rank reads per decode token."""
    if quant not in QUANT_BITS:
        raise ValueError(f"unknown format '{quant}' (known: {', '.join(QUANT_BITS)})")
    w = bytes_per_param(quant, shape.group_size)
    q_width = shape.heads // tp * shape.head_dim
    kv_width = kv_heads_local(shape, tp) * shape.head_dim
    inter = math.ceil(shape.intermediate / tp)
    linear_params = shape.hidden * (q_width + 2 * kv_width) + q_width * shape.hidden + 3 * shape.hidden * inter
    dense = (q_width + 2 * kv_width) + 2 * shape.hidden  # q/k/v biases + two norms
    per_layer = linear_params * w + dense * DENSE_BYTES
    lm_head = math.ceil(shape.vocab / tp) * shape.hidden * DENSE_BYTES
    embed_row_and_final_norm = 2 * shape.hidden * DENSE_BYTES
    return shape.layers * per_layer + lm_head + embed_row_and_final_norm


def kv_bytes_per_token(shape, tp, context_len, gen_len):
    positions = context_len + gen_len / 2
    return 2 * shape.layers * kv_heads_local(shape, tp) * shape.head_dim * KV_CACHE_BYTES * positions


def floor(shape, quant, tp, context_len, gen_len, bandwidth_gbps):
    """dict: weights_read_bytes, kv_read_bytes, bytes_per_token, floor_tok_s (nan without a bandwidth)."""
    weights = weight_bytes_per_token(shape, quant, tp)
    kv = kv_bytes_per_token(shape, tp, context_len, gen_len)
    total = weights + kv
    ok = bandwidth_gbps is not None and math.isfinite(bandwidth_gbps) and bandwidth_gbps > 0
    return {"weights_read_bytes": weights, "kv_read_bytes": kv, "bytes_per_token": total,
            "floor_tok_s": bandwidth_gbps * 1e9 / total if ok else math.nan}


def annotate(cells, bandwidth_gbps, directory=None):
    """Add roofline columns to a cells DataFrame (one bandwidth per frame, or a column 'bandwidth_gbps'):
    bytes_per_token, floor_tok_s, pct_of_floor (decode tok/s over the floor), roofline_ok, roofline_note."""
    cells = cells.copy()
    shapes = {}
    out = {k: [] for k in ("weights_read_bytes", "kv_read_bytes", "bytes_per_token", "floor_tok_s",
                           "pct_of_floor", "roofline_ok", "roofline_note")}
    for _, c in cells.iterrows():
        bw = c["bandwidth_gbps"] if "bandwidth_gbps" in cells.columns else bandwidth_gbps
        if c["model"] not in shapes:
            shapes[c["model"]] = find_shape(c["model"], directory)
        shape, note = shapes[c["model"]], ""
        row = {"weights_read_bytes": math.nan, "kv_read_bytes": math.nan, "bytes_per_token": math.nan,
               "floor_tok_s": math.nan}
        if shape is None:
            note = f"no shapes for model '{c['model']}' in {directory or config_dir()}"
        elif c["quant"] not in QUANT_BITS:
            note = f"unknown format '{c['quant']}'"
        else:
            row = floor(shape, c["quant"], int(c["tp_size"]), int(c["context_len"]), int(c["gen_len"]), bw)
            if not math.isfinite(row["floor_tok_s"]):
                note = "no copy bandwidth recorded"
        pct = 100.0 * c["decode_tok_per_s_mean"] / row["floor_tok_s"] if math.isfinite(row["floor_tok_s"]) \
            else math.nan
        ok = not (math.isfinite(pct) and pct > 100.0)
        if not ok and row["bytes_per_token"] < CACHE_RESIDENT_BYTES:
            ok = True
            note = (f"{row['bytes_per_token'] / 2 ** 20:.1f} MiB per token fits in caches (< "
                    f"{CACHE_RESIDENT_BYTES >> 20} MiB): the bandwidth floor is not a bound, {pct:.0f}% not flagged")
        elif not ok:
            note = (f"decode {c['decode_tok_per_s_mean']:.2f} tok/s is {pct:.0f}% of the bandwidth floor "
                    f"{row['floor_tok_s']:.2f} tok/s ({row['bytes_per_token'] / 1e6:.1f} MB/token at "
                    f"{bw:.1f} GB/s)")
        for k in row:
            out[k].append(row[k])
        out["pct_of_floor"].append(pct)
        out["roofline_ok"].append(ok)
        out["roofline_note"].append(note)
    for k, v in out.items():
        cells[k] = v
    return cells


def main(argv=None):
    p = argparse.ArgumentParser(description="Bandwidth floor of batch-1 decode for one cell.")
    p.add_argument("model")
    p.add_argument("quant", choices=sorted(QUANT_BITS))
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--context", type=int, default=1)
    p.add_argument("--generate-length", type=int, default=2048)
    p.add_argument("--bandwidth-gbps", type=float, default=3000.0)
    a = p.parse_args(argv)
    shape = find_shape(a.model)
    if shape is None:
        p.exit(1, f"roofline: error: no shapes for model '{a.model}' in {config_dir()}\n")
    r = floor(shape, a.quant, a.tp, a.context, a.generate_length, a.bandwidth_gbps)
    print(f"{a.model} {a.quant} TP{a.tp} context {a.context}: weights {r['weights_read_bytes'] / 1e9:.3f} GB + "
          f"KV {r['kv_read_bytes'] / 1e9:.3f} GB per token per GPU -> floor {r['floor_tok_s']:.1f} tok/s at "
          f"{a.bandwidth_gbps:.0f} GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
