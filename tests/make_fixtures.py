#!/usr/bin/env python3
"""make_fixtures.py - golden fixtures for the CPU reference engine, made by transformers.

Builds tiny random Qwen2ForCausalLM checkpoints (bf16 safetensors + config.json in the Qwen2.5 style), then
runs transformers in float32 with eager attention on exactly those bf16-valued weights and records, for two
prompts made by the rule of src/bench/prompt.h (seed 1, lengths 1 and 64), the last-position logits and 16
greedy tokens into <out>/<name>/expected.json. The rotary inv_freq and attention factor transformers used are
recorded too, so tests can check src/engine/rope.c directly.

  python3 tests/make_fixtures.py --out tests/fixtures            # needs numpy, torch, transformers
  python3 tests/make_fixtures.py --out /tmp/fx --weights-only    # numpy only: checkpoints, no expected.json
  python3 tests/make_fixtures.py --out /tmp/fx --weights-only --seeds-from tests/fixtures   # the committed ones

Models: gqa_untied (4 q / 2 kv heads, head_dim 64), tied_hd128 (tied embeddings, head_dim 128), yarn
(rope_scaling yarn, factor 4, prompts run past max_position_embeddings), sharded (2 shards + index).
Weights are seeded numpy normals, scaled so that activations stay O(1) and logits have clear top-1 margins
(a model with too small top-1/top-2 logit gaps or repetitive output is redrawn with the next seed).
"""
import argparse
import json
import math
import os
import struct
import sys
import traceback

import numpy as np

MASK64 = (1 << 64) - 1
ORDINARY_TOKENS = 151643
PROMPT_SEED = 1
PROMPT_LENGTHS = (1, 64)
N_GEN = 16
# A model is kept when, at every greedy step, the top-1/top-2 logit gap is at least MIN_REL_MARGIN of the
# largest |logit| (fp32 engines agree to ~1e-6 of it, so a greedy choice cannot flip), and each prompt's 16
# tokens hold at least MIN_DISTINCT different ids (not a model that repeats one token); else the next seed.
MIN_REL_MARGIN = 0.002
MIN_DISTINCT = 4
MAX_SEED_TRIES = 40
# Tied models read logits off the embeddings: a large embedding dominates the residual stream, the token
# just fed in wins again (e_t . e_t ~ H) and greedy output repeats one token. A small embedding and sharper
# attention (q/k gain) let the context decide.
TIED_EMBED_STD = 0.1
TIED_QK_GAIN = 3.0

MODELS = [
    dict(name="gqa_untied", vocab=384, hidden=256, heads=4, kv_heads=2, layers=2, inter=384, tied=False,
         embed_std=1.0, theta=10000.0, max_pos=256, yarn=None, shards=1),
    dict(name="tied_hd128", vocab=640, hidden=128, heads=1, kv_heads=1, layers=2, inter=384, tied=True,
         embed_std=TIED_EMBED_STD, qk_gain=TIED_QK_GAIN, theta=1000000.0, max_pos=256, yarn=None, shards=1),
    dict(name="yarn", vocab=640, hidden=128, heads=2, kv_heads=1, layers=2, inter=384, tied=True,
         embed_std=TIED_EMBED_STD, qk_gain=TIED_QK_GAIN, theta=10000.0, max_pos=32,
         yarn=dict(factor=4.0, original=32), shards=1),
    dict(name="sharded", vocab=750, hidden=128, heads=2, kv_heads=2, layers=3, inter=256, tied=False,
         embed_std=1.0, theta=1000000.0, max_pos=256, yarn=None, shards=2),
]


# ---- the prompt rule of src/bench/prompt.h -------------------------------------------------------------
def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def prompt_tokens(seed, n, vocab_size):
    limit = min(ORDINARY_TOKENS, vocab_size)
    base = splitmix64(seed)
    return [((splitmix64((base + i) & MASK64) >> 32) & 0xFFFFFFFF) % limit for i in range(n)]


# ---- bf16 and safetensors, in numpy ---------------------------------------------------------------------
def to_bf16_bits(a):
    """float32 array -> uint16 bf16 bits, round to nearest even (as qb_float_to_bf16)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: list of (name, uint16 bf16 bits array). Header padded to 8 bytes, as the reference writer."""
    header, offset = {}, 0
    for name, bits in tensors:
        nbytes = bits.size * 2
        header[name] = {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, bits in tensors:
            f.write(np.ascontiguousarray(bits, dtype="<u2").tobytes())
    return offset


# ---- the random checkpoint ------------------------------------------------------------------------------
def make_weights(m, seed):
    """Ordered list of (name, float32 array already bf16-valued)."""
    rng = np.random.default_rng(seed)
    H, hd = m["hidden"], m["hidden"] // m["heads"]
    q_out, kv_out, inter = m["heads"] * hd, m["kv_heads"] * hd, m["inter"]

    def normal(shape, std):
        return bf16_bits_to_f32(to_bf16_bits(rng.standard_normal(shape).astype(np.float32) * np.float32(std)))

    def norm_weight(n):
        return bf16_bits_to_f32(to_bf16_bits((1.0 + rng.uniform(-0.2, 0.2, n)).astype(np.float32)))

    out = [("model.embed_tokens.weight", normal((m["vocab"], H), m["embed_std"]))]
    for i in range(m["layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", norm_weight(H)),
            (p + "self_attn.q_proj.weight", normal((q_out, H), m.get("qk_gain", 1.0) / math.sqrt(H))),
            (p + "self_attn.q_proj.bias", normal((q_out,), 0.2)),
            (p + "self_attn.k_proj.weight", normal((kv_out, H), m.get("qk_gain", 1.0) / math.sqrt(H))),
            (p + "self_attn.k_proj.bias", normal((kv_out,), 0.2)),
            (p + "self_attn.v_proj.weight", normal((kv_out, H), 1.0 / math.sqrt(H))),
            (p + "self_attn.v_proj.bias", normal((kv_out,), 0.2)),
            (p + "self_attn.o_proj.weight", normal((H, q_out), 1.0 / math.sqrt(q_out))),
            (p + "post_attention_layernorm.weight", norm_weight(H)),
            (p + "mlp.gate_proj.weight", normal((inter, H), 1.0 / math.sqrt(H))),
            (p + "mlp.up_proj.weight", normal((inter, H), 1.0 / math.sqrt(H))),
            (p + "mlp.down_proj.weight", normal((H, inter), 1.0 / math.sqrt(inter))),
        ]
    out.append(("model.norm.weight", norm_weight(H)))
    if not m["tied"]:
        out.append(("lm_head.weight", normal((m["vocab"], H), 4.0 / math.sqrt(H))))
    return out


def config_json(m):
    c = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "vocab_size": m["vocab"],
        "hidden_size": m["hidden"],
        "intermediate_size": m["inter"],
        "num_hidden_layers": m["layers"],
        "num_attention_heads": m["heads"],
        "num_key_value_heads": m["kv_heads"],
        "max_position_embeddings": m["max_pos"],
        "max_window_layers": m["layers"],
        "use_sliding_window": False,
        "sliding_window": m["max_pos"],
        "rms_norm_eps": 1e-6,
        "rope_theta": m["theta"],
        "rope_scaling": None,
        "tie_word_embeddings": m["tied"],
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "bfloat16",
    }
    if m["yarn"]:
        c["rope_scaling"] = {"type": "yarn", "factor": m["yarn"]["factor"],
                             "original_max_position_embeddings": m["yarn"]["original"]}
    return c


def write_checkpoint(m, seed, d):
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.endswith(".safetensors") or f.endswith(".json"):
            os.remove(os.path.join(d, f))
    weights = make_weights(m, seed)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_json(m), f, indent=2)
        f.write("\n")
    bits = [(n, to_bf16_bits(a)) for n, a in weights]
    if m["shards"] == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), bits)
    else:
        n, k = len(bits), m["shards"]
        weight_map, total = {}, 0
        for s in range(k):
            fname = f"model-{s + 1:05d}-of-{k:05d}.safetensors"
            part = bits[s * n // k:(s + 1) * n // k]
            total += write_safetensors(os.path.join(d, fname), part)
            weight_map.update({name: fname for name, _ in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
            f.write("\n")
    return weights


# ---- transformers reference run -------------------------------------------------------------------------
def run_transformers(m, d, weights):
    import torch
    import transformers
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    try:
        model = Qwen2ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        model = Qwen2ForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    model = model.float().eval()

    # the model must hold exactly our bf16-valued weights, in fp32 (recorded; a mismatch is reported loudly)
    params = dict(model.named_parameters(remove_duplicate=False))
    mismatched = []
    for name, a in weights:
        t = params[name].detach().cpu().numpy() if name in params else None
        if t is None or t.dtype != np.float32 or not np.array_equal(t, a):
            mismatched.append(name)
    lm = model.get_output_embeddings().weight.detach().cpu().numpy()
    lm_want = dict(weights)["model.embed_tokens.weight" if m["tied"] else "lm_head.weight"]
    if not np.array_equal(lm, lm_want):
        mismatched.append("lm_head (as used)")
    if mismatched:
        print(f"ERROR {m['name']}: transformers holds other values than the checkpoint for: {mismatched}")

    cfg = model.config
    print(f"{m['name']}: transformers rope settings: "
          f"{getattr(cfg, 'rope_parameters', None) or getattr(cfg, 'rope_scaling', None)}")
    rope = None
    rot = getattr(model.model, "rotary_emb", None)
    if rot is not None and hasattr(rot, "inv_freq"):
        rope = {"inv_freq": [float(x) for x in rot.inv_freq.detach().float().cpu().numpy()],
                "attention_factor": float(getattr(rot, "attention_scaling", 1.0))}

    def margin(logits):
        top = torch.topk(logits.double(), 2).values
        return float(top[0] - top[1]), float((top[0] - top[1]) / logits.double().abs().max())

    cases, acceptable = [], True
    with torch.no_grad():
        for n in PROMPT_LENGTHS:
            prompt = prompt_tokens(PROMPT_SEED, n, m["vocab"])
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
            last = out.logits[0, -1].float()
            past, logits, tokens, margins, rel_margins = out.past_key_values, last, [], [], []
            for step in range(N_GEN):
                tok = int(torch.argmax(logits))
                tokens.append(tok)
                gap, rel = margin(logits)
                margins.append(gap)
                rel_margins.append(rel)
                if step == N_GEN - 1:
                    break
                out = model(input_ids=torch.tensor([[tok]]), past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1].float()
            # cross-check the cached decode against one uncached pass over the whole sequence
            full = model(input_ids=torch.tensor([prompt + tokens[:-1]]), use_cache=False).logits[0]
            recomputed = [int(torch.argmax(full[n - 1 + i])) for i in range(N_GEN)]
            if recomputed != tokens:
                print(f"ERROR {m['name']}: cached and uncached greedy tokens differ: {tokens} vs {recomputed}")
            acceptable &= min(rel_margins) >= MIN_REL_MARGIN and len(set(tokens)) >= MIN_DISTINCT
            print(f"{m['name']}: prompt {n}: {len(set(tokens))} distinct tokens, smallest top-2 gap "
                  f"{min(margins):.4f} ({min(rel_margins):.4f} of max |logit|)")
            cases.append({"prompt_seed": PROMPT_SEED, "prompt_len": n, "prompt": prompt,
                          "last_logits": [float(x) for x in last.numpy()],
                          "greedy_tokens": tokens, "top2_margins": margins,
                          "uncached_agrees": recomputed == tokens})
    meta = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
            "weights_match": not mismatched, "uncached_agrees": all(c["uncached_agrees"] for c in cases)}
    return rope, cases, acceptable, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory to write <name>/ fixtures into")
    ap.add_argument("--weights-only", action="store_true", help="write checkpoints only (no torch needed)")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--seeds-from", metavar="DIR",
                    help="with --weights-only: use the weight_seed of DIR/<name>/expected.json (to check that "
                         "this script still makes the committed fixtures)")
    args = ap.parse_args()
    names = set(args.only.split(",")) if args.only else None
    failed = []
    for m in MODELS:
        if names and m["name"] not in names:
            continue
        try:
            make_one(m, args)
        except Exception:  # report and go on: one device run must bring back every fixture it can
            traceback.print_exc()
            failed.append(m["name"])
    if failed:
        print("FAILED: " + ", ".join(failed))
    return 1 if failed else 0


def make_one(m, args):
    d = os.path.join(args.out, m["name"])
    first_seed = 1000 + 17 * MODELS.index(m)
    if args.seeds_from:
        with open(os.path.join(args.seeds_from, m["name"], "expected.json")) as f:
            first_seed = json.load(f)["weight_seed"]
    for attempt in range(MAX_SEED_TRIES):
        seed = first_seed + attempt
        weights = write_checkpoint(m, seed, d)
        if args.weights_only:
            print(f"{m['name']}: weights (seed {seed}) in {d}")
            break
        rope, cases, acceptable, meta = run_transformers(m, d, weights)
        if acceptable:
            break
        print(f"{m['name']}: seed {seed}: margins too small or tokens too repetitive, redrawing")
    else:
        raise RuntimeError(f"{m['name']}: no seed in {MAX_SEED_TRIES} tries gave clear greedy margins")
    if args.weights_only:
        return
    expected = {"model": m["name"], "weight_seed": seed, "n_gen": N_GEN, **meta,
                "notes": "transformers float32, attn_implementation=eager, on the bf16-valued weights here",
                "rope": rope, "cases": cases}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"{m['name']}: seed {seed}, tokens "
          + " | ".join(" ".join(map(str, c["greedy_tokens"])) for c in cases))


if __name__ == "__main__":
    sys.exit(main())
