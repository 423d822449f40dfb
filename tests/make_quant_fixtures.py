#!/usr/bin/env python3
"""make_quant_fixtures.py - quantize the tiny bf16 fixture models into GPTQ-Int4, GPTQ-Int8 and AWQ checkpoints
with the exact packing of the published releases (numpy only; ../shared/reference/formats.md).

For each variant OUT/<name>/ holds
  config.json (+ quantization_config, or quantize_config.json beside it for the old-style variant),
  model.safetensors      the quantized checkpoint: I32 qweight/qzeros/g_idx, F16 scales/biases/norms/embeddings
  dequant.safetensors    every tensor as F32, linears dequantized exactly as the engines must ([N][K] .weight)
  dequant_bf16/          (pow2 variants) the same model as a plain BF16 checkpoint; with power-of-two scales
                         every dequantized weight is exactly representable in bf16, so an engine must produce
                         bit-identical logits on both.
OUT/bad/<case>/ are broken copies of gqa_untied-gptq-int4-real, expected.txt holding the text the refusal
must contain ("OK": must load).
Float weights are the fixture's bf16 values; non-quantized tensors are those values where they are also exact
in f16, else 0 (only values below the f16 normal range), so the F16 and BF16 files hold the same numbers.
Packing is written here from the format description, independently of the C code:
  GPTQ qweight [K/pf, N]: element k of column n in bits bits*(k%pf) of word [k//pf, n]; qzeros [K/g, N/pf]
       packed along N likewise, stored minus one; scales [K/g, N]; g_idx = k // g.
  AWQ  qweight [K, N/8]: nibble i of word [k, c] holds column 8c + ORDER[i], ORDER = [0,2,4,6,1,3,5,7];
       qzeros [K/g, N/8] the same; no g_idx; w = (q - z) * s.

Usage: make_quant_fixtures.py --fixtures tests/fixtures --out BUILD/quant_fixtures
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

# name, source fixture, format, bits, group, scales, options
VARIANTS = [
    ("gqa_untied-gptq-int4-pow2", "gqa_untied", "gptq", 4, 64, "pow2", {}),
    ("gqa_untied-gptq-int8-pow2", "gqa_untied", "gptq", 8, 64, "pow2", {}),
    ("gqa_untied-awq-pow2", "gqa_untied", "awq", 4, 64, "pow2", {}),
    ("gqa_untied-gptq-int4-real", "gqa_untied", "gptq", 4, 64, "real", {}),
    ("gqa_untied-gptq-int8-real", "gqa_untied", "gptq", 8, 64, "real", {"old_config": True}),
    ("gqa_untied-awq-real", "gqa_untied", "awq", 4, 64, "real", {}),
    ("gqa_untied-awq-pow2-padded", "gqa_untied", "awq", 4, 64, "pow2", {"pad_intermediate": 512}),
    ("tied_hd128-gptq-int4-pow2", "tied_hd128", "gptq", 4, 128, "pow2", {}),
    ("tied_hd128-awq-pow2", "tied_hd128", "awq", 4, 128, "pow2", {}),
]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = np.frombuffer(data[base + b:base + e], dtype=np.uint8)
        if t["dtype"] == "BF16":
            arr = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] == "F32":
            arr = raw.view("<f4").astype(np.float32)
        else:
            raise SystemExit(f"{path}: {name}: dtype {t['dtype']} not expected in a bf16 fixture")
        out[name] = arr.reshape(t["shape"])
    return out


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array already of that dtype, little-endian)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def to_bf16_bits(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32)
    assert np.all((u & 0xFFFF) == 0), "value not exact in bf16"
    return (u >> 16).astype("<u2")


def both_exact(v):
    """bf16 values -> values also exact in f16 (others become 0)."""
    v = np.asarray(v, dtype=np.float32)
    with np.errstate(over="ignore"):
        f = v.astype(np.float16).astype(np.float32)
    return np.where(f == v, v, np.float32(0)).astype(np.float32)


def quantize(w, fmt, bits, group, scales_kind):
    """w [N, K] float32 -> q [K, N], zero [K/g, N] (the true zero point), scale f16 [K/g, N], dequant [N, K] f32."""
    N, K = w.shape
    wt = w.T.reshape(K // group, group, N).astype(np.float64)
    qmax = (1 << bits) - 1
    if fmt == "gptq":  # symmetric, as the Qwen2.5 GPTQ releases
        maxabs = np.abs(wt).max(axis=1)
        s = 2.0 * maxabs / qmax
        zero = np.full((K // group, N), 1 << (bits - 1), dtype=np.int64)
    else:  # AWQ: asymmetric zero points
        mx, mn = np.maximum(wt.max(axis=1), 0), np.minimum(wt.min(axis=1), 0)
        s = (mx - mn) / qmax
    s = np.maximum(s, 2.0 ** -20)
    if scales_kind == "pow2":
        s = 2.0 ** np.ceil(np.log2(s))
    s16 = s.astype(np.float16)
    s = s16.astype(np.float64)
    if fmt == "awq":
        zero = np.clip(np.round(-mn / s), 0, qmax).astype(np.int64)
    q = np.clip(np.round(wt / s[:, None, :]) + zero[:, None, :], 0, qmax).astype(np.int64)
    q = q.reshape(K, N)
    zk = np.repeat(zero, group, axis=0)
    sk = np.repeat(s16.astype(np.float32), group, axis=0)
    deq = ((q - zk).astype(np.float32) * sk).T.copy()
    return q, zero, s16, deq


def pack_along_rows(v, bits):
    """v [R, C] small ints -> [R/pf, C] uint32, element r at bits*(r%pf) of word r//pf (GPTQ qweight)."""
    pf = 32 // bits
    R, C = v.shape
    v = v.reshape(R // pf, pf, C).astype(np.uint64)
    out = np.zeros((R // pf, C), dtype=np.uint64)
    for i in range(pf):
        out |= v[:, i, :] << np.uint64(bits * i)
    return out.astype(np.uint32)


def pack_along_cols(v, bits):
    """v [R, C] -> [R, C/pf] uint32, element c at bits*(c%pf) of word c//pf (GPTQ qzeros)."""
    return pack_along_rows(v.T.copy(), bits).T.copy()


def pack_awq(v):
    """v [R, C] 4-bit -> [R, C/8] uint32, nibble i of word c holds column 8c + ORDER[i]."""
    R, C = v.shape
    v = v.reshape(R, C // 8, 8).astype(np.uint64)
    out = np.zeros((R, C // 8), dtype=np.uint64)
    for i in range(8):
        out |= v[:, :, AWQ_ORDER[i]] << np.uint64(4 * i)
    return out.astype(np.uint32)


def self_check():
    """Known values through the packers (the C tests check the same words)."""
    assert pack_awq(np.array([[0, 4, 1, 5, 2, 6, 3, 7]]))[0, 0] == 0x76543210
    assert pack_along_rows(np.arange(8).reshape(8, 1), 4)[0, 0] == 0x76543210
    assert pack_along_rows(np.arange(4).reshape(4, 1), 8)[0, 0] == 0x03020100
    assert pack_along_cols(np.arange(8).reshape(1, 8), 4)[0, 0] == 0x76543210


def make_variant(fixtures, out_root, name, src, fmt, bits, group, scales_kind, opts):
    src_dir = os.path.join(fixtures, src)
    cfg = json.load(open(os.path.join(src_dir, "config.json")))
    t = read_safetensors(os.path.join(src_dir, "model.safetensors"))
    L, I = cfg["num_hidden_layers"], cfg["intermediate_size"]
    pad = opts.get("pad_intermediate", I)
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    quant, deq, bf16 = {}, {}, {}
    for tname, v in t.items():
        if any(f".{lin}.weight" in tname for lin in LINEARS):
            continue
        v = both_exact(v)
        quant[tname] = ("F16", v.astype("<f2"))
        deq[tname] = ("F32", v.astype("<f4"))
        bf16[tname] = ("BF16", to_bf16_bits(v))
    for layer in range(L):
        for lin in LINEARS:
            prefix = f"model.layers.{layer}.{lin}"
            w = both_exact(t[prefix + ".weight"])
            if pad != I and lin in ("mlp.gate_proj", "mlp.up_proj"):
                w = np.concatenate([w, np.zeros((pad - I, w.shape[1]), np.float32)], axis=0)
            if pad != I and lin == "mlp.down_proj":
                w = np.concatenate([w, np.zeros((w.shape[0], pad - I), np.float32)], axis=1)
            q, zero, s16, d = quantize(w, fmt, bits, group, scales_kind)
            K = w.shape[1]
            if fmt == "gptq":
                quant[prefix + ".qweight"] = ("I32", pack_along_rows(q, bits).view("<i4"))
                quant[prefix + ".qzeros"] = ("I32", pack_along_cols(zero - 1, bits).view("<i4"))
                quant[prefix + ".g_idx"] = ("I32", (np.arange(K) // group).astype("<i4"))
            else:
                quant[prefix + ".qweight"] = ("I32", pack_awq(q).view("<i4"))
                quant[prefix + ".qzeros"] = ("I32", pack_awq(zero).view("<i4"))
            quant[prefix + ".scales"] = ("F16", s16.astype("<f2"))
            deq[prefix + ".weight"] = ("F32", d.astype("<f4"))
            if scales_kind == "pow2":
                dd = d
                if pad != I and lin in ("mlp.gate_proj", "mlp.up_proj"):
                    dd = d[:I]
                if pad != I and lin == "mlp.down_proj":
                    dd = d[:, :I]
                bf16[prefix + ".weight"] = ("BF16", to_bf16_bits(dd))
    qcfg = {"quant_method": fmt, "bits": bits, "group_size": group}
    if fmt == "gptq":
        qcfg.update({"desc_act": False, "sym": True, "damp_percent": 0.01, "true_sequential": True})
    else:
        qcfg.update({"version": "gemm", "zero_point": True, "modules_to_not_convert": None})
    qconf = dict(cfg, torch_dtype="float16")
    if opts.get("old_config"):
        old = dict(qcfg)
        del old["quant_method"]
        json.dump(old, open(os.path.join(out, "quantize_config.json"), "w"), indent=2)
    else:
        qconf["quantization_config"] = qcfg
    json.dump(qconf, open(os.path.join(out, "config.json"), "w"), indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), quant)
    write_safetensors(os.path.join(out, "dequant.safetensors"), deq)
    if scales_kind == "pow2":
        bdir = os.path.join(out, "dequant_bf16")
        os.makedirs(bdir, exist_ok=True)
        json.dump(cfg, open(os.path.join(bdir, "config.json"), "w"), indent=2)
        write_safetensors(os.path.join(bdir, "model.safetensors"), bf16)
    return quant, qconf


def make_bad(out_root, quant, qconf):
    """Broken variants of a good GPTQ-Int4 checkpoint, each with expected.txt: the text the refusal must contain."""
    p0 = "model.layers.0.self_attn."
    m0 = "model.layers.0.mlp."

    def case(name, expected, tensors=None, config=None):
        d = os.path.join(out_root, "bad", name)
        os.makedirs(d, exist_ok=True)
        json.dump(config or qconf, open(os.path.join(d, "config.json"), "w"), indent=2)
        write_safetensors(os.path.join(d, "model.safetensors"), tensors or quant)
        with open(os.path.join(d, "expected.txt"), "w") as f:
            f.write(expected)

    def changed(**kw):
        t = dict(quant)
        for k, v in kw.items():
            if v is None:
                del t[k.replace("__", ".")]
            else:
                t[k.replace("__", ".")] = v
        return t

    g = quant[p0 + "q_proj.g_idx"][1].copy()
    g[[0, -1]] = g[[-1, 0]]
    case("act_order_g_idx", "q_proj.g_idx: g_idx[0] = 3, not k / group_size = 0 (act-order", changed(**{p0 + "q_proj.g_idx": ("I32", g)}))
    sc = quant[m0 + "down_proj.scales"][1].copy()
    sc.view("<u2")[1, 2] = 0x7C00
    case("scale_inf", "mlp.down_proj.scales: scale", changed(**{m0 + "down_proj.scales": ("F16", sc)}))
    qw = quant[p0 + "k_proj.qweight"][1]
    case("qweight_shape", "k_proj.qweight: shape [", changed(**{p0 + "k_proj.qweight": ("I32", qw[:-1].copy())}))
    case("qweight_dtype", "o_proj.qweight: dtype F32, expected I32",
         changed(**{p0 + "o_proj.qweight": ("F32", quant[p0 + "o_proj.qweight"][1].view("<f4"))}))
    case("scales_missing", "tensor \"model.layers.0.mlp.up_proj.scales\" is missing",
         changed(**{m0 + "up_proj.scales": None}))
    t = dict(quant)
    t["model.layers.0.self_attn.q_proj.extra"] = ("I32", np.zeros(4, "<i4"))
    case("extra_tensor", "is not used by a 2-layer gptq-int4 Qwen2 model", t)
    t = dict(quant)
    t[p0 + "o_proj.bias"] = ("F16", np.full(quant[p0 + "o_proj.scales"][1].shape[1], 0.5, "<f2"))
    case("o_proj_bias", "o_proj.bias: element 0 is 0.5, but this layer has no bias", t)
    t = dict(quant)
    t[p0 + "o_proj.bias"] = ("F16", np.zeros(quant[p0 + "o_proj.scales"][1].shape[1], "<f2"))
    case("o_proj_zero_bias_ok", "OK", t)
    c = json.loads(json.dumps(qconf))
    c["quantization_config"]["desc_act"] = True
    case("desc_act", "desc_act is true: act-order GPTQ checkpoints are not supported", config=c)
    c = json.loads(json.dumps(qconf))
    c["quantization_config"]["bits"] = 3
    case("bits_3", "bits: 3 is not supported for gptq", config=c)
    c = json.loads(json.dumps(qconf))
    c["quantization_config"]["checkpoint_format"] = "gptq_v2"
    case("gptq_v2", "checkpoint_format: \"gptq_v2\" is not supported", config=c)
    c = json.loads(json.dumps(qconf))
    c["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 64, "version": "gemv"}
    case("awq_gemv", "version: \"gemv\" is not supported (gemm only)", config=c)
    wide = quant[m0 + "gate_proj.scales"][1]
    pad = np.concatenate([wide, wide[:, :32]], axis=1)
    case("padding_not_group", "gate_proj.scales has 416 columns but intermediate_size is 384",
         changed(**{m0 + "gate_proj.scales": ("F16", pad.copy())}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    self_check()
    for v in VARIANTS:
        quant, qconf = make_variant(a.fixtures, a.out, *v)
        if v[0] == "gqa_untied-gptq-int4-real":
            make_bad(a.out, quant, qconf)
    print(f"make_quant_fixtures: {len(VARIANTS)} variants and the refusal cases (bad/) in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
