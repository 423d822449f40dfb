#!/usr/bin/env python3
"""make_bad_checkpoints.py - generate the corpus of hostile checkpoints and configs (issue 5).

Usage: make_bad_checkpoints.py OUTDIR

Writes malformed safetensors files, model directories (index files, shards, symlinks) and config.json files
under OUTDIR, plus OUTDIR/cases.tsv: one line per case, "KIND<TAB>PATH<TAB>EXPECTED", where KIND is
  st      open PATH as one safetensors file
  dir     resolve PATH as a model directory (config.json), plan TP 1, load its weights
  config  parse PATH as a config.json
and EXPECTED is a substring the one-line error must contain ("OK" for the controls that must load). An optional
fourth column FORBIDDEN is text the message must not contain (bytes of a file outside the model directory).
Every message must also be free of raw control and bidirectional-override characters.
tests/io/test_bad_checkpoints.c runs every case. Only the Python standard library is used; nothing here is
committed as a binary, the corpus is regenerated in the build tree by ctest.
"""
import json
import os
import shutil
import struct
import sys

# A tiny model: small enough that every directory case is a few kilobytes.
TINY = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
    "vocab_size": 16, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "max_position_embeddings": 64,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False, "use_sliding_window": False,
    "torch_dtype": "bfloat16",
}

DTYPE_SIZE = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I32": 4, "I64": 8, "U8": 1, "I8": 1}


def tiny_tensors(cfg=TINY):
    """(name, dtype, shape) of every tensor of the tiny model, in checkpoint order."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", "BF16", [V, H])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", "BF16", [H]),
            (p + "self_attn.q_proj.weight", "BF16", [q, H]), (p + "self_attn.q_proj.bias", "BF16", [q]),
            (p + "self_attn.k_proj.weight", "BF16", [kv, H]), (p + "self_attn.k_proj.bias", "BF16", [kv]),
            (p + "self_attn.v_proj.weight", "BF16", [kv, H]), (p + "self_attn.v_proj.bias", "BF16", [kv]),
            (p + "self_attn.o_proj.weight", "BF16", [H, q]),
            (p + "mlp.gate_proj.weight", "BF16", [I, H]), (p + "mlp.up_proj.weight", "BF16", [I, H]),
            (p + "mlp.down_proj.weight", "BF16", [H, I]),
            (p + "post_attention_layernorm.weight", "BF16", [H]),
        ]
    out += [("model.norm.weight", "BF16", [H])]
    if not cfg["tie_word_embeddings"]:
        out += [("lm_head.weight", "BF16", [V, H])]
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def fill(dtype, shape):
    """Deterministic non-zero data: bf16 0x3c00 (1/128) everywhere, or 1.0 in the dtype."""
    n = numel(shape)
    if dtype == "BF16":
        return struct.pack("<H", 0x3c00) * n
    if dtype == "F16":
        return struct.pack("<H", 0x3c00) * n
    if dtype == "F32":
        return struct.pack("<f", 1.0) * n
    if dtype == "F64":
        return struct.pack("<d", 1.0) * n
    return b"\x01" * (n * DTYPE_SIZE[dtype])


def st_file(tensors, meta=None):
    """A valid safetensors image from [(name, dtype, shape, data|None)]."""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for t in tensors:
        name, dtype, shape = t[0], t[1], t[2]
        blob = t[3] if len(t) > 3 and t[3] is not None else fill(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return raw_file(json.dumps(header).encode(), data)


def raw_file(header_bytes, data=b"", declared=None, pad=True):
    if pad:
        header_bytes += b" " * (-len(header_bytes) % 8)
    n = len(header_bytes) if declared is None else declared
    return struct.pack("<Q", n) + header_bytes + data


class Corpus:
    def __init__(self, out):
        self.out = out
        self.cases = []

    def path(self, rel):
        p = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, rel, blob):
        p = self.path(rel)
        with open(p, "wb") as f:
            f.write(blob if isinstance(blob, bytes) else blob.encode())
        return p

    def add(self, kind, path, expected, forbidden=None):
        self.cases.append((kind, path, expected) + ((forbidden,) if forbidden else ()))

    def st(self, name, blob, expected):
        self.cases.append(("st", self.write(f"st/{name}.safetensors", blob), expected))

    def config(self, name, text, expected):
        self.cases.append(("config", self.write(f"config/{name}/config.json", text), expected))

    def model_dir(self, name, expected, cfg=TINY, tensors=None, shards=None, index=None, extra_config=None):
        """A model directory: config.json + model.safetensors, or the given shards {file: tensors} and index."""
        d = os.path.join(self.out, "dir", name)
        os.makedirs(d, exist_ok=True)
        c = dict(cfg)
        if extra_config:
            c.update(extra_config)
        self.write(f"dir/{name}/config.json", json.dumps(c, indent=2))
        if shards is None:
            tensors = tiny_tensors(cfg) if tensors is None else tensors
            self.write(f"dir/{name}/model.safetensors", st_file(tensors))
        else:
            for fname, ts in shards.items():
                self.write(f"dir/{name}/{fname}", st_file(ts) if isinstance(ts, list) else ts)
            if index is None:
                index = {"metadata": {"total_size": 0},
                         "weight_map": {t[0]: f for f, ts in shards.items() if isinstance(ts, list) for t in ts}}
            self.write(f"dir/{name}/model.safetensors.index.json",
                       index if isinstance(index, (str, bytes)) else json.dumps(index, indent=2))
        self.cases.append(("dir", d, expected))
        return d


def safetensors_cases(c):
    good = [("a", "F32", [2, 3]), ("b", "BF16", [4])]
    c.st("control_valid", st_file(good, {"format": "pt"}), "OK")
    c.st("control_scalar_and_empty", st_file([("s", "I64", []), ("e", "F16", [0, 5]), ("x", "U8", [3])]), "OK")
    c.st("empty_file", b"", "shorter than the 8-byte header length")
    c.st("five_bytes", b"\x02\x00\x00\x00\x00", "shorter than the 8-byte header length")
    c.st("header_len_above_100MB", struct.pack("<Q", 100_000_001) + b"{}", "is above the limit")
    c.st("header_len_u64_max", struct.pack("<Q", 2**64 - 1) + b"{}", "is above the limit")
    c.st("header_len_overflow_8", struct.pack("<Q", 2**64 - 8) + b"{}", "is above the limit")
    c.st("header_past_end", struct.pack("<Q", 1000) + b"{}      ", "runs past the end of the file")
    c.st("header_not_utf8", raw_file(b'{"\xff\xfe": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'),
         "header is not valid JSON")
    c.st("header_overlong_utf8", raw_file(b'{"\xc0\xaf": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'),
         "header is not valid JSON")
    c.st("header_not_json", raw_file(b"hello world"), "header is not valid JSON")
    c.st("header_truncated_json", raw_file(b'{"a": {"dtype": "F32"'), "header is not valid JSON")
    c.st("header_is_array", raw_file(b"[1, 2, 3]"), "header must be a JSON object")
    c.st("header_is_string", raw_file(b'"x"'), "header is not valid JSON")
    c.st("header_trailing_garbage", raw_file(b"{} garbage"), "header is not valid JSON")
    c.st("header_two_objects", raw_file(b"{}{}"), "header is not valid JSON")
    c.st("header_nul_byte", raw_file(b'{"a\x00b": 1}'), "header is not valid JSON")
    c.st("header_escaped_nul", raw_file(b'{"a\\u0000b": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'),
         "header is not valid JSON")
    c.st("duplicate_names", raw_file(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                                     b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', b"\0" * 8),
         "duplicate object key")
    c.st("unknown_dtype", raw_file(b'{"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
         'tensor "w": unknown dtype "Q7"')
    c.st("dtype_lowercase", raw_file(b'{"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": unknown dtype "f32"')
    c.st("dtype_not_string", raw_file(b'{"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": dtype must be a string')
    c.st("missing_dtype", raw_file(b'{"w": {"shape": [1], "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": missing dtype')
    c.st("missing_offsets", raw_file(b'{"w": {"dtype": "F32", "shape": [1]}}', b"\0" * 4),
         'tensor "w": missing data_offsets')
    c.st("entry_not_object", raw_file(b'{"w": [1, 2]}'), 'tensor "w": entry must be an object')
    c.st("shape_negative", raw_file(b'{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": shape[0] must be a non-negative integer')
    c.st("shape_float", raw_file(b'{"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": shape[0] must be a non-negative integer')
    c.st("shape_not_array", raw_file(b'{"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}}', b"\0" * 4),
         'tensor "w": shape must be an array')
    c.st("shape_too_many_dims", raw_file(b'{"w": {"dtype": "U8", "shape": [1,1,1,1,1,1,1,1,1], '
                                         b'"data_offsets": [0, 1]}}', b"\0"), "shape has 9 entries (at most 8)")
    c.st("shape_product_overflow", raw_file(b'{"w": {"dtype": "U8", "shape": [4294967296, 4294967296, 16], '
                                            b'"data_offsets": [0, 0]}}'), 'tensor "w": shape product overflows')
    c.st("byte_size_overflow", raw_file(b'{"w": {"dtype": "F64", "shape": [4611686018427387904], '
                                        b'"data_offsets": [0, 0]}}'), "byte size (shape x dtype size) overflows")
    c.st("int_too_big_for_json", raw_file(b'{"w": {"dtype": "U8", "shape": [99999999999999999999], '
                                          b'"data_offsets": [0, 0]}}'), "header is not valid JSON")
    c.st("byte_count_mismatch", raw_file(b'{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', b"\0" * 8),
         "data_offsets span 8 bytes but shape x dtype is 12 bytes")
    c.st("f4_odd_count", raw_file(b'{"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}', b"\0" * 2),
         "are not a whole number of bytes")
    c.st("offsets_three", raw_file(b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}', b"\0"),
         "data_offsets has 3 entries")
    c.st("offsets_one", raw_file(b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [1]}}', b"\0"),
         "data_offsets must be [begin, end]")
    c.st("offsets_end_before_begin", raw_file(b'{"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 2]}}',
                                              b"\0" * 4), "is before begin")
    c.st("offsets_not_from_zero", raw_file(b'{"w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}',
                                           b"\0" * 8), "leaves a gap")
    c.st("offsets_gap", raw_file(b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
                                 b'"b": {"dtype": "U8", "shape": [4], "data_offsets": [6, 10]}}', b"\0" * 10),
         'tensor "b": data_offsets begin 6 leaves a gap')
    c.st("offsets_overlap", raw_file(b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
                                     b'"b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}', b"\0" * 6),
         "overlaps the previous tensor")
    c.st("offsets_alias_same_bytes", raw_file(b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
                                              b'"b": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}', b"\0" * 4),
         "overlaps the previous tensor")
    c.st("offsets_past_file", raw_file(b'{"a": {"dtype": "U8", "shape": [16], "data_offsets": [0, 16]}}', b"\0" * 4),
         "runs past the end of the file")
    c.st("offsets_huge", raw_file(b'{"a": {"dtype": "U8", "shape": [2000000000000000000], '
                                  b'"data_offsets": [0, 2000000000000000000]}}', b"\0" * 4),
         "runs past the end of the file")
    c.st("trailing_bytes", raw_file(b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}', b"\0" * 9),
         "5 trailing bytes after the last tensor")
    c.st("trailing_bytes_no_tensors", raw_file(b"{}", b"\0" * 3), "3 trailing bytes after the header")
    c.st("metadata_not_string", raw_file(b'{"__metadata__": {"format": 1}}'), '__metadata__: value of "format" must be a string')
    c.st("metadata_nested", raw_file(b'{"__metadata__": {"format": {"a": "b"}}}'), "__metadata__: value of")
    c.st("metadata_not_object", raw_file(b'{"__metadata__": "pt"}'), "__metadata__ must be an object of strings")
    # deep nesting must not exhaust the stack
    c.st("deep_nesting", raw_file(b'{"a": ' + b"[" * 200000 + b"]" * 200000 + b"}"), "header is not valid JSON")
    # millions of tiny entries: refused by the pre-scan, in time and memory linear in the header
    many = b"{" + b",".join(b'"t%d":{}' % i for i in range(2_000_000)) + b"}"
    c.st("millions_of_entries", raw_file(many), "more than the limit of 131072 tensors")
    values = b'{"w": {"dtype": "U8", "shape": [' + b",".join([b"1"] * 3_500_000) + b'], "data_offsets": [0, 1]}}'
    c.st("millions_of_values", raw_file(values), "JSON values, more than the limit")
    entries = b"{" + b",".join(b'"t%06d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}' % i
                               for i in range(131080)) + b"}"
    c.st("too_many_tensors", raw_file(entries), "more than the limit of 131072 tensors")


def directory_cases(c, out):
    full = tiny_tensors()
    first, second = full[:7], full[7:]
    two = {"model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second}
    c.model_dir("control_single", "OK")
    c.model_dir("control_sharded", "OK", shards=two)
    c.model_dir("control_tied", "OK", cfg=dict(TINY, tie_word_embeddings=True))
    c.model_dir("control_f32_norms", "OK", tensors=[(n, "F32" if n.endswith("norm.weight") else d, s)
                                                   for n, d, s in full])
    # index: paths leading out
    outside = c.write("dir/outside.safetensors", st_file(second))
    idx = {"weight_map": {t[0]: "model-00001-of-00002.safetensors" for t in first}}
    idx["weight_map"].update({t[0]: "../outside.safetensors" for t in second})
    c.model_dir("index_dotdot", '".." is not allowed in shard paths',
                shards={"model-00001-of-00002.safetensors": first}, index=idx)
    idx = {"weight_map": {t[0]: "model-00001-of-00002.safetensors" for t in first}}
    idx["weight_map"].update({t[0]: "sub/../../outside.safetensors" for t in second})
    c.model_dir("index_dotdot_nested", "is not allowed in shard paths",
                shards={"model-00001-of-00002.safetensors": first}, index=idx)
    idx = {"weight_map": {t[0]: "model-00001-of-00002.safetensors" for t in first}}
    idx["weight_map"].update({t[0]: outside for t in second})
    c.model_dir("index_absolute", "absolute paths are not allowed",
                shards={"model-00001-of-00002.safetensors": first}, index=idx)
    d = c.model_dir("index_symlink_out", "outside the model directory", shards=two)
    os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
    os.symlink(os.path.join("..", "outside.safetensors"), os.path.join(d, "model-00002-of-00002.safetensors"))
    d = c.model_dir("index_symlink_dir_out", "outside the model directory",
                    shards={"model-00001-of-00002.safetensors": first},
                    index={"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                                              [(t[0], "link/outside.safetensors") for t in second])})
    os.symlink("..", os.path.join(d, "link"))
    d = c.model_dir("index_symlink_inside", "OK", shards=two)  # a symlink that stays inside is fine
    os.rename(os.path.join(d, "model-00002-of-00002.safetensors"), os.path.join(d, "real-2.safetensors"))
    os.symlink("real-2.safetensors", os.path.join(d, "model-00002-of-00002.safetensors"))
    c.model_dir("index_missing_shard", "missing shard", shards={"model-00001-of-00002.safetensors": first},
                index={"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                                          [(t[0], "model-00002-of-00002.safetensors") for t in second])})
    c.model_dir("index_empty_shard_name", "empty shard file name", shards={"model-00001-of-00002.safetensors": first},
                index={"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                                          [(t[0], "") for t in second])})
    d = c.model_dir("index_shard_is_directory", "not a regular file", shards={"model-00001-of-00002.safetensors": first},
                    index={"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                                              [(t[0], "shard_dir") for t in second])})
    os.makedirs(os.path.join(d, "shard_dir"), exist_ok=True)
    both = {"model-00001-of-00002.safetensors": first + [second[0]], "model-00002-of-00002.safetensors": second}
    idx = {"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                              [(t[0], "model-00002-of-00002.safetensors") for t in second])}
    c.model_dir("tensor_in_two_shards", "is in two shards", shards=both, index=idx)
    c.model_dir("index_duplicate_key", "duplicate object key", shards=two,
                index='{"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors", '
                      '"model.norm.weight": "model-00001-of-00002.safetensors"}}')
    idx = {"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in full])}
    c.model_dir("tensor_missing_from_shard", "the index maps it to this shard, which does not contain it",
                shards=two, index=idx)
    idx = {"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                              [(t[0], "model-00002-of-00002.safetensors") for t in second[1:]])}
    c.model_dir("tensor_not_in_index", "is not listed in model.safetensors.index.json", shards=two, index=idx)
    c.model_dir("index_not_json", "model.safetensors.index.json: invalid JSON", shards=two, index="{weight_map: 1}")
    c.model_dir("index_is_array", "top level must be a JSON object", shards=two, index="[]")
    c.model_dir("index_no_weight_map", "weight_map: missing", shards=two, index={"metadata": {}})
    c.model_dir("index_weight_map_array", "weight_map: must be an object", shards=two, index={"weight_map": []})
    c.model_dir("index_shard_not_string", "shard name must be a string", shards=two,
                index={"weight_map": {"model.norm.weight": 3}})
    c.model_dir("index_metadata_not_object", "metadata: must be an object", shards=two,
                index={"metadata": 5, "weight_map": {}})
    c.model_dir("shard_malformed", "model-00002-of-00002.safetensors: file is 3 bytes", shards={
        "model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": b"abc"},
        index={"weight_map": dict([(t[0], "model-00001-of-00002.safetensors") for t in first] +
                                  [(t[0], "model-00002-of-00002.safetensors") for t in second])})
    # against the model
    c.model_dir("missing_tensor", 'tensor "model.layers.0.mlp.up_proj.weight" is missing',
                tensors=[t for t in full if t[0] != "model.layers.0.mlp.up_proj.weight"])
    c.model_dir("missing_lm_head", '"lm_head.weight" is missing and tie_word_embeddings is false',
                tensors=[t for t in full if t[0] != "lm_head.weight"])
    c.model_dir("extra_tensor", 'tensor "model.layers.1.mlp.up_proj.weight" is not used by a 1-layer Qwen2 model',
                tensors=full + [("model.layers.1.mlp.up_proj.weight", "BF16", [16, 8])])
    c.model_dir("shape_mismatch", "model.layers.0.mlp.gate_proj.weight: shape [16, 4] but config says [16, 8]",
                tensors=[(n, d, [16, 4] if n.endswith("gate_proj.weight") else s) for n, d, s in full])
    c.model_dir("shape_transposed", "model.layers.0.mlp.down_proj.weight: shape [16, 8] but config says [8, 16]",
                tensors=[(n, d, [16, 8] if n.endswith("down_proj.weight") else s) for n, d, s in full])
    c.model_dir("shape_rank3", "model.norm.weight: shape [2, 2, 2] but config says [8]",
                tensors=[(n, d, [2, 2, 2] if n == "model.norm.weight" else s) for n, d, s in full])
    c.model_dir("dtype_i32", "model.layers.0.self_attn.q_proj.weight: dtype I32 is not supported (BF16, F16 or F32)",
                tensors=[(n, "I32" if n.endswith("q_proj.weight") else d, s) for n, d, s in full])
    c.model_dir("dtype_f64", "model.embed_tokens.weight: dtype F64 is not supported",
                tensors=[(n, "F64" if n.startswith("model.embed") else d, s) for n, d, s in full])
    c.model_dir("norm_not_finite", "model.norm.weight: element 0 is not finite",
                tensors=[(n, d, s, struct.pack("<H", 0x7fc0) * 8 if n == "model.norm.weight" else None)
                         for n, d, s in full])
    c.model_dir("config_disagrees", "shape [16, 8] but config says [32, 8]", extra_config={"vocab_size": 32})
    c.model_dir("quantized_config", "model.embed_tokens.weight: shape [16, 8] but config says [16, 64]", extra_config={
        "hidden_size": 64, "head_dim": 32, "intermediate_size": 64, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": False}})
    c.model_dir("quantized_desc_act", "desc_act is true: act-order GPTQ checkpoints are not supported", extra_config={
        "hidden_size": 64, "head_dim": 32, "intermediate_size": 64, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": True}})
    d = c.model_dir("no_weights", "no model.safetensors or model.safetensors.index.json in this directory")
    os.remove(os.path.join(d, "model.safetensors"))
    d = c.model_dir("no_config", "no config.json in this directory")
    os.remove(os.path.join(d, "config.json"))
    d = c.model_dir("model_file_symlink_out", "outside the model directory")
    os.remove(os.path.join(d, "model.safetensors"))
    os.symlink(outside, os.path.join(d, "model.safetensors"))


def containment_cases(c, out):
    """Issue 20 item 3: every file of a model directory (config.json, quantize_config.json, the index, shards)
    is read only beneath the directory; symlinks out are refused even when the outside file is valid, and an
    invalid outside file's bytes are never echoed. Regular files only: a FIFO never blocks."""
    full = tiny_tensors()
    first, second = full[:7], full[7:]
    two = {"model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second}
    secret = "SECRET-not-json-4242"
    outside_cfg = c.write("outside/config.json", json.dumps(TINY))
    outside_bad = c.write("outside/secret.txt", secret + "\n")
    outside_q = c.write("outside/quantize_config.json", json.dumps({"bits": 4, "group_size": 32}))

    def relink(d, name, target):
        p = os.path.join(d, name)
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)

    d = c.model_dir("config_symlink_out_valid", "config.json: resolves to")
    relink(d, "config.json", outside_cfg)
    d = c.model_dir("config_symlink_out_invalid", "outside the model directory")
    relink(d, "config.json", os.path.relpath(outside_bad, d))
    c.cases[-1] = c.cases[-1] + (secret[:6],)
    d = c.model_dir("config_symlink_dir_out", "outside the model directory")
    os.remove(os.path.join(d, "config.json"))
    os.symlink(os.path.dirname(outside_cfg), os.path.join(d, "sub"))
    relink(d, "config.json", "sub/config.json")
    d = c.model_dir("quantize_config_symlink_out", "quantize_config.json: resolves to")
    relink(d, "quantize_config.json", outside_q)
    d = c.model_dir("quantize_config_symlink_out_invalid", "outside the model directory")
    relink(d, "quantize_config.json", outside_bad)
    c.cases[-1] = c.cases[-1] + (secret[:6],)
    outside_index = c.write("outside/model.safetensors.index.json", json.dumps(
        {"weight_map": {t[0]: f for f, ts in two.items() for t in ts}}))
    d = c.model_dir("index_file_symlink_out", "model.safetensors.index.json: resolves to", shards=two)
    relink(d, "model.safetensors.index.json", outside_index)
    d = c.model_dir("index_file_symlink_out_invalid", "outside the model directory", shards=two)
    relink(d, "model.safetensors.index.json", outside_bad)
    c.cases[-1] = c.cases[-1] + (secret[:6],)
    # FIFOs: opened non-blocking and refused as not regular (a blocking open would hang the test)
    for name, kw in [("config.json", {}), ("quantize_config.json", {}), ("model.safetensors", {}),
                     ("model.safetensors.index.json", {"shards": two})]:
        d = c.model_dir("fifo_" + name.replace(".", "_"), name + ": not a regular file", **kw)
        p = os.path.join(d, name)
        if os.path.lexists(p):
            os.remove(p)
        os.mkfifo(p)
    # a symlink inside the directory stays fine for every kind
    d = c.model_dir("config_symlink_inside", "OK")
    os.rename(os.path.join(d, "config.json"), os.path.join(d, "real-config.json"))
    os.symlink("real-config.json", os.path.join(d, "config.json"))


def hf_cache_cases(c, out):
    """Issue 20 item 4: the Hugging Face cache exception covers exactly the real layout:
    models--NAME/snapshots/REV/FILE -> ../../blobs/HASH with blobs a real directory."""
    files = {"config.json": json.dumps(TINY).encode(), "model.safetensors": st_file(tiny_tensors())}

    def cache(name, repo="models--org--tiny", blobs_link=None, links=None):
        root = os.path.join(out, "hf", name, repo)
        snap = os.path.join(root, "snapshots", "0123abcd")
        os.makedirs(snap, exist_ok=True)
        if blobs_link is None:
            os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
        else:
            os.symlink(blobs_link, os.path.join(root, "blobs"))
        for i, (fname, blob) in enumerate(files.items()):
            target = (links or {}).get(fname)
            if target == "":  # a regular file in the snapshot itself
                with open(os.path.join(snap, fname), "wb") as f:
                    f.write(blob)
                continue
            if target is None:
                h = "%040x" % (i + 1)
                with open(os.path.join(root, "blobs", h), "wb") as f:
                    f.write(blob)
                target = os.path.join("..", "..", "blobs", h)
            os.symlink(target, os.path.join(snap, fname))
        return snap

    c.add("dir", cache("real_layout"), "OK")
    # blobs -> / : the snapshot links ../../blobs/<absolute path of any file>
    secret = c.write("hf/outside/secret.bin", b"SECRET!!" + b"x" * 64)
    outside_st = c.write("hf/outside/model.safetensors", files["model.safetensors"])
    rel_secret = os.path.join("..", "..", "blobs", secret.lstrip("/"))
    rel_st = os.path.join("..", "..", "blobs", outside_st.lstrip("/"))
    snap = cache("blobs_to_root_valid", blobs_link="/", links={"config.json": "", "model.safetensors": rel_st})
    c.add("dir", snap, "model.safetensors: resolves to")
    snap = cache("blobs_to_root_secret", blobs_link="/", links={"config.json": "", "model.safetensors": rel_secret})
    # the old message printed the first 8 bytes as the header length (2387281934192690515 for "SECRET!!")
    c.add("dir", snap, "the cache's blobs is a symlink (refused)", str(struct.unpack("<Q", b"SECRET!!")[0]))
    # a real blobs directory, but the snapshot links outside the cache
    snap = cache("link_outside_cache", links={"model.safetensors": outside_st})
    c.add("dir", snap, "outside the model directory")
    # not the cache layout (no models-- prefix): no exception
    snap = cache("not_models_prefix", repo="datasets--org--tiny")
    c.add("dir", snap, "outside the model directory")
    # a blob in a subdirectory of blobs/ is not the layout either
    snap = cache("blob_in_subdir", links={"model.safetensors": "../../blobs/sub/x"})
    os.makedirs(os.path.join(os.path.dirname(os.path.dirname(snap)), "blobs", "sub"), exist_ok=True)
    with open(os.path.join(os.path.dirname(os.path.dirname(snap)), "blobs", "sub", "x"), "wb") as f:
        f.write(files["model.safetensors"])
    c.add("dir", snap, "outside the model directory")


def escaping_and_finite_cases(c):
    """Issue 20 items 8 and 11: names with control and bidi characters are escaped in every message;
    non-finite weights are refused naming the tensor."""
    full = tiny_tensors()
    c.model_dir("tensor_name_bidi", "\\u{202e}",
                tensors=full + [("model.layers.0.evil\u202e\u2066gpj.exe\x1b[31m", "BF16", [2])])
    c.model_dir("nan_in_embedding", "model.embed_tokens.weight: element [3, 5] of this rank's slice is not finite",
                tensors=[(n, d, s, (struct.pack("<H", 0x3c00) * (3 * 8 + 5) + struct.pack("<H", 0x7fc0) +
                                    struct.pack("<H", 0x3c00) * (16 * 8 - 3 * 8 - 6))
                          if n == "model.embed_tokens.weight" else None) for n, d, s in full])
    c.model_dir("inf_in_down_proj", "model.layers.0.mlp.down_proj.weight: element [0, 0] of this rank's slice is not",
                tensors=[(n, d, s, struct.pack("<H", 0xff80) + struct.pack("<H", 0x3c00) * (8 * 16 - 1)
                          if n.endswith("down_proj.weight") else None) for n, d, s in full])
    c.model_dir("f32_overflow_in_lm_head", "lm_head.weight: element [0, 1] of this rank's slice is not finite",
                tensors=[(n, "F32" if n == "lm_head.weight" else d, s,
                          struct.pack("<f", 1.0) + struct.pack("<f", float("inf")) + struct.pack("<f", 1.0) * 126
                          if n == "lm_head.weight" else None) for n, d, s in full])


def config_cases(c):
    def cfg(**kw):
        d = dict(TINY)
        for k, v in kw.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return json.dumps(d)

    c.config("control", cfg(), "OK")
    c.config("missing_vocab", cfg(vocab_size=None), "vocab_size: missing")
    c.config("missing_layers", cfg(num_hidden_layers=None), "num_hidden_layers: missing")
    c.config("mistyped_hidden", cfg(hidden_size="8"), "hidden_size: must be an integer, got a string")
    c.config("mistyped_heads", cfg(num_attention_heads=[2]), "num_attention_heads: must be an integer, got an array")
    c.config("mistyped_tie", cfg(tie_word_embeddings="yes"), "tie_word_embeddings: must be true or false")
    c.config("mistyped_eps", cfg(rms_norm_eps="1e-6"), "rms_norm_eps: must be a number")
    c.config("zero_hidden", cfg(hidden_size=0), "hidden_size: 0 is out of range")
    c.config("zero_heads", cfg(num_attention_heads=0), "num_attention_heads: 0 is out of range")
    c.config("negative_layers", cfg(num_hidden_layers=-3), "num_hidden_layers: -3 is out of range")
    c.config("negative_intermediate", cfg(intermediate_size=-1), "intermediate_size: -1 is out of range")
    c.config("int32_wrap_vocab", cfg(vocab_size=2**32 + 16), "vocab_size: 4294967312 is out of range")
    c.config("int64_vocab", cfg(vocab_size=2**63 - 1), "vocab_size: 9223372036854775807 is out of range")
    c.config("huge_int_vocab", cfg(vocab_size=10**30), "invalid JSON")
    c.config("absurd_vocab", cfg(vocab_size=2_000_000), "vocab_size: 2000000 is out of range [1, 1048576]")
    c.config("absurd_positions", cfg(max_position_embeddings=10**9), "max_position_embeddings: 1000000000 is out of range")
    c.config("absurd_hidden", cfg(hidden_size=1 << 20, head_dim=None), "hidden_size: 1048576 is out of range")
    c.config("absurd_layers", cfg(num_hidden_layers=100000), "num_hidden_layers: 100000 is out of range")
    c.config("absurd_intermediate", cfg(intermediate_size=1 << 30), "intermediate_size: 1073741824 is out of range")
    c.config("product_overflow_params", cfg(vocab_size=1048576, hidden_size=65536, intermediate_size=262144,
                                            num_hidden_layers=1024, num_attention_heads=64, num_key_value_heads=64,
                                            head_dim=1024, max_position_embeddings=1048576),
             "parameters, above the limit")
    c.config("heads_not_divisible_by_kv", cfg(num_attention_heads=2, num_key_value_heads=3),
             "num_key_value_heads: 3 is out of range [1, num_attention_heads 2]")
    c.config("heads_mod_kv", cfg(num_attention_heads=6, num_key_value_heads=4, head_dim=None, hidden_size=12),
             "num_key_value_heads: must divide num_attention_heads (6 % 4 != 0)")
    c.config("hidden_not_heads_x_hd", cfg(hidden_size=10, head_dim=None, num_attention_heads=4, num_key_value_heads=2),
             "hidden_size: 10 is not divisible by num_attention_heads 4 (and head_dim is absent)")
    c.config("odd_head_dim", cfg(head_dim=5), "head_dim: 5 must be even")
    c.config("rope_unknown", cfg(rope_scaling={"type": "linear", "factor": 2.0}), 'unsupported rope scaling type "linear"')
    c.config("rope_unknown_parameters", cfg(rope_parameters={"rope_type": "llama3", "factor": 8.0}),
             'rope_parameters.rope_type: unsupported rope scaling type "llama3"')
    c.config("rope_yarn_no_factor", cfg(rope_scaling={"type": "yarn"}), "rope_scaling.factor: missing")
    c.config("rope_yarn_nan_factor", cfg(rope_scaling={"type": "yarn", "factor": 1e400}), "invalid JSON")
    c.config("rope_yarn_big_factor", cfg(rope_scaling={"type": "yarn", "factor": 1e9}), "rope_scaling.factor: 1e+09 is out of range")
    c.config("rope_theta_negative", cfg(rope_theta=-10000.0), "rope_theta: -10000 is out of range")
    c.config("quant_bad_bits", cfg(quantization_config={"quant_method": "gptq", "bits": 3, "group_size": 32}),
             "quantization_config.bits: 3 is not supported for gptq")
    c.config("quant_bad_group", cfg(quantization_config={"quant_method": "gptq", "bits": 4, "group_size": 0}),
             "quantization_config.group_size: 0 is not supported")
    c.config("quant_group_not_dividing", cfg(quantization_config={"quant_method": "awq", "bits": 4, "group_size": 64}),
             "hidden_size 8 is not divisible by 64")
    c.config("quant_unknown_method", cfg(quantization_config={"quant_method": "hqq", "bits": 4, "group_size": 32}),
             'quant_method: "hqq" is not supported')
    c.config("model_type_llama", cfg(model_type="llama"), 'model_type: "llama" is not supported')
    c.config("sliding_window_on", cfg(use_sliding_window=True), "use_sliding_window: true is not supported")
    c.config("not_json", "{vocab_size: 16}", "invalid JSON at line 1")
    c.config("duplicate_key", '{"vocab_size": 16, "vocab_size": 32}', "duplicate object key")
    c.config("top_level_array", "[1, 2]", "top level must be a JSON object")
    c.config("empty", "", "invalid JSON")
    c.config("not_utf8", b'{"model_type": "\xff"}', "invalid JSON")
    c.config("deep_nesting", '{"a": ' + "[" * 100000 + "]" * 100000 + "}", "invalid JSON")
    c.config("too_large", '{"pad": "' + "x" * (17 * 1024 * 1024) + '"}', "is larger than the limit")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    c = Corpus(out)
    safetensors_cases(c)
    directory_cases(c, out)
    containment_cases(c, out)
    hf_cache_cases(c, out)
    escaping_and_finite_cases(c)
    config_cases(c)
    with open(os.path.join(out, "cases.tsv"), "w", encoding="utf-8") as f:
        for case in c.cases:
            f.write("\t".join(case) + "\n")
    print(f"{len(c.cases)} cases in {out}")


if __name__ == "__main__":
    main()
