#!/usr/bin/env python3
"""peer_transformers.py - the seed protocol's transformers peer, on the same card as qwenbench.

Batch 1, a prompt of N tokens (qwenbench's prompt rule, src/bench/prompt.h), exactly G new tokens
(min_new_tokens = max_new_tokens = G, so end-of-sequence never stops it), greedy; the time of the whole
generate() call (prefill included) with the device synchronised on both sides; peak
torch.cuda.max_memory_allocated. Modes:
  eager    plain transformers, dynamic cache (the published seed script's path; no warm-up, as the seed)
  compile  static cache + torch.compile of the decoding step (transformers' fastest PyTorch path); one untimed
           warm-up run of the same shape first, since compilation would otherwise dominate the time.
Weights: qwenbench's random weights, bit for bit (engine/random_init.h reimplemented on the GPU in torch:
splitmix64 of seed, FNV-1a of the tensor name and the element index), so both engines run the same model;
or a local checkpoint directory (--model DIR).

  python3 tests/peer_transformers.py --model qwen2.5-7b --context-lengths 1,6144 --generate-length 2048 \
      --repetitions 3 --mode eager --out peer.json [--compare-tokens qwenbench.h5]

Output: one JSON object {"meta": {...}, "cells": [...]} whose cell and run fields are named as qwenbench's
results file (docs/RESULTS.md): model, quant, backend ("transformers-eager" / "transformers-compile"),
context_len, gen_len, tp_size, speed_mean/std/min/max, ttft_s_*, peak_mem_total_bytes/gib, runs[{total_s,
prefill_s, ...}], plus the first 32 generated tokens ("tokens") and each one's top-5 under transformers, and
a top-level "engine": the file is also qwenbench's --expect-tokens input (the results file records agreement).
--compare-tokens FILE.h5: for each context length also present in that qwenbench file, the first 32 greedy
tokens must agree, or at the first difference qwenbench's token must be in transformers' top 5 (exit 1 if not).
--save-checkpoint DIR: write the model as a Hugging Face checkpoint and exit (tests/test_cuda_peer_tokens.sh
uses it so that both engines read the same safetensors).
--teacher-forced FILE (qwenbench results .h5, or a tokens JSON {"cells": [{"context_len": N, "tokens": [...]}]}
as --expect-tokens reads): for each context length, qwenbench's generated tokens are fed as the continuation
(one forward pass over prompt + those tokens, the peer's logits at every step) and each cell records
"teacher_forced": {"top1_rate": share of steps where qwenbench's token is the peer's top 1, "top5_all": every
one in the peer's top 5, "first_outside_top5": the first step where not (null if none), "steps": n}. The free-
running comparison says nothing after the first near-tie; this one checks every step. qwenbench's
--expect-tokens records it in the cell's checks (not a verdict). --repetitions 0 skips the timed runs.
"""
import argparse
import json
import math
import os
import sys
import time

MASK64 = (1 << 64) - 1
ORDINARY_TOKENS = 151643
RANDOM_SCALE = 0.0346410162
NORM_SCALE = 0.1
CHECK_TOKENS = 32


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def prompt_tokens(seed, n, vocab_size):
    limit = min(ORDINARY_TOKENS, vocab_size)
    base = splitmix64(seed)
    return [((splitmix64((base + i) & MASK64) >> 32) & 0xFFFFFFFF) % limit for i in range(n)]


def tensor_id(name):
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & MASK64
    return h


def signed64(u):
    return u - (1 << 64) if u >= (1 << 63) else u


def torch_splitmix(x, torch):
    """splitmix64 on int64 tensors holding uint64 bits (wrapping multiply, logical shifts)."""
    def shr(v, k):
        return (v >> k) & ((1 << (64 - k)) - 1)
    x = x + signed64(0x9E3779B97F4A7C15)
    x = (x ^ shr(x, 30)) * signed64(0xBF58476D1CE4E5B9)
    x = (x ^ shr(x, 27)) * signed64(0x94D049BB133111EB)
    return x ^ shr(x, 31)


def random_unit(seed, tid, start, count, torch, device):
    idx = torch.arange(start, start + count, dtype=torch.int64, device=device)
    h = torch_splitmix(idx, torch)
    h = torch_splitmix(h ^ signed64(tid), torch)
    h = torch_splitmix(h ^ signed64(seed), torch)
    top24 = (h >> 40) & ((1 << 24) - 1)
    return (top24.to(torch.float64) * (1.0 / 8388608.0) - 1.0).to(torch.float32)


def fill_random_(param, name, seed, torch):
    """qwenbench's value rule for one full tensor (bf16), in chunks."""
    flat = param.data.view(-1)
    tid = tensor_id(name)
    is_norm = name.endswith("norm.weight")
    chunk = 1 << 26
    for start in range(0, flat.numel(), chunk):
        n = min(chunk, flat.numel() - start)
        u = random_unit(seed, tid, start, n, torch, flat.device)
        if is_norm:
            v = torch.tensor(1.0, dtype=torch.float32, device=flat.device) + \
                torch.tensor(NORM_SCALE, dtype=torch.float32, device=flat.device) * u
        else:
            v = torch.tensor(RANDOM_SCALE, dtype=torch.float32, device=flat.device) * u
        flat[start:start + n] = v.to(torch.bfloat16)


def build_model(args, torch, transformers):
    if os.path.isdir(args.model):
        model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).to("cuda")
        return model, os.path.basename(args.model.rstrip("/"))
    path = os.path.join(args.config_dir, args.model + ".json")
    with open(path) as f:
        cfg_json = json.load(f)
    config = transformers.Qwen2Config(**cfg_json)
    config.torch_dtype = torch.bfloat16
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.Qwen2ForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.eval()
    with torch.no_grad():
        seen = set()
        for name, param in model.named_parameters():
            if id(param) in seen:
                continue  # tied lm_head shares the embedding
            seen.add(id(param))
            fill_random_(param, name, args.seed, torch)
    torch.cuda.synchronize()
    return model, args.model


def one_run(model, ids, gen, mode, torch):
    """The timed call: generate() exactly as the seed script times it (scores are not kept: they would add
    gen x vocab floats to the peak memory)."""
    kwargs = dict(max_new_tokens=gen, min_new_tokens=gen, do_sample=False, num_beams=1, pad_token_id=0)
    if mode == "compile":
        kwargs["cache_implementation"] = "static"
    mask = torch.ones_like(ids)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, attention_mask=mask, **kwargs)
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return total, out[0, ids.shape[1]:].tolist()


def check_run(model, ids, torch):
    """Untimed: the first CHECK_TOKENS greedy tokens with each step's top 5 (eager, dynamic cache)."""
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=CHECK_TOKENS,
                         min_new_tokens=CHECK_TOKENS, do_sample=False, num_beams=1, pad_token_id=0,
                         return_dict_in_generate=True, output_scores=True)
    tokens = out.sequences[0, ids.shape[1]:].tolist()
    return tokens, [s[0].float().topk(5).indices.tolist() for s in out.scores]


def first_token_time(model, ids, torch):
    """Time to first token: a separate prefill + argmax (generate() gives no per-token clock)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
        int(logits.argmax())
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def stats(xs):
    n = len(xs)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return mean, std, min(xs), max(xs)


def teacher_forced_summary(top5_per_step, forced):
    """The teacher-forced comparison from the peer's top 5 at each step (top 1 first; step s is the prediction
    of forced[s]) and qwenbench's tokens; plain lists, no torch."""
    n = min(len(top5_per_step), len(forced))
    top1 = sum(1 for s in range(n) if int(top5_per_step[s][0]) == int(forced[s]))
    outside = [s for s in range(n) if int(forced[s]) not in [int(t) for t in top5_per_step[s][:5]]]
    return {"top1_rate": top1 / n if n else 0.0, "top5_all": not outside,
            "first_outside_top5": outside[0] if outside else None, "steps": n}


def top5_of_logits(logits_rows):
    """Top 5 token ids (best first) of each row of a 2-D array-like of logits (numpy; the tests' stand-in)."""
    import numpy as np
    rows = np.asarray(logits_rows, dtype=np.float64)
    return [list(map(int, np.argsort(-row, kind="stable")[:5])) for row in rows]


def teacher_forced_top5(model, prompt, forced, torch, chunk=256):
    """One forward pass over prompt + forced[:-1]; the top 5 of the logits that predict each forced token.
    The LM head runs on chunks of steps so that all positions' logits are never held at once."""
    ids = torch.tensor([list(prompt) + list(forced[:-1])], dtype=torch.int64, device="cuda")
    with torch.no_grad():
        hidden = model.model(input_ids=ids).last_hidden_state[0, len(prompt) - 1:]
        out = []
        for start in range(0, hidden.shape[0], chunk):
            logits = model.lm_head(hidden[start:start + chunk]).float()
            out += logits.topk(5, dim=-1).indices.tolist()
    return out


def forced_tokens_from(path, context_len):
    """qwenbench's generated tokens for an input length: from a results file (qwenbench_tokens) or a tokens JSON
    ({"cells": [{"context_len": N, "tokens": [...]}, ...]}, the --expect-tokens format)."""
    if path.endswith((".h5", ".hdf5")):
        return qwenbench_tokens(path, context_len)
    with open(path) as f:
        doc = json.load(f)
    for c in doc.get("cells", []):
        if int(c.get("context_len", -1)) == context_len:
            return [int(t) for t in c["tokens"]]
    return None


def qwenbench_tokens(path, context_len):
    import h5py
    import pandas
    with h5py.File(path, "r") as f:
        cells = pandas.DataFrame(f["cells"][()])
        runs = pandas.DataFrame(f["runs"][()])
        for ci, c in cells.iterrows():
            if int(c.context_len) == context_len and c.status in (b"VALID", "VALID"):
                r = runs[runs.cell == ci].iloc[0]
                return f["generated_tokens"][int(r.token_offset): int(r.token_offset) + int(r.n_gen)].tolist()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-7b", help="preset name (configs/models/NAME.json) or checkpoint dir")
    ap.add_argument("--config-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "models"))
    ap.add_argument("--context-lengths", default="1,6144,30720")
    ap.add_argument("--generate-length", type=int, default=2048)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="")
    ap.add_argument("--compare-tokens", default="", help="qwenbench results file (.h5) to check the first tokens against")
    ap.add_argument("--save-checkpoint", default="", help="write the model (safetensors + config.json) to this "
                    "directory and exit: qwenbench then loads the very same weights with --model DIR")
    ap.add_argument("--teacher-forced", default="", help="qwenbench results (.h5) or tokens JSON: feed its generated "
                    "tokens and record, per step, whether each is in the peer's top 5 (and the top-1 agreement)")
    args = ap.parse_args()

    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    model, model_name = build_model(args, torch, transformers)
    if args.save_checkpoint:
        model.save_pretrained(args.save_checkpoint, safe_serialization=True)
        print(f"# saved {model_name} to {args.save_checkpoint}")
        return 0
    vocab = model.config.vocab_size
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "transformers": transformers.__version__, "mode": args.mode, "seed": args.seed,
            "weights_bytes": weights_bytes, "prompt_rule": "random"}
    cells = []
    failures = 0
    for n in [int(x) for x in args.context_lengths.split(",")]:
        ids = torch.tensor([prompt_tokens(args.seed, n, vocab)], dtype=torch.int64, device="cuda")
        warm = None
        if args.mode == "compile":
            warm, _ = one_run(model, ids, args.generate_length, args.mode, torch)
        runs = []
        torch.cuda.empty_cache()
        for rep in range(args.repetitions):
            torch.cuda.reset_peak_memory_stats()
            total, tokens = one_run(model, ids, args.generate_length, args.mode, torch)
            peak = torch.cuda.max_memory_allocated()
            ttft = first_token_time(model, ids, torch)
            if len(tokens) != args.generate_length:
                raise SystemExit(f"peer: generated {len(tokens)} tokens, expected {args.generate_length}")
            runs.append({"tokens_head": tokens[:CHECK_TOKENS], "repetition": rep, "n_prompt": n, "n_gen": len(tokens), "total_s": total,
                         "prefill_s": ttft, "decode_s": total - ttft, "tok_per_s": len(tokens) / total,
                         "peak_bytes": peak})
            print(f"# {model_name} {args.mode} input {n}: {len(tokens) / total:.2f} tok/s, total {total:.2f} s, "
                  f"ttft {ttft * 1e3:.1f} ms, peak {peak / 2**30:.2f} GiB", flush=True)
        check_tokens, check_top5 = check_run(model, ids, torch)
        if runs and check_tokens != runs[0]["tokens_head"]:
            print(f"# note: the untimed check run's tokens differ from the timed run's (mode {args.mode})")
        sp = stats([r["tok_per_s"] for r in runs]) if runs else (None,) * 4
        tt = stats([r["prefill_s"] for r in runs]) if runs else (None,) * 4
        peak = max(r["peak_bytes"] for r in runs) if runs else 0
        cell = {"model": model_name, "quant": "bf16", "backend": "transformers-" + args.mode, "context_len": n,
                "gen_len": args.generate_length, "tp_size": 1, "n_ranks": 1, "repetitions": args.repetitions,
                "warmup": 1 if warm is not None else 0, "warmup_total_s": warm or 0.0, "seed": args.seed,
                "prompt_rule": "random", "status": "VALID", "reason": "",
                "speed_mean": sp[0], "speed_std": sp[1], "speed_min": sp[2], "speed_max": sp[3],
                "ttft_s_mean": tt[0], "ttft_s_std": tt[1], "ttft_s_min": tt[2], "ttft_s_max": tt[3],
                "peak_mem_total_bytes": float(peak), "peak_mem_total_gib": peak / 2**30, "runs": runs,
                "first_tokens": check_tokens, "first_top5": check_top5, "tokens": check_tokens}
        if args.teacher_forced:
            forced = forced_tokens_from(args.teacher_forced, n)
            if forced:
                prompt = prompt_tokens(args.seed, n, vocab)
                tf = teacher_forced_summary(teacher_forced_top5(model, prompt, forced, torch), forced)
                cell["teacher_forced"] = tf
                print(f"# teacher-forced input {n}: top-1 agreement {100 * tf['top1_rate']:.1f} % over {tf['steps']} "
                      "steps, " + ("every token in the top 5" if tf["top5_all"] else
                                   f"step {tf['first_outside_top5']} outside the top 5"), flush=True)
            else:
                print(f"# teacher-forced input {n}: no qwenbench tokens for this length in {args.teacher_forced}")
        if args.compare_tokens:
            theirs = qwenbench_tokens(args.compare_tokens, n)
            if theirs is not None:
                mine = check_tokens
                first = next((i for i in range(min(len(mine), len(theirs), CHECK_TOKENS)) if mine[i] != theirs[i]), -1)
                ok = first < 0 or theirs[first] in check_top5[first]
                cell["token_check"] = {"first_difference": first, "ok": ok}
                print(f"# token check input {n}: " + ("identical first %d" % CHECK_TOKENS if first < 0 else
                      f"first difference at {first}: transformers {mine[first]}, qwenbench {theirs[first]} "
                      f"({'in' if ok else 'NOT in'} transformers' top 5)"), flush=True)
                failures += 0 if ok else 1
        cells.append(cell)
    # "engine" + each cell's "tokens": the file doubles as qwenbench's --expect-tokens input
    doc = {"engine": f"transformers {transformers.__version__} {args.mode}", "meta": meta, "cells": cells}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    print(json.dumps([{k: c[k] for k in ("model", "backend", "context_len", "gen_len", "speed_mean", "speed_std",
                                          "ttft_s_mean", "peak_mem_total_gib")} for c in cells]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
