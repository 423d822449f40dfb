"""report.py - the report command: qwenbench results files in, markdown + CSV + PNG report out.

    /usr/bin/python3 -m analysis.report results.h5 [more.h5 ...] --out report/ \
        [--peer transformers.h5|peer.json] [--published analysis/data/qwen2.5-speed-a100.csv] [--bandwidth-gbps X]

Writes into --out: report.md (run headers, per-model tables, comparisons, plots, the sweep's timeline from the
runs' start/end times), cells.csv (every cell with its roofline columns, the largest rank's peak memory),
runs.csv (every timed run, with the median decode step and its drift from the first to the last tenth of the
steps), peer_ratios.csv (when a peer matched) and the PNG plots.
Any unusable input gives one line on stderr, "qwenbench-report: error: ...", and exit status 1.
"""
import argparse
import math
import os
import sys

from analysis.deps import require

PROG = "qwenbench-report"
require(__name__, PROG)  # before numpy, pandas, h5py, matplotlib: one line and exit 2 when they are missing

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import plots, roofline, tables  # noqa: E402
from analysis.compare import (DEFAULT_PUBLISHED, CompareError, is_qwenbench, load_published, model_key,  # noqa: E402
                              peer_ratios, quant_key)
from analysis.load import ResultsError, load_results  # noqa: E402
from analysis.peer_json import is_peer_json, load_peer_json  # noqa: E402

RUN_CONTEXT_COLUMNS = ("model", "quant", "backend", "context_len", "gen_len", "tp_size", "n_ranks")


def step_drift(steps):
    """(median step s, mean of the first tenth of the steps, of the last tenth, drift last/first - 1 in %)."""
    if not len(steps):
        return (math.nan,) * 4
    k = max(1, len(steps) // 10)
    first, last = float(np.mean(steps[:k])), float(np.mean(steps[-k:]))
    return float(np.median(steps)), first, last, 100.0 * (last / first - 1.0) if first > 0 else math.nan


def cell_bandwidths(results, cells, override):
    """The bandwidth of each cell's floor: --bandwidth-gbps, else the cell's own recorded copy bandwidth (when
    the file has that field and it is positive), else the file's root attribute."""
    if override is not None:
        return [override] * len(cells)
    root = results.meta["copy_bandwidth_gbps"]
    if "copy_bandwidth_gbps" not in cells.columns:
        return [root] * len(cells)
    return [b if math.isfinite(b) and b > 0 else root for b in cells["copy_bandwidth_gbps"].astype(float)]


def file_labels(paths):
    """A short label per file for multi-file reports: its base name, '#<n> name' where two share a name."""
    names = [os.path.basename(str(p).rstrip("/")) or str(p) for p in paths]
    return [n if names.count(n) == 1 else f"#{i + 1} {n}" for i, n in enumerate(names)]


def combine(results, peer_flags, bandwidth_override):
    """All files' cells and runs in two frames; cell_id = '<file index>:<row>' is unique across files;
    file_label names the file in tables and plots of several files."""
    cell_frames, run_frames = [], []
    labels = file_labels([r.path for r in results])
    for i, (r, is_peer) in enumerate(zip(results, peer_flags)):
        cells = r.cells.copy()
        cells.insert(0, "cell", range(len(cells)))
        cells.insert(0, "cell_id", [f"{i}:{k}" for k in range(len(cells))])
        cells.insert(0, "file_label", labels[i])
        cells.insert(0, "file", r.path)
        cells["is_peer"] = is_peer
        cells["model_key"] = [model_key(m) for m in cells["model"]]
        cells["quant_key"] = [quant_key(q) for q in cells["quant"]]
        cells["bandwidth_gbps"] = cell_bandwidths(r, cells, bandwidth_override)
        per_rank = r.rank_memory.groupby("cell")["peak_bytes"].max()
        cells["peak_mem_max_rank_gib"] = [per_rank.get(k, math.nan) / 2 ** 30 for k in range(len(cells))]
        cell_frames.append(cells)
        runs = r.runs.copy()
        runs.insert(0, "cell_id", [f"{i}:{int(k)}" for k in runs["cell"]])
        runs.insert(0, "file", r.path)
        for col in RUN_CONTEXT_COLUMNS:
            runs[col] = cells[col].to_numpy()[runs["cell"].to_numpy(dtype=int)] if len(runs) else []
        drift = [step_drift(r.step_latency(run)) for _, run in r.runs.iterrows()]
        for k, col in enumerate(("step_s_median", "step_s_first_tenth", "step_s_last_tenth", "step_drift_pct")):
            runs[col] = [d[k] for d in drift]
        run_frames.append(runs)
    return pd.concat(cell_frames, ignore_index=True), pd.concat(run_frames, ignore_index=True)


def _model_order(cells):
    """Model keys in the order they first appear, qwenbench's own cells first."""
    ours = list(dict.fromkeys(cells[is_qwenbench(cells)]["model_key"]))
    return ours + [k for k in dict.fromkeys(cells["model_key"]) if k not in ours]


def _model_names(cells):
    """The section's model names as qwenbench recorded them (the peer's names when only a peer ran it)."""
    return list(dict.fromkeys(cells[is_qwenbench(cells)]["model"])) or list(dict.fromkeys(cells["model"]))


def timeline_section(results, times_by_file, cells, labels, out_dir):
    """The '## Timeline' section: per qwenbench file (each has its own clock) a Gantt chart of its timed runs
    from their start/end times, or a note where the file has none. Returns (markdown lines, figures)."""
    lines, figures = ["## Timeline", ""], []
    for i, r in enumerate(results):
        label = labels.get(r.path, file_labels([r.path])[0]) if labels else file_labels([r.path])[0]
        times = times_by_file[r.path]
        if not len(times):
            lines += [f"Not plotted for `{label}`: its runs have no start/end times (a file from before they were "
                      "recorded, or no timed run).", ""]
            continue
        name = "timeline.png" if len(results) == 1 else f"timeline_{i + 1}_{plots.slug(label)}.png"
        figs = plots.timeline(times, out_dir, name, f" ({label})" if labels else "")
        rows, at_once = times["where"].nunique(), plots.most_at_once(times)
        span = float(times["end_s"].max())
        beside = cells.loc[cells["file"] == r.path, "beside_others_pct"].dropna()
        lines += [f"`{label}`: {len(times)} timed runs of {times['cell_id'].nunique()} cells on {rows} "
                  f"group{'s' if rows != 1 else ''} of ranks over {span:.3g} s; at most {at_once} "
                  f"run{'s' if at_once != 1 else ''} at once; {int((beside > 0).sum())} of {len(beside)} cells ran "
                  f"beside another group's runs (all their timed runs: {int((beside >= 99.5).sum())}; "
                  "`beside_others_pct` in cells.csv).", ""]
        lines += [f"![{n}]({n})" for n in figs] + [""]
        lines += interference_lines(cells[cells["file"] == r.path])
        figures += figs
    return lines, figures


def interference_lines(cells):
    """Under the timeline: the cell --interference timed alone and beside the other groups (docs/SCHEDULING.md),
    its ratio beside / alone; files without the fields, or without such a cell, get nothing."""
    if "alone_speed_mean" not in cells.columns:
        return []
    lines = []
    for _, c in cells[cells["alone_speed_mean"].apply(lambda v: math.isfinite(float(v)))].iterrows():
        ratio = float(c.get("interference_ratio", math.nan))
        said = f"{ratio:.4f} of its speed alone" if math.isfinite(ratio) else \
            "not measured (a beside run overlapped no other group's cell)"
        lines += [f"Interference (`--interference`): {c['model']} {c['quant']} input {int(c['context_len'])} ran "
                  f"beside the other groups at {float(c['speed_mean']):.2f} tok/s, alone at "
                  f"{float(c['alone_speed_mean']):.2f} ± {float(c['alone_speed_std']):.2f} tok/s: {said}"
                  f"{' (NOISY: packed cells marked)' if int(c.get('noisy', 0) or 0) and math.isfinite(ratio) else ''}.",
                  ""]
    return lines


def write_report(results, peer_results, out_dir, published, bandwidth_override=None):
    """Build everything into out_dir; returns the list of files written."""
    os.makedirs(out_dir, exist_ok=True)
    all_results = list(results) + list(peer_results)
    cells, runs = combine(all_results, [False] * len(results) + [True] * len(peer_results), bandwidth_override)
    cells = roofline.annotate(cells, None)
    cells["report_status"] = [tables.report_status(c) for _, c in cells.iterrows()]
    ratios = peer_ratios(cells)
    by_file = {r.path: r for r in all_results}
    times_by_file = {r.path: plots.run_times(cells[cells["file"] == r.path], runs[runs["file"] == r.path])
                     for r in results}
    beside = {k: v for t in times_by_file.values() for k, v in plots.beside_others_pct(t).items()}
    cells["beside_others_pct"] = [beside.get(k, math.nan) for k in cells["cell_id"]]

    written = ["cells.csv", "runs.csv"]
    cells.to_csv(os.path.join(out_dir, "cells.csv"), index=False)
    runs.to_csv(os.path.join(out_dir, "runs.csv"), index=False)
    if len(ratios):
        ratios.to_csv(os.path.join(out_dir, "peer_ratios.csv"), index=False)
        written.append("peer_ratios.csv")

    lines = ["# qwenbench report", "", "## Runs", ""]
    labels = dict(zip(cells["file"], cells["file_label"])) if len(all_results) > 1 else {}
    if labels:
        lines += [f"{len(all_results)} files; their cells are labelled with the file's name in tables and plots "
                  "where a model has cells from several files.", ""]
    for r in results:
        lines += tables.header_md(r, labels.get(r.path, file_labels([r.path])[0]) if labels else None)
    for r in peer_results:
        lines += ["Peer file:"] + tables.header_md(r, labels.get(r.path, file_labels([r.path])[0])
                                                   if labels else None)
    if bandwidth_override is not None:
        lines += [f"Bandwidth floor computed with --bandwidth-gbps {bandwidth_override:g} instead of the files' "
                  "measurement.", ""]

    if not len(cells):
        lines += ["No cells in the files (a run stopped before its first cell finished?).", ""]
    figures, stems = [], set()
    for key in _model_order(cells):
        mine = cells[cells["model_key"] == key]
        names = _model_names(mine)
        title = ", ".join(names)
        stem = plots.slug(names[0])
        stem = next(f"{stem}-{i}" if i else stem for i in range(len(stems) + 1) if (f"{stem}-{i}" if i else stem)
                    not in stems)
        stems.add(stem)
        lines += tables.model_section(title, mine, ratios, published, runs)
        model_figs = plots.speed_vs_length(title, mine, out_dir, stem) + \
            plots.tp_scaling(title, mine, out_dir, stem) + \
            plots.step_latency(title, mine, runs, by_file, out_dir, stem)
        lines += [f"![{name}]({name})" for name in model_figs] + ([""] if model_figs else [])
        figures += model_figs
    lines += tables.choices_section(cells)
    floor_figs = plots.floor_share(cells, out_dir)
    if floor_figs:
        lines += ["## Share of the bandwidth floor", ""] + [f"![{n}]({n})" for n in floor_figs] + [""]
    else:
        lines += ["## Share of the bandwidth floor", "", "Not plotted: no cell has a floor (model shapes or copy "
                  "bandwidth missing).", ""]
    figures += floor_figs
    timeline_lines, timeline_figs = timeline_section(results, times_by_file, cells, labels, out_dir)
    lines += timeline_lines
    figures += timeline_figs
    notes = sorted({n for n in cells["roofline_note"] if n and "floor" not in n})
    if notes:
        lines += ["Roofline not computed for: " + "; ".join(notes), ""]
    lines += ["Files: `cells.csv` (every cell, roofline columns), `runs.csv` (every timed run)" +
              (", `peer_ratios.csv`" if len(ratios) else "") + ".", ""]
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return ["report.md"] + written + figures


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Report tables, CSV and plots from qwenbench results files.")
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="qwenbench results files")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--peer", action="append", default=[], metavar="FILE",
                   help="a peer engine on the same machine: a results file of the same schema, or the JSON of "
                        "tests/peer_transformers.py; repeatable")
    p.add_argument("--published", default=DEFAULT_PUBLISHED, metavar="CSV",
                   help="published table shown for context (default: %(default)s); 'none' to leave it out")
    p.add_argument("--bandwidth-gbps", type=float, default=None, metavar="GBPS",
                   help="memory bandwidth for the floor instead of each file's measured copy bandwidth")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.bandwidth_gbps is not None and not (math.isfinite(args.bandwidth_gbps) and args.bandwidth_gbps > 0):
            raise ResultsError(f"--bandwidth-gbps must be a positive number, got {args.bandwidth_gbps}")
        results = [load_results(p) for p in args.files]
        peers = [load_peer_json(p) if is_peer_json(p) else load_results(p) for p in args.peer]
        published = None if args.published == "none" else load_published(args.published)
        written = write_report(results, peers, args.out, published, args.bandwidth_gbps)
    except (ResultsError, CompareError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: {e.filename or args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {len(written)} files to {args.out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
