#!/usr/bin/env python3
"""test_output_formats.py - -o csv|json|jsonl (only data on stdout, the fields and values of the results file's
/cells) and `qwenbench export FILE.h5` (the same bytes as the -o output of the run that wrote the file).

Run by ctest: /usr/bin/python3 tests/test_output_formats.py PATH/TO/qwenbench PATH/TO/mpirun
Needs h5py (Debian python3-h5py). Environment from ctest: OMPI_ALLOW_RUN_AS_ROOT*, QB_FIXTURE_DIR.
"""
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py

QB = MPIRUN = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1", "--generate-length", "4",
        "--repetitions", "2"]


def qb(*args, np_=1, timeout=300):
    cmd = [QB, *args]
    if np_ > 1:
        cmd = [MPIRUN, "-np", str(np_), "--oversubscribe", "--bind-to", "none", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def file_cells(path):
    """The /cells rows as dicts of Python values (strings decoded), in the file's field order."""
    with h5py.File(path, "r") as f:
        table = f["cells"][()]
    names = list(table.dtype.names)
    rows = []
    for rec in table:
        row = {}
        for n in names:
            v = rec[n]
            row[n] = v.decode() if isinstance(v, bytes) else v.item()
        rows.append(row)
    return names, rows


class Formats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.runs = {}
        for fmt in ["csv", "json", "jsonl"]:
            path = os.path.join(cls.tmp.name, f"{fmt}.h5")
            flag = ["-o", fmt] if fmt != "json" else [f"--output-format={fmt}"]
            cls.runs[fmt] = (path, qb(*TINY, "--context-lengths", "1,8", *flag, "--out", path))

    def check_values(self, fmt, got_rows, from_text):
        path, _ = self.runs[fmt]
        names, want = file_cells(path)
        self.assertEqual(len(got_rows), len(want))
        for got, exp in zip(got_rows, want):
            self.assertEqual(list(got.keys()), names, "fields and their order are the schema's")
            for n in names:
                e = exp[n]
                g = from_text(e, got[n])
                if isinstance(e, float):
                    if g is None and fmt in ("json", "jsonl"):  # JSON writes a non-finite number as null
                        self.assertFalse(math.isfinite(e), f"{n}: null for the finite {e!r}")
                        continue
                    self.assertIsInstance(g, float, n)
                    self.assertTrue(g == e or (math.isnan(e) and math.isnan(g)), f"{n}: {g!r} != {e!r}")
                else:
                    self.assertEqual(type(g), type(e), n)
                    self.assertEqual(g, e, n)

    def test_runs_succeed_with_notes_on_stderr(self):
        for fmt, (path, p) in self.runs.items():
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("# qwenbench", p.stderr)
            self.assertIn(f"# results: {path}", p.stderr)
            self.assertNotIn("#", p.stdout.splitlines()[0] if p.stdout else "")
            self.assertNotIn("| model", p.stdout)

    def test_csv_is_the_file_cells(self):
        out = self.runs["csv"][1].stdout
        rows = list(csv.DictReader(io.StringIO(out, newline="")))
        self.assertEqual(len(out.splitlines()), 1 + 2, "a header line and one line per cell, nothing else")

        def from_text(expected, text):  # CSV is text: numbers must read back as the same number
            if isinstance(expected, str):
                return text
            return float(text) if isinstance(expected, float) else int(text)

        self.check_values("csv", rows, from_text)

    def test_json_is_one_array_of_the_file_cells(self):
        rows = json.loads(self.runs["json"][1].stdout)  # the whole of stdout parses
        self.assertIsInstance(rows, list)
        self.check_values("json", rows, lambda e, g: g)

    def test_jsonl_is_one_object_per_line(self):
        lines = self.runs["jsonl"][1].stdout.splitlines()
        self.assertEqual(len(lines), 2)
        self.check_values("jsonl", [json.loads(line) for line in lines], lambda e, g: g)

    def test_export_equals_the_run_output(self):
        for fmt, (path, p) in self.runs.items():
            e = qb("export", path, "--format", fmt)
            self.assertEqual(e.returncode, 0, e.stderr)
            self.assertEqual(e.stdout, p.stdout, fmt)
            self.assertEqual(e.stderr, "")
        path, p = self.runs["csv"]
        e = qb("export", path)  # csv is export's default
        self.assertEqual(e.stdout, p.stdout)

    def test_export_out_writes_the_same_bytes_and_keeps_files(self):
        path, p = self.runs["jsonl"]
        target = os.path.join(self.tmp.name, "cells.jsonl")
        e = qb("export", path, "--format", "jsonl", "--out", target)
        self.assertEqual(e.returncode, 0, e.stderr)
        self.assertEqual(e.stdout, "")
        with open(target) as fh:
            self.assertEqual(fh.read(), p.stdout)
        again = qb("export", path, "--format", "jsonl", "--out", target)
        self.assertEqual(again.returncode, 2)
        self.assertIn("--overwrite", again.stderr)
        self.assertEqual(qb("export", path, "--format", "jsonl", "--out", target, "--overwrite").returncode, 0)
        itself = qb("export", path, "--out", path, "--overwrite")
        self.assertEqual(itself.returncode, 2)
        self.assertIn("results file being exported", itself.stderr)
        self.assertEqual(file_cells(path)[1][0]["model"], "qwen2.5-tiny", "the results file is untouched")

    def test_odd_strings_and_non_finite_numbers(self):
        path = os.path.join(self.tmp.name, "odd.h5")
        shutil.copy(self.runs["csv"][0], path)
        reason = 'line\nbreak, "quoted"\x1b[31m \u202e bidi, caf\u00e9'
        with h5py.File(path, "r+") as f:
            cells = f["cells"][()]
            cells[0]["reason"] = reason.encode()
            cells[0]["speed_std"] = float("nan")
            cells[1]["speed_max"] = float("inf")
            f["cells"][...] = cells
            if "content_crc64" in f.attrs:  # hand-edited: no longer qwenbench's content, read as a foreign file
                del f.attrs["content_crc64"]
        shown = 'line\\nbreak, "quoted"\\x1b[31m \\u{202e} bidi, caf\u00e9'  # as io/printable.h writes it
        c = qb("export", path, "--format", "csv")
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(len(c.stdout.splitlines()), 3, "no raw line break inside a field")
        self.assertNotIn("\x1b", c.stdout)
        rows = list(csv.DictReader(io.StringIO(c.stdout, newline="")))
        self.assertEqual(rows[0]["reason"], shown)
        self.assertEqual(rows[0]["speed_std"], "nan")
        self.assertEqual(rows[1]["speed_max"], "inf")
        j = qb("export", path, "--format", "json")
        self.assertEqual(j.returncode, 0, j.stderr)
        self.assertNotIn("NaN", j.stdout)
        objs = json.loads(j.stdout)
        self.assertEqual(objs[0]["reason"], shown)
        self.assertIsNone(objs[0]["speed_std"])
        self.assertIsNone(objs[1]["speed_max"])


class Refusals(unittest.TestCase):
    def test_unknown_format_exits_2_with_the_allowed_values(self):
        for args in (["-o", "xml"], ["--output-format", "CSV"]):
            p = qb(*TINY, *args)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn("md, csv, json, jsonl", p.stderr)
            self.assertIn("--output-format", p.stderr)

    def test_export_refusals_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "not.h5")
            with open(bad, "w") as fh:
                fh.write("not hdf5")
            for args, words in ((["export", bad, "--format", "xml"], "md, csv, json, jsonl"),
                                (["export"], "no results file"),
                                (["export", bad], "not.h5"),
                                (["export", bad, "--bogus"], "--bogus"),
                                (["export", bad, "--format"], "missing value")):
                p = qb(*args)
                self.assertEqual(p.returncode, 2, (args, p.stderr))
                self.assertEqual(p.stdout, "")
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertIn(words, p.stderr)

    def test_help_lists_the_flag_and_the_subcommand(self):
        p = qb("--help")
        self.assertIn("--output-format md|csv|json|jsonl", p.stdout)
        self.assertIn("qwenbench export FILE.h5", p.stdout)


class Escaping(unittest.TestCase):
    def test_model_path_with_comma_and_quotes_round_trips(self):
        fixture = os.path.join(os.environ.get("QB_FIXTURE_DIR", ""), "gqa_untied")
        if not os.path.exists(os.path.join(fixture, "config.json")):
            self.skipTest("no fixture")
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, 'a,b "q" \\ c')
            shutil.copytree(fixture, model)
            path = os.path.join(d, "r.h5")
            # --model splits at commas (a list): a path holding one goes through a sweep file (docs/SWEEPS.md)
            sweep = os.path.join(d, "sweep.json")
            with open(sweep, "w") as f:
                json.dump({"generate_length": 3, "repetitions": 1,
                           "entries": [{"models": [model], "quants": ["bf16"], "context_lengths": [4]}]}, f)
            p = qb("--backend", "cpu", "--sweep", sweep, "-o", "csv", "--out", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            _, want = file_cells(path)
            rows = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
            self.assertEqual([r["model"] for r in rows], [w["model"] for w in want])
            self.assertEqual(rows[0]["model"], os.path.basename(model))
            j = qb("export", path, "--format", "json")
            self.assertEqual(json.loads(j.stdout)[0]["model"], os.path.basename(model))


class Ranks(unittest.TestCase):
    def test_two_ranks_print_only_data(self):
        p = qb(*TINY, "--context-lengths", "1", "-o", "jsonl", np_=2)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["n_ranks"], 2)


if __name__ == "__main__":
    QB = os.path.abspath(sys.argv.pop(1))
    MPIRUN = sys.argv.pop(1)
    unittest.main(verbosity=2)
