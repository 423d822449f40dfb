#!/usr/bin/env python3
"""make_seeds.py - seed corpora for the libFuzzer targets (tests/run_fuzz.sh).

Usage: make_seeds.py OUTDIR SOURCE_DIR
Writes OUTDIR/safetensors/ (real-shaped headers: the Qwen2 tensor names and shapes of the tiny preset, the
headers of the committed transformers fixtures with their data cut down, and small valid files of every
dtype) and OUTDIR/config/ (every preset, YaRN, rope_parameters and quantized variants).
"""
import json
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import make_bad_checkpoints as bad  # noqa: E402  (shares the tensor list and file writer)


def header_only(path, limit=4096):
    """A fixture's header with shapes shrunk so the data fits a small seed."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    tensors = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        shape = [min(d, 2) for d in e["shape"]]
        tensors.append((name, e["dtype"], shape))
    tensors.sort(key=lambda t: t[0])
    blob = bad.st_file(tensors, header.get("__metadata__"))
    return blob if len(blob) <= 1 << 16 else None


def main():
    out, src = sys.argv[1], sys.argv[2]
    st_dir, cfg_dir = os.path.join(out, "safetensors"), os.path.join(out, "config")
    os.makedirs(st_dir, exist_ok=True)
    os.makedirs(cfg_dir, exist_ok=True)
    seeds = {"tiny_model": bad.st_file(bad.tiny_tensors(), {"format": "pt"})}
    for dt in ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64",
               "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"]:
        bits = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F4": 4,
                "F6_E2M3": 6, "F6_E3M2": 6}.get(dt, int("".join(ch for ch in dt if ch.isdigit()) or 8))
        n = 8
        blob = b"\x01" * (n * bits // 8)
        header = {"t": {"dtype": dt, "shape": [2, 4], "data_offsets": [0, len(blob)]}}
        seeds[f"dtype_{dt}"] = bad.raw_file(json.dumps(header).encode(), blob)
    seeds["empty"] = bad.raw_file(b"{}")
    seeds["scalar_and_empty"] = bad.st_file([("s", "I64", []), ("e", "F16", [0, 5])], {"a": "b"})
    fixtures = os.path.join(src, "tests", "fixtures")
    for root, _, files in os.walk(fixtures):
        for fn in files:
            if fn.endswith(".safetensors"):
                blob = header_only(os.path.join(root, fn))
                if blob:
                    seeds[f"fixture_{os.path.basename(root)}_{fn}"] = blob
    for name, blob in seeds.items():
        with open(os.path.join(st_dir, name), "wb") as f:
            f.write(blob)
    configs = {}
    presets = os.path.join(src, "configs", "models")
    for fn in sorted(os.listdir(presets)):
        if fn.endswith(".json"):
            with open(os.path.join(presets, fn)) as f:
                configs[fn[:-5]] = f.read()
    base = json.loads(configs.get("qwen2.5-7b", json.dumps(bad.TINY)))
    configs["yarn"] = json.dumps(dict(base, rope_scaling={"type": "yarn", "factor": 4.0,
                                                           "original_max_position_embeddings": 32768}))
    configs["rope_parameters"] = json.dumps(dict(base, rope_parameters={"rope_type": "yarn", "rope_theta": 1e6,
                                                                        "factor": 4.0, "beta_fast": 32}))
    configs["gptq"] = json.dumps(dict(base, quantization_config={"quant_method": "gptq", "bits": 4,
                                                                 "group_size": 128, "desc_act": False, "sym": True}))
    configs["awq"] = json.dumps(dict(base, quantization_config={"quant_method": "awq", "bits": 4,
                                                                "group_size": 128, "version": "gemm",
                                                                "zero_point": True}))
    configs["tiny_corpus"] = json.dumps(bad.TINY)
    for name, text in configs.items():
        with open(os.path.join(cfg_dir, name + ".json"), "w") as f:
            f.write(text)
    print(f"{len(seeds)} safetensors seeds, {len(configs)} config seeds in {out}")


if __name__ == "__main__":
    main()
