"""test_analysis_checks.py - shared checks of the analysis tests: read a report back and compare it with the file.

Not a test by itself. The file is read here with plain h5py (not analysis/load.py), so the comparison is
independent of the reader under test. Printed numbers have two decimals: a table value must equal the file's
value to within half a unit of the last printed digit (0.005), the rounding the report applies.
"""
import os
import re
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PRINT_TOLERANCE = 0.005 + 1e-9
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPEED_RE = re.compile(r"^([0-9.]+) ± ([0-9.]+) \((\d+)\) / ([0-9.]+)( NOISY \[\d+\])?$")


def run_report(args, env_extra=None):
    """Run `python3 -m analysis.report ARGS` from the repository root; returns the CompletedProcess."""
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MPLCONFIGDIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "qb-analysis-mpl"))
    return subprocess.run([PYTHON, "-m", "analysis.report"] + list(args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


class InProcessRun:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_report_in_process(args):
    """The report's main() in this process (no interpreter start-up: the error tests run it many times);
    returns the same fields as run_report. An exception escaping main() propagates and fails the test."""
    import contextlib
    import io
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from analysis import report
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = report.main(list(args))
        except SystemExit as e:  # argparse usage errors
            code = e.code
    return InProcessRun(code, out.getvalue(), err.getvalue())


def read_cells(path):
    """The file's /cells as a list of dicts with str fields decoded."""
    with h5py.File(path, "r") as f:
        data = f["cells"][()]
    out = []
    for row in data:
        d = {}
        for name in data.dtype.names:
            v = row[name]
            d[name] = v.decode().rstrip("\x00") if isinstance(v, bytes) else v.item()
        out.append(d)
    return out


def read_dataset(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


def markdown_tables(md, section):
    """Tables of one '## section' of report.md, each as (caption, header, rows) with rows as lists of cells."""
    lines = md.splitlines()
    try:
        start = lines.index(f"## {section}")
    except ValueError:
        raise AssertionError(f"report.md has no section '## {section}'") from None
    tables, caption, i = [], "", start + 1
    while i < len(lines) and not lines[i].startswith("## "):
        if lines[i].startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split(" | ")])
                i += 1
            tables.append((caption, block[0], block[2:]))
            continue
        if lines[i].strip():
            caption = lines[i]
        i += 1
    return tables


def grid(table):
    """{(row label, input length): text} of one table."""
    _, header, rows = table
    return {(r[0], int(h)): text for r in rows for h, text in zip(header[1:], r[1:])}


def table_with_caption(tables, prefix):
    for t in tables:
        if t[0].startswith(prefix):
            return t
    raise AssertionError(f"no table captioned '{prefix}...' (captions: {[t[0] for t in tables]})")


def row_label(cell, cells_of_model, file_label=None):
    """The report's row label rule: format, plus TPn / [backend] only when the model has several, plus
    (file label) when the model has cells from several files (file_label given)."""
    label = cell["quant"]
    if len({c["tp_size"] for c in cells_of_model}) > 1:
        label += f" TP{cell['tp_size']}"
    if len({c["backend"] for c in cells_of_model}) > 1:
        label += f" [{cell['backend']}]"
    if file_label:
        label += f" ({file_label})"
    return label


def check_speed_table(tc, h5_path, report_dir, section, model, roofline_invalid=(), file_label=None,
                      cells_of_model=None):
    """Every qwenbench (cpu/cuda) cell of `model` in the file appears in the speed table with the file's numbers
    (or its status); a VALID cell the file marks noisy ends with 'NOISY [n]', no other cell does.
    roofline_invalid: (quant, tp, context) of VALID cells expected as 'INVALID (roofline)'.
    file_label / cells_of_model: for a section with cells of several files, the file's label in the row labels
    and the cells of all the files (for the TPn / [backend] rule). Returns the count."""
    with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as f:
        md = f.read()
    table = grid(table_with_caption(markdown_tables(md, section), "Speed:"))
    cells = [c for c in read_cells(h5_path) if c["model"] == model and c["backend"] in ("cpu", "cuda")]
    tc.assertTrue(cells, f"{h5_path} has no cell of model {model}")
    checked = 0
    for c in cells:
        key = (row_label(c, cells_of_model or cells, file_label), c["context_len"])
        tc.assertIn(key, table, f"speed table lacks row/column {key}; has {sorted(table)}")
        text = table[key]
        where = f"{key}: '{text}'"
        if (c["quant"], c["tp_size"], c["context_len"]) in roofline_invalid:
            tc.assertTrue(text.startswith("INVALID (roofline)"), f"{where} should be marked INVALID (roofline)")
        elif c["status"] != "VALID":
            tc.assertTrue(text.startswith(c["status"]), f"{where} should show status {c['status']}")
        else:
            m = SPEED_RE.match(text)
            tc.assertIsNotNone(m, f"{where} is not 'tok/s ± std (GPUs) / GiB'")
            for got, want, name in ((float(m.group(1)), c["speed_mean"], "speed_mean"),
                                    (float(m.group(2)), c["speed_std"], "speed_std"),
                                    (float(m.group(4)), c["peak_mem_total_gib"], "peak_mem_total_gib")):
                tc.assertLessEqual(abs(got - want), PRINT_TOLERANCE,
                                   f"{where}: {name} {got} != file {want!r} (tolerance {PRINT_TOLERANCE}: "
                                   "two printed decimals)")
            tc.assertEqual(int(m.group(3)), c["n_ranks"], f"{where}: GPUs != file n_ranks")
            tc.assertEqual(bool(m.group(5)), bool(c.get("noisy", 0)), f"{where}: NOISY mark != file's noisy field")
        checked += 1
    return checked


def check_csv_equals_file(tc, h5_path, report_dir):
    """cells.csv and runs.csv hold the file's numbers exactly (float64 round-trips through the CSV)."""
    import pandas as pd
    # NaN is a value of pct_of_floor, of the energy numbers and of the --interference fields (not measured): empty
    # in the CSV
    nan_columns = ("pct_of_floor", "energy_j", "joules_per_token", "power_mean_w", "power_peak_w", "sm_clock_mhz",
                   "mem_clock_mhz", "temperature_max_c", "alone_speed_mean", "alone_speed_std", "interference_ratio")
    cells_csv = pd.read_csv(os.path.join(report_dir, "cells.csv"), keep_default_na=False,
                            na_values={k: ["", "nan"] for k in nan_columns}, float_precision="round_trip")
    runs_csv = pd.read_csv(os.path.join(report_dir, "runs.csv"), float_precision="round_trip")
    mine = cells_csv[cells_csv["file"] == h5_path]
    file_cells = read_dataset(h5_path, "cells")
    tc.assertEqual(len(mine), len(file_cells), "cells.csv row count != /cells")
    for name in file_cells.dtype.names:
        want = file_cells[name]
        got = mine[name].to_numpy()
        if want.dtype.kind == "S":
            want = np.array([w.decode() for w in want], dtype=object)
            got = np.array(["" if isinstance(g, float) else str(g) for g in got], dtype=object)
            tc.assertTrue((want == got).all(), f"cells.csv column {name} differs from /cells")
        else:
            got, want = got.astype(np.float64), want.astype(np.float64)
            bad = np.flatnonzero((got != want) & ~(np.isnan(got) & np.isnan(want)))
            tc.assertEqual(len(bad), 0, f"cells.csv column {name} differs from /cells at rows {bad[:5]}: "
                                        f"{got[bad[:5]]} vs {want[bad[:5]]} (exact: CSV keeps full precision)")
    file_runs = read_dataset(h5_path, "runs")
    mine = runs_csv[runs_csv["file"] == h5_path]
    tc.assertEqual(len(mine), len(file_runs), "runs.csv row count != /runs")
    for name in file_runs.dtype.names:
        bad = np.flatnonzero(mine[name].to_numpy().astype(np.float64) != file_runs[name].astype(np.float64))
        tc.assertEqual(len(bad), 0, f"runs.csv column {name} differs from /runs at rows {bad[:5]}")


def check_png(tc, path):
    tc.assertTrue(os.path.isfile(path), f"plot {path} not written")
    with open(path, "rb") as f:
        head = f.read(8)
    tc.assertEqual(head, PNG_SIGNATURE, f"{path} is not a PNG")
    tc.assertGreater(os.path.getsize(path), 2000, f"{path} is suspiciously small (empty plot?)")
