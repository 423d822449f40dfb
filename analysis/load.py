"""load.py - read one qwenbench HDF5 results file (schema_version 1, docs/RESULTS.md) into pandas.

    from analysis.load import load_results
    r = load_results("results.h5")      # r.meta (dict), r.cells, r.runs, r.rank_memory (DataFrames)
    r.step_latency(run_row)             # numpy array of the run's n_gen-1 decode step times (s)
    r.cells[r.cells.status == "VALID"]  # string fields are str (decoded, NULs stripped), not bytes

Optional /cells fields (later writers) are read when present: the per-cell bandwidths and noise (speed_cv,
noisy), checks, rope_scaling, and the engine's options as asked (engine_options) and as resolved
(engine_choices), both "key=value;key=value" strings; parse them with parse_key_values(); the energy and
clocks of the timed runs (energy_source, joules_per_token, power_mean_w, ..., throttled; NaN / -1 when not
measured); the --interference cell's speed alone and its ratio beside / alone (alone_speed_mean,
alone_speed_std, interference_ratio: NaN when not measured, absent from older files).

Every problem with the file (missing, not HDF5, a missing or malformed dataset or field, an offset that points
outside its dataset) raises ResultsError with one line naming the file and the dataset/field at fault.
"""
import os

from analysis.deps import require

require(__name__)  # a python3 without numpy/pandas/h5py: MissingPackages, one line naming the fix

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SUPPORTED_SCHEMA_VERSIONS = (1,)

# Fields of each compound dataset and the kind they must have: "S" string, "i" integer, "f" number.
STAT_PREFIXES = ("speed", "ttft_s", "tpot_s", "decode_tok_per_s")
CELL_FIELDS = (
    [("model", "S"), ("quant", "S"), ("backend", "S"), ("context_len", "i"), ("gen_len", "i"),
     ("tp_size", "i"), ("n_ranks", "i"), ("repetitions", "i"), ("warmup", "i"), ("seed", "i"),
     ("prompt_rule", "S"), ("status", "S"), ("reason", "S")]
    + [(f"{p}_{s}", "f") for p in STAT_PREFIXES for s in ("mean", "std", "min", "max")]
    + [("warmup_total_s", "f"), ("peak_mem_total_bytes", "f"), ("peak_mem_total_gib", "f"),
       ("weights_bytes_rank0", "f"), ("kv_bytes_rank0", "f"), ("n_runs", "i"), ("first_run", "i")]
)
# Optional /cells fields read when present (a later writer may record the bandwidth each cell was checked with).
OPTIONAL_CELL_FIELDS = [("copy_bandwidth_gbps", "f"), ("implied_bandwidth_gbps", "f"), ("speed_cv", "f"),
                        ("noisy", "i"), ("checks", "S"), ("rope_scaling", "S"), ("engine_options", "S"),
                        ("engine_choices", "S"), ("energy_source", "S"), ("energy_j", "f"),
                        ("joules_per_token", "f"), ("power_mean_w", "f"), ("power_peak_w", "f"),
                        ("sm_clock_mhz", "f"), ("mem_clock_mhz", "f"), ("temperature_max_c", "f"),
                        ("throttled", "i"), ("throttle_reasons", "i"), ("ranks", "S"), ("hosts", "S"),
                        ("devices", "S"), ("alone_speed_mean", "f"), ("alone_speed_std", "f"),
                        ("interference_ratio", "f")]
RANK_MEMORY_FIELDS = [("cell", "i"), ("rank", "i"), ("peak_bytes", "f")]
RUN_FIELDS = [("cell", "i"), ("repetition", "i"), ("n_prompt", "i"), ("n_gen", "i"), ("total_s", "f"),
              ("prefill_s", "f"), ("decode_s", "f"), ("tok_per_s", "f"), ("decode_tok_per_s", "f"),
              ("tpot_s", "f"), ("step_offset", "i"), ("token_offset", "i")]
OPTIONAL_RUN_FIELDS = [("start_unix_s", "f"), ("end_unix_s", "f")]  # when each run ran (docs/SCHEDULING.md)
META_STRING_ATTRS = ("version", "build_commit", "build_type", "command_line", "start_time", "end_time", "hosts",
                     "devices_json", "driver_version", "cuda_version", "nccl_version", "mpi_version",
                     "hdf5_version", "settings_json")
CELL_STATUSES = ("VALID", "INVALID", "DOES_NOT_FIT", "FAILED")


class ResultsError(Exception):
    """A results file that cannot be analysed; the message is one line naming the file and what is wrong."""


class Results:
    """One file's contents: meta (dict of root attributes), cells, runs, rank_memory (DataFrames),
    step_latency_s and generated_tokens (1-D numpy arrays)."""

    def __init__(self, path, meta, cells, runs, rank_memory, step_latency_s, generated_tokens):
        self.path = path
        self.meta = meta
        self.cells = cells
        self.runs = runs
        self.rank_memory = rank_memory
        self.step_latency_s = step_latency_s
        self.generated_tokens = generated_tokens

    def step_latency(self, run):
        """The decode step times (s) of one run (a row of self.runs)."""
        start = int(run["step_offset"])
        return self.step_latency_s[start:start + max(int(run["n_gen"]) - 1, 0)]

    def tokens(self, run):
        start = int(run["token_offset"])
        return self.generated_tokens[start:start + int(run["n_gen"])]


def parse_key_values(text):
    """{'allreduce': 'auto', ...} from a recorded "allreduce=auto;decode_fusion=none" string (empty or missing
    text: {}). An item without '=' becomes a key with the value ''."""
    if not isinstance(text, str) or not text.strip():
        return {}
    pairs = {}
    for item in text.split(";"):
        item = item.strip()
        if item:
            key, _, value = item.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _decode(value.item())
    return value


def _kind_ok(dtype, want):
    kind = dtype.kind
    if want == "S":
        return kind in ("S", "U", "O")
    if want == "i":
        return kind in ("i", "u")
    return kind in ("f", "i", "u")


def _read_compound(h5, path, name, fields, optional=()):
    if name not in h5:
        raise ResultsError(f"{path}: missing dataset /{name}")
    ds = h5[name]
    import h5py  # local: keeps module import cheap for --help
    if not isinstance(ds, h5py.Dataset):
        raise ResultsError(f"{path}: /{name} is not a dataset")
    if ds.dtype.names is None:
        raise ResultsError(f"{path}: /{name} is not a compound dataset (dtype {ds.dtype})")
    if ds.ndim != 1:
        raise ResultsError(f"{path}: /{name} must be 1-D, has shape {ds.shape}")
    for field, want in fields:
        if field not in ds.dtype.names:
            raise ResultsError(f"{path}: /{name} lacks field '{field}'")
        if not _kind_ok(ds.dtype[field], want):
            kinds = {"S": "a string", "i": "an integer", "f": "a number"}
            raise ResultsError(f"{path}: /{name} field '{field}' must be {kinds[want]}, is {ds.dtype[field]}")
    try:
        data = ds[()]
    except Exception as e:  # h5py raises several types for unreadable data
        raise ResultsError(f"{path}: /{name} cannot be read: {e}") from None
    present = [(f, k) for f, k in optional if f in ds.dtype.names and _kind_ok(ds.dtype[f], k)]
    frame = pd.DataFrame({f: data[f] for f, _ in list(fields) + present})
    for field, want in list(fields) + present:
        if want == "S":
            frame[field] = [_decode(v) for v in frame[field]]
    return frame


def _read_vector(h5, path, name, kind):
    if name not in h5:
        raise ResultsError(f"{path}: missing dataset /{name}")
    ds = h5[name]
    if getattr(ds, "dtype", None) is None or ds.dtype.names is not None or ds.ndim != 1 \
            or not _kind_ok(ds.dtype, kind):
        want = "float" if kind == "f" else "integer"
        raise ResultsError(f"{path}: /{name} must be a 1-D {want} dataset, is "
                           f"{getattr(ds, 'dtype', 'a group')} {getattr(ds, 'shape', '')}".rstrip())
    return np.asarray(ds[()])


def _read_meta(h5, path):
    attrs = h5.attrs
    if "schema_version" not in attrs:
        raise ResultsError(f"{path}: missing root attribute schema_version (not a qwenbench results file?)")
    try:
        version = int(np.asarray(attrs["schema_version"]).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise ResultsError(f"{path}: root attribute schema_version is not an integer") from None
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ResultsError(f"{path}: schema_version {version} is not supported (this analysis reads "
                           f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})")
    meta = {"schema_version": version}
    for name in META_STRING_ATTRS:
        meta[name] = str(_decode(attrs[name])) if name in attrs else ""
    bw = attrs.get("copy_bandwidth_gbps")
    try:
        meta["copy_bandwidth_gbps"] = float(np.asarray(bw).reshape(-1)[0]) if bw is not None else float("nan")
    except (TypeError, ValueError, IndexError):
        raise ResultsError(f"{path}: root attribute copy_bandwidth_gbps is not a number") from None
    return meta


def _check_links(path, cells, runs, rank_memory, n_steps, n_tokens):
    """Offsets and counts must stay inside their datasets, so that later slicing never silently truncates."""
    bad_status = cells.loc[~cells["status"].isin(CELL_STATUSES), "status"]
    if len(bad_status):
        raise ResultsError(f"{path}: /cells row {bad_status.index[0]} has unknown status '{bad_status.iloc[0]}'")
    for i, c in cells.iterrows():
        first, n = int(c["first_run"]), int(c["n_runs"])
        if n < 0 or first < 0 or first + n > len(runs):
            raise ResultsError(f"{path}: /cells row {i}: runs [{first}, {first + n}) outside /runs "
                               f"({len(runs)} rows)")
        if n and (runs["cell"].iloc[first:first + n] != i).any():
            raise ResultsError(f"{path}: /cells row {i}: /runs rows [{first}, {first + n}) belong to another cell")
    for i, r in runs.iterrows():
        n_gen = int(r["n_gen"])
        if not 0 <= int(r["cell"]) < len(cells):
            raise ResultsError(f"{path}: /runs row {i}: cell {int(r['cell'])} outside /cells ({len(cells)} rows)")
        so, to = int(r["step_offset"]), int(r["token_offset"])
        if n_gen < 0 or so < 0 or so + max(n_gen - 1, 0) > n_steps:
            raise ResultsError(f"{path}: /runs row {i}: step_offset {so} + {max(n_gen - 1, 0)} steps outside "
                               f"/step_latency_s ({n_steps} values)")
        if to < 0 or to + n_gen > n_tokens:
            raise ResultsError(f"{path}: /runs row {i}: token_offset {to} + {n_gen} tokens outside "
                               f"/generated_tokens ({n_tokens} values)")
    bad = rank_memory[(rank_memory["cell"] < 0) | (rank_memory["cell"] >= len(cells))]
    if len(bad):
        raise ResultsError(f"{path}: /rank_memory row {bad.index[0]}: cell {int(bad['cell'].iloc[0])} outside "
                           f"/cells ({len(cells)} rows)")


def load_results(path):
    """Read and validate one results file; raises ResultsError (one line) on any problem."""
    if not os.path.exists(path):
        raise ResultsError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ResultsError(f"{path}: is a directory, not a results file")
    import h5py
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as e:
        raise ResultsError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not is_hdf5:
        raise ResultsError(f"{path}: not an HDF5 file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise ResultsError(f"{path}: cannot open as HDF5: {e}") from None
    with h5:
        meta = _read_meta(h5, path)
        cells = _read_compound(h5, path, "cells", CELL_FIELDS, OPTIONAL_CELL_FIELDS)
        runs = _read_compound(h5, path, "runs", RUN_FIELDS, OPTIONAL_RUN_FIELDS)
        rank_memory = _read_compound(h5, path, "rank_memory", RANK_MEMORY_FIELDS)
        steps = _read_vector(h5, path, "step_latency_s", "f").astype(np.float64)
        tokens = _read_vector(h5, path, "generated_tokens", "i")
    _check_links(path, cells, runs, rank_memory, len(steps), len(tokens))
    return Results(path, meta, cells, runs, rank_memory, steps, tokens)
