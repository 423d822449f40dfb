"""plots.py - the report's PNG figures (matplotlib, Agg backend: no display needed).

Per model: speed against input length per format (error bars = stddev), tensor-parallel scaling when the model
ran at several TP sizes, and the per-step decode latency over the steps of each cell's first run (where it
drifts). For all cells: the achieved share of the bandwidth floor. Per file with per-run start/end times: the
sweep's timeline (a Gantt chart: a row per group of ranks, a bar per timed run). When a model has cells from
several files, each file keeps its own lines, labelled with the file's name (file_label). Each function returns
the file names it wrote (relative to the output directory).
"""
import os
import re

from analysis.deps import require

require(__name__)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.compare import is_qwenbench  # noqa: E402
from analysis.tables import FORMAT_ORDER, option_labels, report_status  # noqa: E402

MAX_LATENCY_LINES = 24
OUTLIER_LOG_SCALE = 10  # the step-latency axis turns logarithmic when a step is this many times a cell's median


def slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(str(text).rstrip("/"))).strip("_") or "model"


def _save(fig, out_dir, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    return name


def _valid(cells):
    return cells[[report_status(c) == "VALID" for _, c in cells.iterrows()]] if len(cells) else cells


def _format_key(q):
    return (FORMAT_ORDER.index(q) if q in FORMAT_ORDER else len(FORMAT_ORDER), q)


def _with_files(cells):
    """cells with a '_file' column that keeps their series apart: the file's label where the cells come from
    several files, and the engine options that vary among them (a sweep over options); '' when neither."""
    several = "file" in cells.columns and cells["file"].nunique() > 1
    files = (cells["file_label"] if "file_label" in cells.columns else cells["file"]) if several else [""] * len(cells)
    options = [f"{{{o}}}" if o else "" for o in option_labels(cells)]
    return cells.assign(_file=[", ".join(x for x in (o, f) if x) for o, f in zip(options, files)])


def _file_suffix(label):
    return f" ({label})" if label else ""


def speed_vs_length(model, cells, out_dir, file_stem=None):
    """Speed (tok/s) against input length, one line per format / TP size / engine."""
    valid = _valid(cells)
    if not len(valid):
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    valid = _with_files(valid)
    ours = is_qwenbench(valid)
    files = list(dict.fromkeys(valid["_file"]))
    groups = valid.assign(ours=ours).groupby(["ours", "backend", "quant", "tp_size", "_file"], sort=False)
    for (mine, backend, quant, tp, file), g in sorted(groups, key=lambda kv: (
            not kv[0][0], kv[0][1], _format_key(kv[0][2]), kv[0][3], files.index(kv[0][4]))):
        g = g.sort_values("context_len")
        label = f"{quant} TP{tp}" + ("" if mine else f" ({backend}, peer)") + \
            (f" [{backend}]" if mine and valid[ours]["backend"].nunique() > 1 else "") + _file_suffix(file)
        ax.errorbar(g["context_len"], g["speed_mean"], yerr=g["speed_std"], marker="o", capsize=3,
                    linestyle="-" if mine else "--", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("input length (tokens)")
    ax.set_ylabel("tok/s (generated / total time)")
    ax.set_title(f"{model}: speed against input length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out_dir, f"speed_{slug(file_stem or model)}.png")]


def tp_scaling(model, cells, out_dir, file_stem=None):
    """Speed against TP size for each format and input length (only when several TP sizes ran)."""
    valid = _valid(cells[is_qwenbench(cells)])
    if not len(valid) or valid["tp_size"].nunique() < 2:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    valid = _with_files(valid)
    files = list(dict.fromkeys(valid["_file"]))
    for (quant, n, file), g in sorted(valid.groupby(["quant", "context_len", "_file"]),
                                      key=lambda kv: (_format_key(kv[0][0]), kv[0][1], files.index(kv[0][2]))):
        g = g.sort_values("tp_size")
        ax.errorbar(g["tp_size"], g["speed_mean"], yerr=g["speed_std"], marker="o", capsize=3,
                    label=f"{quant} input {n}{_file_suffix(file)}")
    sizes = sorted(valid["tp_size"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    ax.set_xlabel("tensor-parallel size (GPUs)")
    ax.set_ylabel("tok/s")
    ax.set_title(f"{model}: tensor-parallel scaling")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out_dir, f"tp_scaling_{slug(file_stem or model)}.png")]


def step_latency(model, cells, runs, results_by_file, out_dir, file_stem=None):
    """Decode step latency (ms) over the steps of each cell's first run."""
    ours = _with_files(cells[is_qwenbench(cells) & cells["n_runs"].gt(0)])
    if not len(ours):
        return []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn, medians, peaks = 0, [], []
    order = sorted(range(len(ours)), key=lambda i: (_format_key(ours["quant"].iloc[i]), ours["tp_size"].iloc[i],
                                                     ours["context_len"].iloc[i]))
    for _, c in ours.iloc[order].iterrows():
        mine = runs[runs["cell_id"] == c["cell_id"]].sort_values("repetition")
        if not len(mine) or drawn >= MAX_LATENCY_LINES:
            continue
        steps = results_by_file[c["file"]].step_latency(mine.iloc[0])
        if not len(steps):
            continue
        ax.plot(np.arange(1, len(steps) + 1), steps * 1e3, linewidth=0.8,
                label=f"{c['quant']} TP{int(c['tp_size'])} input {int(c['context_len'])}{_file_suffix(c['_file'])}")
        drawn += 1
        medians.append(float(np.median(steps)))
        peaks.append(float(np.max(steps)))
    if not drawn:
        plt.close(fig)
        return []
    if max(peaks) > OUTLIER_LOG_SCALE * max(min(medians), 1e-12):
        ax.set_yscale("log")  # a few slow steps would otherwise flatten every other line
    ax.set_xlabel("decode step")
    ax.set_ylabel("step latency (ms)")
    ax.set_title(f"{model}: per-step decode latency (first run of each cell)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return [_save(fig, out_dir, f"step_latency_{slug(file_stem or model)}.png")]


def floor_share(cells, out_dir):
    """Achieved share of the bandwidth floor per cell (horizontal bars; the 100 % line is the physical limit)."""
    ours = cells[is_qwenbench(cells) & (cells["status"] == "VALID")]
    if "pct_of_floor" not in ours.columns:
        return []
    ours = ours[np.isfinite(ours["pct_of_floor"].astype(float))]
    if not len(ours):
        return []
    ours = _with_files(ours)
    labels = [f"{c['model']} {c['quant']} TP{int(c['tp_size'])} in {int(c['context_len'])}{_file_suffix(c['_file'])}"
              for _, c in ours.iterrows()]
    pct = ours["pct_of_floor"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * len(ours)))
    colors = ["tab:red" if p > 100 else "tab:blue" for p in pct]
    ax.barh(np.arange(len(ours)), pct, color=colors)
    ax.axvline(100, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(np.arange(len(ours)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("decode tok/s as % of the bandwidth floor (red: above 100 %, INVALID)")
    ax.set_title("Share of the bandwidth floor")
    ax.grid(True, axis="x", alpha=0.3)
    return [_save(fig, out_dir, "floor_share.png")]


def _where(c):
    """A cell's place on the timeline: 'ranks 2,3 on node-a' (+ the GPUs' short UUIDs); '' when not recorded."""
    ranks = str(c.get("ranks", "") or "")
    if not ranks:
        return ""
    hosts = ",".join(dict.fromkeys(h for h in str(c.get("hosts", "") or "").split(",") if h))
    devices = [d for d in str(c.get("devices", "") or "").split(",") if d and d != "cpu"]
    gpus = f" [{','.join(d.replace('GPU-', '')[:8] for d in devices)}]" if devices else ""
    return f"ranks {ranks}" + (f" on {hosts}" if hosts else "") + gpus


def _first_rank(where):
    m = re.match(r"ranks (\d+)", where)
    return int(m.group(1)) if m else float("inf")


def run_times(cells, runs):
    """The timed runs that have a start and an end time (docs/SCHEDULING.md), one row each: cell_id, where (the
    group of ranks that ran it, '' when not recorded), cell (its label), start_s and end_s (seconds since the
    first run started, rank 0's clock). Empty when the file has no such times (written before they were)."""
    columns = ["cell_id", "where", "cell", "start_s", "end_s"]
    if not len(runs) or "start_unix_s" not in runs.columns or "end_unix_s" not in runs.columns:
        return pd.DataFrame(columns=columns)
    start = runs["start_unix_s"].to_numpy(dtype=float)
    end = runs["end_unix_s"].to_numpy(dtype=float)
    timed = runs[np.isfinite(start) & np.isfinite(end) & (start > 0) & (end >= start)]
    if not len(timed):
        return pd.DataFrame(columns=columns)
    by_id = cells.set_index("cell_id")
    several_models = by_id.loc[list(dict.fromkeys(timed["cell_id"]))]["model"].nunique() > 1
    t0 = float(timed["start_unix_s"].min())
    rows = []
    for _, r in timed.iterrows():
        c = by_id.loc[r["cell_id"]]
        label = (f"{c['model']} " if several_models else "") + \
            f"{c['quant']} TP{int(c['tp_size'])} in {int(c['context_len'])}"
        rows.append((r["cell_id"], _where(c), label, float(r["start_unix_s"]) - t0, float(r["end_unix_s"]) - t0))
    return pd.DataFrame(rows, columns=columns)


def most_at_once(times):
    """The largest number of runs in progress at the same moment (1: the runs never overlapped)."""
    # at a tie the end sorts first: a run that starts as another ends does not overlap it
    events = sorted([(s, 1) for s in times["start_s"]] + [(e, -1) for e in times["end_s"]])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def beside_others_pct(times):
    """{cell_id: % of the cell's timed-run time during which a run of another group of ranks was in progress}
    (0: the cell ran alone, 100: beside others throughout; NaN when its runs have no duration)."""
    spans = list(zip(times["cell_id"], times["where"], times["start_s"], times["end_s"]))
    busy, beside = {}, {}
    for cell_id, where, s, e in spans:
        others = sorted((s2, e2) for _, w2, s2, e2 in spans if w2 != where and e2 > s and s2 < e)
        covered, reach = 0.0, s
        for s2, e2 in others:  # the union of the other groups' runs, clipped to [s, e]
            lo, hi = max(s2, reach), min(e2, e)
            if hi > lo:
                covered += hi - lo
                reach = hi
        busy[cell_id] = busy.get(cell_id, 0.0) + (e - s)
        beside[cell_id] = beside.get(cell_id, 0.0) + covered
    return {k: 100.0 * beside[k] / busy[k] if busy[k] > 0 else float("nan") for k in busy}


def timeline(times, out_dir, name, title_suffix=""):
    """Gantt chart of a sweep: one row per group of ranks (where the cells ran), one bar per timed run; each
    cell's bars in one colour, tagged with the cell's number, which the legend below names. times: run_times()
    of one file (its own clock)."""
    if not len(times):
        return []
    rows = sorted(dict.fromkeys(times["where"]), key=lambda w: (_first_rank(w), w))
    n_cells = times["cell_id"].nunique()
    legend_cols = 3
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.55 * len(rows) + 0.16 * -(-n_cells // legend_cols)))
    colours = plt.get_cmap("tab20").colors
    handles = []
    for k, (cell_id, runs) in enumerate(times.groupby("cell_id", sort=False)):
        y = rows.index(runs["where"].iloc[0])
        colour = colours[k % len(colours)]
        bars = ax.broken_barh([(s, e - s) for s, e in zip(runs["start_s"], runs["end_s"])], (y - 0.38, 0.76),
                              facecolors=colour, edgecolor="black", linewidth=0.3)
        bars.set_label(f"{k + 1}: {runs['cell'].iloc[0]}")
        handles.append(bars)
        ax.text((runs["start_s"].min() + runs["end_s"].max()) / 2, y - 0.42, str(k + 1), ha="center", va="bottom",
                fontsize=6, clip_on=True)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([w or "where not recorded" for w in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.6)
    ax.set_xlabel("seconds since the first timed run started (rank 0's clock; gaps: weight loads, warm-up)")
    ax.set_title(f"Timeline of the sweep{title_suffix}: a bar per timed run, a row per group of ranks")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=handles, fontsize=6, ncol=legend_cols, loc="upper left", bbox_to_anchor=(0, -0.25 - 0.6 /
              (len(rows) + 2)), frameon=False)
    return [_save(fig, out_dir, name)]
