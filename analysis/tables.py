"""tables.py - the markdown of the report: the run header and, per model, tables in the published layout.

Speed table: rows = format (plus TP size / backend when a model has several), columns = input length,
cells = `tok/s ± std (GPUs) / GiB` (mean and sample stddev of the repetitions, GPUs = ranks of the cell,
GiB = summed peak memory over ranks / 2^30), two decimals. A cell that is not VALID shows its status
(INVALID / DOES_NOT_FIT / FAILED) with a numbered note giving the reason; a VALID cell above 100 % of its
bandwidth floor is shown as INVALID (roofline) the same way. A VALID cell the file marks noisy (noisy = 1: its
speed's coefficient of variation above the run's --noisy-threshold) keeps its number, followed by NOISY and a
note with the spread. When a model has cells from several files, each row label ends with `(file name)`; when
its cells asked for different engine options (a sweep over them), with `{key=value,...}` of the keys that vary.
Energy table (only when some cell of the model recorded energy: files without the fields, or runs without
NVML, have none): `tok/s / J/token (W)` per cell, J/token = joules of the cell's GPUs per generated token
(mean over the repetitions), W = their mean draw; a cell whose GPUs throttled (throttled = 1) is followed by
THROTTLED and a note; a cell without a measurement shows n/a.
"""
import json
import math

from analysis.compare import PUBLISHED_CARD, is_qwenbench
from analysis.formats import FORMAT_ORDER, PUBLISHED_FORMAT_ORDER  # noqa: F401 (re-exported: configs/formats.json)


def fmt_speed(c):
    return f"{c['speed_mean']:.2f} ± {c['speed_std']:.2f} ({int(c['n_ranks'])}) / {c['peak_mem_total_gib']:.2f}"


def fmt_ratio(r):
    """'2.33x', plus the GPU counts when the two cells used different numbers of GPUs."""
    text = f"{r['ratio']:.2f}x"
    if int(r["n_ranks"]) != int(r["peer_n_ranks"]):
        text += f" ({int(r['n_ranks'])} vs {int(r['peer_n_ranks'])} GPUs)"
    return text


def report_status(c):
    """The status the report shows: the file's, or INVALID when a VALID cell beats its bandwidth floor."""
    if c["status"] == "VALID" and not c.get("roofline_ok", True):
        return "INVALID"
    return c["status"]


def _md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _format_rank(quant):
    return (FORMAT_ORDER.index(quant) if quant in FORMAT_ORDER else len(FORMAT_ORDER), quant)


def several_files(cells):
    return "file" in cells.columns and cells["file"].nunique() > 1


def option_labels(cells):
    """Per cell, 'key=value,...' of the engine_options keys whose values vary among the cells that record them
    ('' for a cell without the field, and for all when none varies)."""
    from analysis.load import parse_key_values
    if "engine_options" not in cells.columns or not len(cells):
        return [""] * len(cells)
    parsed = [parse_key_values(t if isinstance(t, str) else "") for t in cells["engine_options"]]
    recorded = [p for p in parsed if p]
    keys = list(dict.fromkeys(k for p in recorded for k in p))
    varying = [k for k in keys if len({p.get(k, "-") for p in recorded}) > 1]
    return [",".join(f"{k}={p.get(k, '-')}" for k in varying) if p else "" for p in parsed]


def _row_labels(cells):
    """Row label per cell: format, plus 'TPn', '[backend]' and '(file label)' only where the model needs them to
    tell rows apart."""
    several_tp = cells["tp_size"].nunique() > 1
    several_backends = cells["backend"].nunique() > 1
    files = several_files(cells)
    labels = []
    for (_, c), options in zip(cells.iterrows(), option_labels(cells)):
        label = c["quant"]
        if several_tp:
            label += f" TP{int(c['tp_size'])}"
        if several_backends:
            label += f" [{c['backend']}]"
        if options:
            label += f" {{{options}}}"
        if files:
            label += f" ({c['file_label']})"
        labels.append(label)
    return labels


def _grid(cells, render, notes):
    """Rows x input-length grid; render(cell, notes) gives the text of one cell. Several cells in one slot
    (several files, or a resumed run) are all shown, separated by <br>."""
    cells = cells.assign(row_label=_row_labels(cells))
    file_order = list(dict.fromkeys(cells["file"])) if "file" in cells.columns else []
    cells = cells.assign(_order=[_format_rank(q) + (t, b, file_order.index(f) if f in file_order else 0) for q, t, b, f
                                 in zip(cells["quant"], cells["tp_size"], cells["backend"],
                                        cells["file"] if "file" in cells.columns else [""] * len(cells))])
    lengths = sorted(cells["context_len"].unique())
    rows = []
    for label in sorted(cells["row_label"].unique(), key=lambda l: cells[cells["row_label"] == l]["_order"].min()):
        mine = cells[cells["row_label"] == label]
        row = [_md_escape(label)]
        for n in lengths:
            slot = mine[mine["context_len"] == n]
            row.append("<br>".join(render(c, notes) for _, c in slot.iterrows()) if len(slot) else "")
        rows.append(row)
    return _table(["format"] + [str(n) for n in lengths], rows)


def _with_note(text, reason, notes, where):
    notes.append(f"{where}: {reason}" if reason else where)
    return f"{text} [{len(notes)}]"


def _where(c):
    where = f"{c['quant']} TP{int(c['tp_size'])} input {int(c['context_len'])} [{c['backend']}]"
    if c.get("option_label", ""):
        where += f" {{{c['option_label']}}}"
    return where + (f" ({c['file_label']})" if c.get("several_files", False) else "")


def is_noisy(c):
    """The file's own noise mark (noisy = 1); files without the field have none."""
    value = c.get("noisy", 0)
    return bool(value) and value == value  # NaN (a file without the field among files with it) is not noisy


def render_speed(c, notes):
    status = report_status(c)
    if status == "VALID":
        if is_noisy(c):
            cv = c.get("speed_cv", math.nan)
            spread = f"speed varies {100 * cv:.1f}% (std / mean) over the runs" if cv == cv else "noisy"
            return _with_note(fmt_speed(c) + " NOISY", f"NOISY: {spread}; the number is kept, compare it with care",
                              notes, _where(c))
        return fmt_speed(c)
    if c["status"] == "VALID":  # valid in the file, refused by the roofline
        return _with_note("INVALID (roofline)", c["roofline_note"], notes, _where(c))
    return _with_note(status, c["reason"], notes, _where(c))


def render_floor(c, notes):
    if not math.isfinite(c.get("floor_tok_s", math.nan)):
        return "n/a"
    if c["status"] != "VALID":
        return f"{c['status']} (floor {c['floor_tok_s']:.1f})"
    flag = " INVALID" if not c["roofline_ok"] else (" cache-resident, not a bound" if c["pct_of_floor"] > 100 else "")
    return f"{c['pct_of_floor']:.1f}%{flag} (floor {c['floor_tok_s']:.1f})"


def header_md(results, label=None):
    """The settings, commit and devices of one file (label: its name in a report of several files)."""
    m = results.meta
    lines = [f"### {label}: {results.path}" if label and label != results.path else f"### {results.path}", ""]
    lines.append(f"- qwenbench {m['version'] or '?'}, commit `{m['build_commit'] or '?'}`, "
                 f"{m['build_type'] or '?'} build, schema {m['schema_version']}")
    if m["build_type"] and m["build_type"].lower() == "debug":
        lines.append("- **warning: debug build - the numbers are not representative**")
    lines.append(f"- command: `{m['command_line']}`")
    lines.append(f"- time: {m['start_time']} to {m['end_time']}")
    lines.append(f"- hosts: {m['hosts']}")
    lines.append(f"- devices: {describe_devices(m['devices_json'])}")
    lines.append(f"- driver {m['driver_version'] or '-'}, CUDA {m['cuda_version'] or '-'}, "
                 f"NCCL {m['nccl_version'] or '-'}, MPI {m['mpi_version'] or '-'}, HDF5 {m['hdf5_version'] or '-'}")
    bw = m["copy_bandwidth_gbps"]
    lines.append(f"- measured copy bandwidth: {bw:.1f} GB/s" if math.isfinite(bw)
                 else "- measured copy bandwidth: not recorded")
    if m["settings_json"]:
        lines += ["", "<details><summary>settings</summary>", "", "```json", pretty_json(m["settings_json"]),
                  "```", "", "</details>"]
    return lines + [""]


def pretty_json(text):
    try:
        return json.dumps(json.loads(text), indent=1, sort_keys=True)
    except ValueError:
        return text


def describe_devices(devices_json):
    """'2 x NVIDIA H100 80GB HBM3 (host-a)' from the per-rank device list; the raw text if it is not JSON."""
    if not devices_json:
        return "not recorded"
    try:
        devices = json.loads(devices_json)
        counts = {}
        for d in devices:
            key = (d.get("name", "?"), d.get("host", "?"))
            counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{n} x {name} ({host})" for (name, host), n in counts.items()) or "none listed"
    except (ValueError, AttributeError, TypeError):
        return devices_json


def has_energy(cells):
    """Whether any cell recorded a finite J/token (older files have no such field)."""
    return "joules_per_token" in cells.columns and bool(cells["joules_per_token"].apply(_finite).any())


def _finite(x):
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def render_energy(c, notes):
    if c["status"] != "VALID" or not _finite(c.get("joules_per_token")):
        return "n/a" if c["status"] == "VALID" else c["status"]
    text = f"{c['speed_mean']:.2f} / {c['joules_per_token']:.3f}"
    if _finite(c.get("power_mean_w")):
        text += f" ({c['power_mean_w']:.0f} W)"
    throttled = c.get("throttled", 0)
    if _finite(throttled) and int(throttled) == 1:
        reasons = c.get("throttle_reasons", 0)
        bits = int(reasons) if _finite(reasons) else 0
        return _with_note(text + " THROTTLED", f"THROTTLED: the GPU slowed its clocks during the runs (NVML reasons "
                          f"0x{bits:x}); the number is kept, compare it with care", notes, _where(c))
    return text


def latency_renderer(runs):
    """Cell text `TTFT ms / TPOT ms (drift %)`: drift = last tenth of the decode steps over the first tenth,
    averaged over the repetitions."""
    drift = runs.groupby("cell_id")["step_drift_pct"].mean() if len(runs) else {}

    def render(c, notes):
        if int(c["n_runs"]) == 0:
            return c["status"]
        d = drift.get(c["cell_id"], math.nan)
        text = f"{c['ttft_s_mean'] * 1e3:.2f} / {c['tpot_s_mean'] * 1e3:.3f}"
        return text + (f" ({d:+.1f}%)" if math.isfinite(d) else "")
    return render


def model_section(model, cells, ratios, published, runs=None):
    """Markdown lines for one model (cells: all cells of the model, qwenbench and peers; runs: runs.csv rows)."""
    lines = [f"## {model}", ""]
    mine = is_qwenbench(cells)
    cells = cells.assign(several_files=several_files(cells[mine]), option_label="")
    cells.loc[mine, "option_label"] = option_labels(cells[mine])
    ours = cells[mine]
    notes = []
    if len(ours):
        lines.append("Speed: `tok/s ± std (GPUs) / GiB` (generated tokens / total time incl. prefill, mean ± "
                     "sample stddev over the repetitions; GiB = peak memory summed over the GPUs)")
        lines.append("")
        lines += _grid(ours, render_speed, notes) + [""]
        if "floor_tok_s" in ours.columns and ours["floor_tok_s"].notna().any():
            lines.append("Share of the bandwidth floor: decode tok/s / (copy bandwidth / bytes read per token per "
                         "GPU); above 100 % the cell is INVALID")
            lines.append("")
            lines += _grid(ours, render_floor, notes) + [""]
        if has_energy(ours):
            lines.append("Energy: `tok/s / J/token (W)` (joules of the cell's GPUs per generated token from NVML, "
                         "mean over the repetitions; W = their mean draw during the runs)")
            lines.append("")
            lines += _grid(ours, render_energy, notes) + [""]
        if runs is not None and "step_drift_pct" in runs.columns:
            lines.append("Latency: `TTFT ms / TPOT ms (drift %)` (means over the repetitions; drift = mean decode "
                         "step of the last tenth of the steps vs the first tenth)")
            lines.append("")
            lines += _grid(ours, latency_renderer(runs[runs["cell_id"].isin(ours["cell_id"])]), notes) + [""]
    peers = cells[~is_qwenbench(cells)]
    for backend, group in peers.groupby("backend", sort=True):
        lines.append(f"Peer engine `{backend}` on the same machine: `tok/s ± std (GPUs) / GiB`")
        lines.append("")
        lines += _grid(group, render_speed, notes) + [""]
        mine = ratios[(ratios["peer_backend"] == backend) & ratios["cell_id"].isin(ours["cell_id"])]
        if len(mine):
            lines.append(f"Ratio qwenbench / `{backend}` (same machine, matching cells)")
            lines.append("")
            by_id = mine.set_index("cell_id")
            matched = ours[ours["cell_id"].isin(mine["cell_id"])]
            lines += _grid(matched, lambda c, n: fmt_ratio(by_id.loc[c["cell_id"]]), notes) + [""]
    if published is not None and len(ours):
        key = ours["model_key"].iloc[0]
        pub = published[published["model_key"] == key]
        if len(pub):
            lines += published_table(pub)
    if notes:
        lines += [f"{i + 1}. {_md_escape(n)}" for i, n in enumerate(notes)] + [""]
    return lines


def published_table(pub):
    """The published cells of one model: another card, shown for context and never divided into ours."""
    lines = [f"Published (Qwen2.5 speed benchmark, **{PUBLISHED_CARD}: another card**, context only, not a "
             "like-for-like ratio): `tok/s (GPUs) / GB`", ""]
    lengths = sorted(pub["context"].unique())
    rows = []
    order = {q: i for i, q in enumerate(PUBLISHED_FORMAT_ORDER)}
    for (engine, quant), group in sorted(pub.groupby(["engine", "quant"]),
                                         key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        row = [f"{engine} {quant}"]
        for n in lengths:
            slot = group[group["context"] == n]
            parts = []
            for _, p in slot.iterrows():
                text = f"{p['tok_s']:.2f} ({int(p['gpus'])})"
                if math.isfinite(p["mem_gb"]):
                    text += f" / {p['mem_gb']:.2f}"
                if p["note"]:
                    text += f" {p['note']}"
                parts.append(text)
            row.append("<br>".join(parts))
        rows.append(row)
    notes = sorted({n for n in pub["note"] if n})
    legend = [f"Notes: {', '.join(notes)} - see analysis/data/README.md (D = vLLM defaults; S1..S5, 64k = other "
              "vLLM memory/length settings; 062/NS = vLLM 0.6.2, other sampling; auto_gptq==0.6.0 = older AutoGPTQ)",
              ""] if notes else []
    return lines + _table(["engine format"] + [str(n) for n in lengths], rows) + [""] + legend


def choices_section(cells):
    """'## Engine choices': per cell what the engine asked for (options that are not auto) and what ran
    (engine_choices, docs/RESULTS.md), so two runs that differ in speed show why. Empty when no file records them."""
    if "engine_choices" not in cells.columns or not len(cells):
        return []
    rows = []
    for _, c in cells.iterrows():
        choices = c["engine_choices"] if isinstance(c["engine_choices"], str) else ""
        options = c.get("engine_options") if isinstance(c.get("engine_options"), str) else ""
        asked = ";".join(kv for kv in options.split(";") if kv and not kv.endswith("=auto")) or "auto"
        where = f"{c['model']} {c['quant']} input {int(c['context_len'])} TP{int(c['tp_size'])}"
        if several_files(cells):
            where += f" ({c['file_label']})"
        rows.append([_md_escape(where), _md_escape(asked), _md_escape(choices.replace(";", "; ") or "not recorded")])
    return ["## Engine choices", "", "Options not left to `auto`, and what the engine chose (`engine_choices`).", ""] + \
        _table(["cell", "options", "choices"], rows) + [""]

