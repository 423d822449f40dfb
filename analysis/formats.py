"""formats.py - the weight formats and the Qwen2 tensor table as the C code describes them (src/model/).

configs/formats.json is the output of `qwenbench formats --json`, committed; the CTest test model_formats_json
keeps it equal to the C tables. Every format fact analysis/ needs (names, published names, bits, group size,
scale bytes) comes from here, never from a copy of its own.
"""
import json
import os

FORMATS_JSON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "formats.json")


def _load():
    with open(FORMATS_JSON, encoding="utf-8") as f:
        return json.load(f)


TABLE = _load()
FORMATS = {f["name"]: f for f in TABLE["formats"]}          # in the C table's order
FORMAT_ORDER = tuple(FORMATS)                               # ("bf16", "gptq-int8", "gptq-int4", "awq")
PUBLISHED_NAMES = {f["published_name"]: f["name"] for f in TABLE["formats"]}  # "GPTQ-Int4" -> "gptq-int4"
PUBLISHED_FORMAT_ORDER = tuple(PUBLISHED_NAMES)
FAMILY = TABLE["families"]["qwen2"]


def is_dense(name):
    return FORMATS[name]["packing"] == "dense"


def bits(name):
    """Bits per stored weight value; None for dense formats (16-bit)."""
    return None if is_dense(name) else FORMATS[name]["bits"]


def dense_bytes():
    """Bytes of one value of a dense (bf16 / f16) tensor."""
    return FORMATS[FORMAT_ORDER[0]]["bits"] // 8


def default_group_size():
    """The group size of the published quantized releases."""
    return next(f["default_group_size"] for f in TABLE["formats"] if f["packing"] != "dense")
