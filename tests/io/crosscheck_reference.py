#!/usr/bin/env python3
"""crosscheck_reference.py - compare qwenbench's safetensors handling with the reference implementations.

Run where torch, safetensors and transformers are installed (the GPU machine):
  python3 tests/io/crosscheck_reference.py CORPUS_DIR [EXPORTED_CHECKPOINT_DIR...]
1. Every "st" case of the hostile corpus (tests/make_bad_checkpoints.py) through safetensors.safe_open: a
   file qwenbench refuses must be refused by the reference too, unless qwenbench is stricter on purpose
   (its tensor-count limit); controls must load in both.
2. Each checkpoint written by qwenbench (qb_weights_export) loads in transformers' Qwen2ForCausalLM with no
   missing or unexpected keys, and every tensor equals the file's bytes.
Exit status non-zero on any disagreement.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

# Limits the reference does not have: tensor and JSON-value counts, at most 8 dimensions, and no NUL byte
# in a tensor name (jansson refuses it; no checkpoint needs it).
STRICTER_ON_PURPOSE = {"too_many_tensors", "millions_of_values", "shape_too_many_dims", "header_escaped_nul"}


def check_corpus(corpus):
    bad = 0
    with open(os.path.join(corpus, "cases.tsv")) as f:
        cases = [line.rstrip("\n").split("\t") for line in f]
    for kind, path, expected in cases:
        if kind != "st":
            continue
        name = os.path.basename(path).replace(".safetensors", "")
        try:
            with safe_open(path, framework="pt") as st:
                for k in st.keys():
                    st.get_tensor(k)
            ref_ok = True
            why = ""
        except Exception as e:  # the reference raises various types
            ref_ok = False
            why = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        ours_ok = expected == "OK"
        agree = ref_ok == ours_ok or (ref_ok and name in STRICTER_ON_PURPOSE)
        print(f"{'ok  ' if agree else 'DIFF'} {name:36s} ours={'accept' if ours_ok else 'refuse'} "
              f"reference={'accept' if ref_ok else 'refuse'} {why}")
        bad += not agree
    return bad


def check_export(d):
    from transformers import AutoModelForCausalLM
    model, info = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.bfloat16, output_loading_info=True)
    problems = [f"{k}: {v}" for k, v in info.items() if v]
    files = [f for f in os.listdir(d) if f.endswith(".safetensors")]
    state = {}
    for fn in files:
        state.update(load_file(os.path.join(d, fn)))
    sd = model.state_dict()
    cfg = json.load(open(os.path.join(d, "config.json")))
    for k, v in state.items():
        if k not in sd:
            problems.append(f"{k} not in the model")
        elif not torch.equal(sd[k].to(torch.bfloat16), v):
            problems.append(f"{k} differs")
    if cfg.get("tie_word_embeddings"):
        if not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight):
            problems.append("lm_head not tied")
    print(f"{'ok  ' if not problems else 'DIFF'} transformers loads {d} ({len(state)} tensors) {problems[:5]}")
    return len(problems)


def main():
    bad = check_corpus(sys.argv[1])
    for d in sys.argv[2:]:
        bad += check_export(d)
    print(f"{bad} disagreement(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
