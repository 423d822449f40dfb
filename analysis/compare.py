"""compare.py - put qwenbench cells beside another run of qwenbench, the published Qwen2.5 table and a peer engine.

Runs:  python3 -m analysis.compare A.h5 B.h5 [C.h5 ...] [--csv OUT.csv] [--min-diff-pct 1]
Every later file is compared with the first (A). Cells match when backend, model (its Qwen2.5 size, else its
name), format, input length, generated length and TP size are equal; when a file holds several cells of one
such key (a sweep over engine options), they pair by equal engine_options, the rest is listed as unmatched.
Per pair: both speeds as `mean ± std (runs)`, the ratio B/A of the mean speeds, a verdict and the engine options
(asked) and choices (resolved kernels) whose values differ (the /cells strings engine_options and
engine_choices; "not recorded" when a file predates them).
Verdict rule (speed = generated tokens / total time, as in the report):
    n/a     either cell is not VALID, or either has fewer than 2 timed runs (no spread to judge noise by);
    faster  B - A > 2 x sqrt(se_A^2 + se_B^2), se = speed_std / sqrt(runs) (the standard error of each mean),
            and B/A - 1 > --min-diff-pct (default 1 %: repetitions inside one process miss the noise between
            processes, clocks and temperatures, so smaller steady differences are not called);
    slower  the same with B below A;
    same    otherwise: the difference is within the noise of both spreads.
A NOISY cell (noisy = 1 in the file) keeps its verdict but is marked NOISY.

Published (analysis/data/qwen2.5-speed-a100.csv, see analysis/data/README.md): measured on an A100 80GB, i.e.
another card. It is shown next to our numbers for context only and never divided into them.
Peer: cells of another engine (backend column other than cpu/cuda, e.g. "transformers") measured on the same
machine, from the same files or from --peer files. The ratio qwenbench / peer is the speed_mean quotient of
matching VALID cells: same model size, format, input length and generated length (same GPU count preferred).
"""
import argparse
import math
import os
import sys

from analysis.deps import require

PROG = "qwenbench-compare"
require(__name__, PROG)  # before pandas: one line and exit 2 when the packages are missing

import pandas as pd  # noqa: E402

from analysis.formats import PUBLISHED_NAMES  # noqa: E402
from analysis.roofline import size_label  # noqa: E402

QWENBENCH_BACKENDS = ("cpu", "cuda")
PUBLISHED_CARD = "A100 80GB"
DEFAULT_PUBLISHED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "qwen2.5-speed-a100.csv")
PUBLISHED_QUANTS = dict(PUBLISHED_NAMES)  # "GPTQ-Int4" -> "gptq-int4" (configs/formats.json)
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


# ---- one run against another ----

MATCH_KEYS = ("backend", "model_key", "quant_key", "context_len", "gen_len", "tp_size")
VERDICT_SIGMAS = 2.0
DEFAULT_MIN_DIFF_PCT = 1.0
META_COMPARED = ("version", "build_commit", "build_type", "hosts", "driver_version", "cuda_version",
                 "nccl_version", "mpi_version", "hdf5_version")
PAIR_COLUMNS = ["model", "quant", "backend", "tp_size", "context_len", "gen_len", "a_cell", "b_cell",
                "a_status", "b_status", "a_speed_mean", "a_speed_std", "a_runs", "b_speed_mean", "b_speed_std",
                "b_runs", "ratio", "diff", "diff_se", "verdict", "why", "a_noisy", "b_noisy", "options_differ",
                "choices_differ"]


def _text(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def speed_standard_error(cell):
    """The standard error of a cell's mean speed: sample stddev / sqrt(timed runs)."""
    n = int(cell["n_runs"])
    return float(cell["speed_std"]) / math.sqrt(n) if n > 0 else math.nan


def is_noisy(cell):
    return "noisy" in cell.index and int(cell["noisy"] or 0) != 0


def verdict(a, b, min_diff_pct=DEFAULT_MIN_DIFF_PCT):
    """(verdict, why) of cell b against cell a by the rule in this module's docstring."""
    for side, c in (("A", a), ("B", b)):
        if c["status"] != "VALID":
            return "n/a", f"{side} {c['status']}"
    for side, c in (("A", a), ("B", b)):
        if int(c["n_runs"]) < 2:
            return "n/a", f"{side} has {int(c['n_runs'])} run(s): no spread"
    mean_a, mean_b = float(a["speed_mean"]), float(b["speed_mean"])
    if not mean_a > 0:
        return "n/a", "A speed is 0"
    diff = mean_b - mean_a
    se = math.hypot(speed_standard_error(a), speed_standard_error(b))
    pct = 100.0 * (mean_b / mean_a - 1.0)
    if abs(diff) <= VERDICT_SIGMAS * se:
        return "same", f"|B-A| {abs(diff):.3g} <= {VERDICT_SIGMAS:g} x SE {se:.3g}"
    if abs(pct) <= min_diff_pct:
        return "same", f"|B/A-1| {abs(pct):.2f}% <= {min_diff_pct:g}%"
    return ("faster" if diff > 0 else "slower"), f"{pct:+.1f}%, |B-A| > {VERDICT_SIGMAS:g} x SE {se:.3g}"


def differing_keys(a_text, b_text):
    """'key a->b' for every key of two "key=value;..." strings whose values differ (a key missing on one side
    shows as '-'), in the order the keys first appear."""
    from analysis.load import parse_key_values
    a, b = parse_key_values(a_text), parse_key_values(b_text)
    keys = list(dict.fromkeys(list(a) + list(b)))
    return [f"{k} {a.get(k, '-')}->{b.get(k, '-')}" for k in keys if a.get(k) != b.get(k)]


def option_differences(a, b, field):
    """The differing keys of one recorded field ('engine_options' / 'engine_choices') as one string; None when
    either cell's file does not record the field."""
    if field not in a.index or field not in b.index:
        return None
    a_text, b_text = _text(a[field]), _text(b[field])
    return "; ".join(differing_keys(a_text, b_text))


def _keyed(cells):
    """The cells with model_key / quant_key and a hashable match key column."""
    cells = cells.copy()
    cells["model_key"] = [model_key(m) for m in cells["model"]]
    cells["quant_key"] = [quant_key(q) for q in cells["quant"]]
    cells["match_key"] = list(zip(*(cells[k] for k in MATCH_KEYS))) if len(cells) else []
    return cells


def match_cells(a_cells, b_cells):
    """(pairs, a_only, b_only): pairs of (A row, B row) with equal match keys; a key that has one cell on each
    side pairs whatever its options, several cells of a key pair by equal engine_options (the last cell of
    each options string when a file repeats one)."""
    a_cells, b_cells = _keyed(a_cells), _keyed(b_cells)
    pairs, a_only, b_only = [], [], []
    for key in dict.fromkeys(list(a_cells["match_key"]) + list(b_cells["match_key"])):
        la = [c for _, c in a_cells[a_cells["match_key"] == key].iterrows()]
        lb = [c for _, c in b_cells[b_cells["match_key"] == key].iterrows()]
        if len(la) == 1 and len(lb) == 1:
            pairs.append((la[0], lb[0]))
            continue
        by_options_b = {_text(c.get("engine_options")): c for c in lb}
        by_options_a = {_text(c.get("engine_options")): c for c in la}
        for options, c in by_options_a.items():
            if options in by_options_b:
                pairs.append((c, by_options_b.pop(options)))
            else:
                a_only.append(c)
        b_only += list(by_options_b.values())
    return pairs, a_only, b_only


def compare_cells(a_cells, b_cells, min_diff_pct=DEFAULT_MIN_DIFF_PCT):
    """One row per matched pair (PAIR_COLUMNS), and the unmatched A and B cells (lists of rows)."""
    pairs, a_only, b_only = match_cells(a_cells, b_cells)
    rows = []
    for a, b in pairs:
        word, why = verdict(a, b, min_diff_pct)
        mean_a, mean_b = float(a["speed_mean"]), float(b["speed_mean"])
        ok = a["status"] == "VALID" and b["status"] == "VALID" and mean_a > 0
        rows.append({"model": a["model"], "quant": a["quant"], "backend": a["backend"], "tp_size": int(a["tp_size"]),
                     "context_len": int(a["context_len"]), "gen_len": int(a["gen_len"]),
                     "a_cell": int(a.name), "b_cell": int(b.name), "a_status": a["status"], "b_status": b["status"],
                     "a_speed_mean": mean_a, "a_speed_std": float(a["speed_std"]), "a_runs": int(a["n_runs"]),
                     "b_speed_mean": mean_b, "b_speed_std": float(b["speed_std"]), "b_runs": int(b["n_runs"]),
                     "ratio": mean_b / mean_a if ok else math.nan, "diff": mean_b - mean_a if ok else math.nan,
                     "diff_se": math.hypot(speed_standard_error(a), speed_standard_error(b)),
                     "verdict": word, "why": why, "a_noisy": is_noisy(a), "b_noisy": is_noisy(b),
                     "options_differ": option_differences(a, b, "engine_options"),
                     "choices_differ": option_differences(a, b, "engine_choices")})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS), a_only, b_only


def _speed_text(mean, std, runs, status, noisy):
    if status != "VALID":
        return status
    return f"{mean:.2f} ± {std:.2f} ({runs})" + (" NOISY" if noisy else "")


def _differs_text(row):
    if row["options_differ"] is None and row["choices_differ"] is None:
        return "not recorded"
    parts = []
    for name in ("options", "choices"):
        value = row[f"{name}_differ"]
        if value is None:
            parts.append(f"{name} not recorded")
        elif value:
            parts.append(f"{name}: {value}")
    return "; ".join(parts) or "-"


def _columns(header, rows):
    """Plain-text table, columns left-aligned to their widest entry, two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [header] + rows]


def _cell_label(c):
    return (f"{c['model']} {c['quant']} TP{int(c['tp_size'])} input {int(c['context_len'])} gen "
            f"{int(c['gen_len'])} [{c['backend']}]" + (f" {{{c['engine_options']}}}" if _text(
                c.get("engine_options")) else ""))


def meta_differences(a, b):
    """'name: a -> b' for the recorded run facts (commit, build, hosts, versions) that differ between two files."""
    return [f"{k}: {a.meta.get(k) or '-'} -> {b.meta.get(k) or '-'}" for k in META_COMPARED
            if (a.meta.get(k) or "") != (b.meta.get(k) or "")]


def report_pair(a, b, min_diff_pct=DEFAULT_MIN_DIFF_PCT):
    """(text lines, pair rows) of file b against file a (two Results)."""
    table, a_only, b_only = compare_cells(a.cells, b.cells, min_diff_pct)
    lines = [f"B = {b.path}", f"  against A = {a.path}"]
    lines += [f"  files differ in {d}" for d in meta_differences(a, b)]
    for side, r in (("A", a), ("B", b)):
        if "engine_options" not in r.cells.columns:
            lines.append(f"  {side} records no engine_options / engine_choices (an older file)")
    lines.append("")
    header = ["model", "format", "TP", "input", "gen", "A tok/s", "B tok/s", "B/A", "verdict", "differs (A->B)"]
    rows = []
    for _, p in table.iterrows():
        rows.append([p["model"], p["quant"] + ("" if p["backend"] in QWENBENCH_BACKENDS or not p["backend"]
                                               else f" [{p['backend']}]"),
                     str(p["tp_size"]), str(p["context_len"]), str(p["gen_len"]),
                     _speed_text(p["a_speed_mean"], p["a_speed_std"], p["a_runs"], p["a_status"], p["a_noisy"]),
                     _speed_text(p["b_speed_mean"], p["b_speed_std"], p["b_runs"], p["b_status"], p["b_noisy"]),
                     f"{p['ratio']:.3f}" if math.isfinite(p["ratio"]) else "-", p["verdict"], _differs_text(p)])
    lines += _columns(header, rows) if rows else ["no matching cells"]
    counts = table["verdict"].value_counts() if len(table) else {}
    lines += ["", "Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("faster", "slower", "same", "n/a"))
              + f" ({len(table)} matched cells)"]
    why = [f"  {p['model']} {p['quant']} TP{p['tp_size']} input {p['context_len']}: {p['verdict']} ({p['why']})"
           for _, p in table.iterrows() if p["verdict"] == "n/a"]
    lines += ["n/a because:"] + why if why else []
    lines += [f"A only: {_cell_label(c)}" for c in a_only]
    lines += [f"B only: {_cell_label(c)}" for c in b_only]
    return lines, table


RULE_TEXT = ("Rule: faster/slower when |B-A| > 2 x sqrt(se_A^2 + se_B^2) (se = speed_std / sqrt(runs)) and "
             "|B/A-1| > {pct:g}%; same otherwise; n/a when a cell is not VALID or has < 2 runs. "
             "Speed = generated tokens / total time.")


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Compare qwenbench results files cell by cell: every "
                                "later file against the first.")
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="results files; the first is the baseline A")
    p.add_argument("--csv", metavar="OUT.csv", help="also write every matched pair (all files) as CSV")
    p.add_argument("--min-diff-pct", type=float, default=DEFAULT_MIN_DIFF_PCT, metavar="PCT",
                   help="smallest relative difference called faster/slower (default %(default)g)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from analysis.load import ResultsError, load_results
    try:
        if len(args.files) < 2:
            raise ResultsError("give at least two results files (the first is the baseline)")
        if not (math.isfinite(args.min_diff_pct) and args.min_diff_pct >= 0):
            raise ResultsError(f"--min-diff-pct must be a number >= 0, got {args.min_diff_pct}")
        results = [load_results(p) for p in args.files]
        lines, tables = [RULE_TEXT.format(pct=args.min_diff_pct), ""], []
        for b in results[1:]:
            text, table = report_pair(results[0], b, args.min_diff_pct)
            lines += text + [""]
            tables.append(table.assign(a_file=results[0].path, b_file=b.path))
        if args.csv:
            pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False)
            lines.append(f"wrote {args.csv}")
    except ResultsError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: {e.filename or args.csv}: {e.strerror or e}", file=sys.stderr)
        return 1
    print("\n".join(lines).rstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
