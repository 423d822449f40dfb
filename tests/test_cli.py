#!/usr/bin/env python3
"""test_cli.py - qwenbench's command line: --help from the flag table, one-line errors with exit 2.

Run by ctest: /usr/bin/python3 tests/test_cli.py PATH/TO/qwenbench
"""
import os
import subprocess
import sys
import tempfile
import unittest

QB = None


def run(*args, **kw):
    return subprocess.run([QB, *args], capture_output=True, text=True, timeout=120, **kw)


class Help(unittest.TestCase):
    def test_help_lists_every_fixed_flag_with_defaults(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for flag in ["--model", "--quant", "--context-lengths", "--generate-length", "--repetitions", "--warmup",
                     "--backend", "--prompt", "--out", "--seed", "--version", "--tp", "--resume", "--overwrite",
                     "--sweep", "--deadline"]:
            self.assertIn(flag, p.stdout)
        self.assertIn("[default: 1,6144,14336,30720]", p.stdout)
        self.assertIn("[default: 2048]", p.stdout)

    def test_version(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"qwenbench \d+\.\d+\.\d+ \(commit ")


class Errors(unittest.TestCase):
    CASES = [
        (["--bogus"], "unknown flag '--bogus'"),
        (["--generate-length", "0"], "--generate-length: 0 is out of range"),
        (["--generate-length", "x"], "--generate-length: 'x' is not an integer"),
        (["--context-lengths", "1,,a"], "--context-lengths"),
        (["--quant", "int3"], "--quant: unknown format 'int3'"),
        (["--backend", "tpu"], "--backend: unknown backend 'tpu'"),
        (["--prompt", "repeat:x"], "--prompt"),
        (["--model"], "--model: missing value"),
        (["--resume"], "--resume needs --out"),
        (["--resume", "--overwrite", "--out", "x.h5"], "exclude each other"),
        (["--model", "qwen2.5-999b", "--backend", "cpu"], "qwen2.5-999b"),
        (["--model", "qwen2.5-0.5b", "--backend", "cpu", "--tp", "2"], "--tp 2"),
        (["stray"], "unexpected argument 'stray'"),
        (["--rope-scaling", "bogus"], "--rope-scaling: 'bogus' is not auto, none or yarn:F"),
        (["--backend", "cpu", "--model", "qwen2.5-0.5b", "--context-lengths", "40000", "--generate-length", "4"],
         "not published with YaRN"),
    ]

    def test_each_error_is_one_line_exit_2(self):
        for args, expected in self.CASES:
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 2, f"{args}: rc {p.returncode}\n{p.stderr}")
                lines = [l for l in p.stderr.splitlines() if not l.startswith("#")]
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn("qwenbench: error:", lines[0])
                self.assertIn(expected, lines[0])

    def test_existing_results_file_is_refused_and_untouched(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            with open(path, "wb") as f:
                f.write(b"precious")
            p = run("--backend", "cpu", "--model", "qwen2.5-tiny", "--context-lengths", "4", "--out", path)
            self.assertEqual(p.returncode, 2)
            self.assertIn("exists", p.stderr)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"precious")

    def test_unwritable_directory_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            blocker = os.path.join(d, "file")
            open(blocker, "w").close()
            p = run("--backend", "cpu", "--model", "qwen2.5-tiny", "--context-lengths", "4",
                    "--out", os.path.join(blocker, "r.h5"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("qwenbench: error:", p.stderr)


if __name__ == "__main__":
    QB = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
