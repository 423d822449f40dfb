#!/usr/bin/env python3
"""test_engine_options.py - the engine options end to end on the CPU engine (src/engine/engine_options.h).

Run by ctest: /usr/bin/python3 tests/test_engine_options.py PATH/TO/qwenbench
Checks: an unknown value is one line naming the flag and the allowed values (exit 2, nothing run); a list-valued
option on the command line and in a sweep file gives one cell per value, each recording its options and the
engine's choices; --resume completes such a sweep; --help lists the options; the release binary has no test hooks.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import h5py

QB = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1", "--generate-length", "4",
        "--repetitions", "1", "--warmup", "0"]


def qb(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([QB, *args], capture_output=True, text=True, timeout=timeout, env=e)


def cells_of(path):
    with h5py.File(path, "r") as f:
        return f["cells"][()], json.loads(f.attrs["settings_json"])


def field(cell, name):
    return cell[name].decode()


class Values(unittest.TestCase):
    def test_unknown_value_names_flag_and_choices(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = qb(*TINY, "--allreduce", "fastest", "--out", out)
            self.assertEqual(p.returncode, 2, p.stderr)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn("--allreduce", lines[0])
            self.assertIn("'fastest'", lines[0])
            self.assertIn("auto, nccl, ipc-oneshot", lines[0])
            self.assertFalse(os.path.exists(out), "nothing may run")

    def test_bad_lists(self):
        for bad in ["auto,,none", "auto,auto", ""]:
            p = qb(*TINY, "--decode-fusion", bad)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertIn("--decode-fusion", p.stderr)

    def test_help_lists_every_option(self):
        p = qb("--help")
        self.assertEqual(p.returncode, 0)
        for flag in ["--allreduce", "--tp-exchange", "--allreduce-norm", "--decode-fusion", "--quant-layout",
                     "--attn-prefill", "--pdl"]:
            self.assertIn(flag, p.stdout)
        self.assertIn("auto|fa2|wg|wgp", p.stdout)


class Lists(unittest.TestCase):
    def test_command_line_list_gives_a_cell_per_value(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = qb(*TINY, "--context-lengths", "1,4", "--decode-fusion", "auto,none", "--pdl", "off", "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, settings = cells_of(out)
            self.assertEqual(len(cells), 4)
            opts = [field(c, "engine_options") for c in cells]
            self.assertEqual([o.split(";")[3] for o in opts], ["decode_fusion=auto"] * 2 + ["decode_fusion=none"] * 2)
            self.assertTrue(all("pdl=off" in o for o in opts))
            self.assertEqual(cells["context_len"].tolist(), [1, 4, 1, 4])
            for c in cells:
                self.assertTrue(field(c, "engine_choices").startswith("engine=cpu-reference"), field(c, "engine_choices"))
            self.assertEqual([c[3] for c in settings["cells"]], opts)
            self.assertNotIn("test_hooks", settings)
            # the report shows what each cell asked for and what ran
            src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            rep = os.path.join(d, "report")
            p = subprocess.run(["/usr/bin/python3", "-m", "analysis.report", out, "--out", rep], cwd=src,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(rep, "report.md"), encoding="utf-8") as f:
                text = f.read()
            self.assertIn("## Engine choices", text)
            self.assertIn("decode_fusion=none; pdl=off".replace("; ", ";"), text)
            self.assertIn("engine=cpu-reference", text)

    def test_sweep_list_and_resume(self):
        with tempfile.TemporaryDirectory() as d:
            sweep = os.path.join(d, "s.json")
            with open(sweep, "w") as f:
                json.dump({"name": "opts", "generate_length": 4, "repetitions": 1, "warmup": 0,
                           "allreduce": ["auto", "nccl"], "attn_prefill": "fa2",
                           "entries": [{"models": ["qwen2.5-tiny"], "quants": ["bf16"], "context_lengths": [1, 8]}]}, f)
            out = os.path.join(d, "r.h5")
            args = ["--backend", "cpu", "--threads", "1", "--sweep", sweep, "--out", out]
            p = qb(*args)
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, _ = cells_of(out)
            opts = [field(c, "engine_options") for c in cells]
            self.assertEqual(len(cells), 4)
            self.assertEqual(sum("allreduce=nccl" in o for o in opts), 2)
            self.assertTrue(all("attn_prefill=fa2" in o for o in opts))
            # the flag overrides the file; every cell already there: --resume runs nothing new
            p = qb(*args, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("4 of 4 cells already", p.stderr)
            cells, _ = cells_of(out)
            self.assertEqual(len(cells), 4)

    def test_sweep_bad_value_names_the_key(self):
        with tempfile.TemporaryDirectory() as d:
            sweep = os.path.join(d, "s.json")
            with open(sweep, "w") as f:
                json.dump({"quant_layout": ["rows", "tiles"],
                           "entries": [{"models": ["qwen2.5-tiny"], "quants": ["bf16"], "context_lengths": [1]}]}, f)
            p = qb("--backend", "cpu", "--sweep", sweep)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("quant_layout", p.stderr)
            self.assertIn("'tiles'", p.stderr)
            self.assertIn("auto, rows, tiled", p.stderr)


class ReleaseBinary(unittest.TestCase):
    def test_no_test_hooks(self):
        with open(QB, "rb") as f:
            self.assertNotIn(b"QWENBENCH_TEST_", f.read(), "the release binary must not read test hooks")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = qb(*TINY, "--context-lengths", "1", "--check", "reference", "--out", out,
                   env={"QWENBENCH_TEST_CORRUPT": "argmax", "QWENBENCH_TEST_SPEEDUP": "1e9"})
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, settings = cells_of(out)
            self.assertEqual(field(cells[0], "status"), "VALID")
            self.assertNotIn("test_hooks", settings)
            self.assertNotIn("QWENBENCH_TEST_SPEEDUP", settings.get("environment", {}))


if __name__ == "__main__":
    QB = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
