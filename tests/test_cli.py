#!/usr/bin/env python3
"""test_cli.py - qwenbench's command line: --help from the flag table, one-line errors with exit 2; user-given
input files (--sweep, --expect-tokens) read and checked before the first cell, FIFOs refused without waiting;
export-weights --shards never writes an empty shard. Issue 21: list-valued --model/--quant, defaults that cannot
trap (short CPU job, time estimate, no-out notice, --out .h5 only), errors up front (repeat:ID, --resume settings),
did-you-mean and short forms.

Run by ctest: /usr/bin/python3 tests/test_cli.py PATH/TO/qwenbench            (cli: all but CpuJobs)
              /usr/bin/python3 tests/test_cli.py PATH/TO/qwenbench CpuJobs    (cli_cpu_jobs)
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

QB = None
RUN_CPU_JOBS = False  # set when the command line names CpuJobs
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--context-lengths", "4", "--generate-length", "2",
        "--repetitions", "1", "--warmup", "0"]


def run(*args, timeout=120, **kw):
    return subprocess.run([QB, *args], capture_output=True, text=True, timeout=timeout, **kw)


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
        # issue 20 item 10: parsing holes
        (["--seed", " -1"], "--seed: ' -1' is not an integer in [0, 2^64 - 1]"),
        (["--seed", "-1"], "--seed: '-1' is not an integer"),
        (["--seed", "+1"], "--seed: '+1' is not an integer"),
        (["--seed", "18446744073709551616"], "--seed"),
        (["--context-lengths", "1,,2"], "--context-lengths: '1,,2': empty item 2"),
        (["--context-lengths", "1,"], "empty item 2"),
        (["--context-lengths", ",1"], "empty item 1"),
        (["--context-lengths", ""], "--context-lengths: empty list"),
        (["--context-lengths", " 4"], "--context-lengths: ' 4' is not an integer"),
        (["--deadline", "1e-9"], "--deadline: '1e-9' is not a number of seconds in [1, 1e+06]"),
        (["--deadline", "0.5"], "--deadline: '0.5' is not a number of seconds in [1,"),
        (["--deadline", "nan"], "--deadline"),
        (["--deadline", "1e7"], "--deadline"),
        # the limits the sweep files share (config/limits.h)
        (["--context-lengths", "1048577"], "--context-lengths: 1048577 is out of range [1, 1048576]"),
        (["--generate-length", "1048577"], "--generate-length: 1048577 is out of range [1, 1048576]"),
        (["--repetitions", "1001"], "--repetitions: 1001 is out of range [1, 1000]"),
        (["--warmup", "101"], "--warmup: 101 is out of range [0, 100]"),
        (["--tp", "1025"], "--tp: 1025 is out of range [0, 1024]"),
        # the cell limit holds for the engine options' cross product too (6 lengths x 1944 combinations)
        (["--backend", "cpu", "--model", "qwen2.5-tiny", "--context-lengths", "1,2,3,4,5,6",
          "--allreduce", "auto,nccl,ipc-oneshot", "--tp-exchange", "auto,on,off", "--allreduce-norm",
          "auto,fused,two-step", "--decode-fusion", "auto,epilogues,none", "--quant-layout", "auto,rows",
          "--attn-prefill", "auto,fa2,wg,wgp", "--pdl", "auto,on,off"], "is more than 10000"),
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

    def test_help_states_the_limits(self):
        p = run("--help")
        for text in ["each in [1, 1048576], at most 32", "in [1, 1048576]", "in [1, 1000]", "in [0, 100]",
                     "at most 10000 cells", "at most 1048576 bytes", "at most 67108864 bytes", "in [1, 1e6]",
                     "in [0, 2^64 - 1]"]:
            self.assertIn(text, p.stdout)

    def test_deadline_bounds_accepted(self):
        for v in ["1", "1e6"]:
            p = run("--deadline", v, "--help")
            self.assertEqual(p.returncode, 0, p.stderr)


def one_error_line(test, p, *fragments):
    test.assertEqual(p.returncode, 2, f"rc {p.returncode}\n{p.stderr}")
    lines = [l for l in p.stderr.splitlines() if not l.startswith("#")]
    test.assertEqual(len(lines), 1, p.stderr)
    test.assertIn("qwenbench: error:", lines[0])
    for f in fragments:
        test.assertIn(f, lines[0])


class InputFiles(unittest.TestCase):
    """--sweep and --expect-tokens: regular files only, read and checked before the first cell (issue 20 item 9)."""

    def quick(self, *args, limit=20):
        t0 = time.time()
        p = subprocess.run([QB, *args], capture_output=True, text=True, timeout=limit)  # a hang fails the test
        return p, time.time() - t0

    def test_fifo_sweep_is_refused_at_once(self):
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "sweep.json")
            os.mkfifo(fifo)
            p, took = self.quick("--backend", "cpu", "--sweep", fifo)
            one_error_line(self, p, fifo, "not a regular file")
            self.assertLess(took, 15)

    def test_fifo_expect_tokens_is_refused_at_once(self):
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "peer.json")
            os.mkfifo(fifo)
            out = os.path.join(d, "r.h5")
            p, took = self.quick(*TINY, "--expect-tokens", fifo, "--out", out)
            one_error_line(self, p, "--expect-tokens", fifo, "not a regular file")
            self.assertFalse(os.path.exists(out), "no cell may run")

    def test_bad_expect_tokens_files_exit_2_before_any_cell(self):
        cases = [
            (None, "cannot open"),
            ("{\"cells\": [{\"model\": \"\", \"context_len\": 4, \"tokens\": [1, 2.5]}]}",
             "cells[0].tokens[1]: must be an integer token id"),
            ("{\"cells\": [{\"context_len\": 4, \"tokens\": [1, \"7\"]}]}", "cells[0].tokens[1]"),
            ("{\"cells\": [{\"context_len\": 4, \"tokens\": [-1]}]}", "cells[0].tokens[0]"),
            ("{\"cells\": [{\"context_len\": 4, \"tokens\": [1]}, {\"context_len\": \"4\", \"tokens\": []}]}",
             "cells[1].context_len"),
            ("{\"cells\": [{\"context_len\": 4}]}", "cells[0].tokens: must be an array"),
            ("{\"engine\": \"x\"}", "cells: must be an array"),
            ("{\"cells\": [], \"cells\": []}", "duplicate"),
            ("[1, 2", "line 1"),
        ]
        with tempfile.TemporaryDirectory() as d:
            for i, (text, expected) in enumerate(cases):
                with self.subTest(expected=expected):
                    path = os.path.join(d, f"peer{i}.json")
                    if text is not None:
                        with open(path, "w") as f:
                            f.write(text)
                    out = os.path.join(d, f"r{i}.h5")
                    p, _ = self.quick(*TINY, "--expect-tokens", path, "--out", out)
                    one_error_line(self, p, "--expect-tokens", expected)
                    self.assertFalse(os.path.exists(out), "no cell may run")

    def test_good_expect_tokens_file_is_used(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "peer.json")
            with open(path, "w") as f:
                json.dump({"engine": "peer", "meta": {"x": 1},
                           "cells": [{"model": "other", "context_len": 4, "tokens": [1, 2], "speed_mean": 1.5}]}, f)
            p, _ = self.quick(*TINY, "--expect-tokens", path, limit=120)
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_sweep_over_the_cell_limit_is_refused_quickly(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "big.json")
            with open(path, "w") as f:
                json.dump({"entries": [{"models": ["qwen2.5-tiny"], "quants": ["bf16"],
                                        "context_lengths": list(range(1, 100001))}]}, f)
            p, took = self.quick("--backend", "cpu", "--sweep", path)
            one_error_line(self, p, "entries[0]", "more than 10000 cells")
            self.assertLess(took, 10)

    def test_sweep_settings_have_the_flags_limits(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s.json")
            for field, value in [("generate_length", 1 << 24), ("repetitions", 1 << 20), ("warmup", 1 << 20)]:
                with self.subTest(field=field):
                    with open(path, "w") as f:
                        json.dump({field: value, "entries": [{"models": ["qwen2.5-tiny"], "quants": ["bf16"],
                                                              "context_lengths": [4]}]}, f)
                    p, _ = self.quick("--backend", "cpu", "--sweep", path)
                    one_error_line(self, p, field, "out of range")


class ModelConfig(unittest.TestCase):
    def test_rope_scaling_without_type_is_refused(self):
        with open(os.path.join(FIXTURES, "yarn", "config.json")) as f:
            cfg = json.load(f)
        with tempfile.TemporaryDirectory() as d:
            for scaling in [{"factor": 4.0, "original_max_position_embeddings": 32}, {}]:
                with self.subTest(scaling=scaling):
                    cfg["rope_scaling"] = scaling
                    with open(os.path.join(d, "config.json"), "w") as f:
                        json.dump(cfg, f)
                    p = run("--backend", "cpu", "--model", d, "--context-lengths", "4", "--generate-length", "2")
                    one_error_line(self, p, "rope_scaling", "\"type\"")


def cell_list(path):
    import h5py  # Debian python3-h5py
    with h5py.File(path, "r") as f:
        cells = f["cells"][()]
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    return [(text(c["model"]), text(c["quant"]), int(c["context_len"])) for c in cells]


class CpuJobs(unittest.TestCase):
    """The tests that run qwen2.5-0.5b cells (half a minute each on 2 cores): ctest runs them as cli_cpu_jobs
    (test_cli.py BIN CpuJobs), apart from the quick ones."""

    @classmethod
    def setUpClass(cls):
        if not RUN_CPU_JOBS:
            raise unittest.SkipTest("run by ctest cli_cpu_jobs: test_cli.py BIN CpuJobs")

    def test_model_and_quant_lists_cross(self):
        """Issue 21 item 2: --model and --quant take lists; the cells are their product, model outermost."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = run("--backend", "cpu", "--model", "qwen2.5-tiny,qwen2.5-0.5b", "--quant", "bf16,gptq-int8",
                    "--context-lengths", "1,2", "--generate-length", "1", "--repetitions", "1", "--warmup", "0",
                    "--out", out, timeout=900)
            self.assertEqual(p.returncode, 0, p.stderr)
            expected = [(m, q, n) for m in ["qwen2.5-tiny", "qwen2.5-0.5b"] for q in ["bf16", "gptq-int8"]
                        for n in [1, 2]]
            self.assertEqual(cell_list(out), expected)

    def test_backend_cpu_without_model_runs_the_short_job(self):
        """Issue 21 item 4: the short CPU job's model and inputs (a shorter generation, to keep CI quick)."""
        p = run("--backend", "cpu", "--generate-length", "2", "--repetitions", "1", "--warmup", "0", timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        said = [l for l in p.stderr.splitlines() if "without --model" in l]
        self.assertEqual(len(said), 1, p.stderr)
        self.assertIn("# --backend cpu without --model: the CPU reference engine runs a short job", said[0])
        self.assertIn("model qwen2.5-0.5b (random weights); inputs 1,32;", said[0])
        rows = [l for l in p.stdout.splitlines() if l.startswith("| qwen2.5-0.5b")]
        self.assertEqual(len(rows), 2, p.stdout)  # inputs 1 and 32
        self.assertNotIn("estimated", p.stderr)  # the short job takes seconds


class Sweeps(unittest.TestCase):
    """Issue 21 item 2: --model and --quant take lists."""

    def test_bad_lists_are_one_line(self):
        for args, expected in [
            (["--model", "qwen2.5-tiny,,qwen2.5-0.5b"], "--model: empty item 2"),
            (["--model", "qwen2.5-tiny,"], "--model: empty item 2"),
            (["--model", "qwen2.5-tiny,qwen2.5-tiny"], "--model: item 2 repeats item 1"),
            (["--quant", "bf16,bf16"], "--quant: 'bf16' is listed twice"),
            (["--quant", "bf16,int3"], "--quant: unknown format 'int3'"),
            (["--quant", "bf16,"], "--quant: 'bf16,': empty item 2"),
            (["--backend", "cpu", "--model", "qwen2.5-tiny,qwen2.5-999b", "--context-lengths", "4"], "qwen2.5-999b"),
        ]:
            with self.subTest(args=args):
                one_error_line(self, run(*args), expected)

    def test_quick_products_on_tiny_models(self):
        # the product code on models that take no time (the 2 x 2 x 2 case with qwen2.5-0.5b is in CpuJobs)
        ckpt = os.path.join(FIXTURES, "gqa_untied")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.h5")
            p = run(*TINY, "--model", f"qwen2.5-tiny,{ckpt}", "--context-lengths", "3,4", "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(cell_list(out), [("qwen2.5-tiny", "bf16", 3), ("qwen2.5-tiny", "bf16", 4),
                                              ("gqa_untied", "bf16", 3), ("gqa_untied", "bf16", 4)])
            out = os.path.join(d, "q.h5")
            p = run(*TINY, "--quant", "gptq-int8,bf16", "--context-lengths", "3,4", "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(cell_list(out), [("qwen2.5-tiny", "gptq-int8", 3), ("qwen2.5-tiny", "gptq-int8", 4),
                                              ("qwen2.5-tiny", "bf16", 3), ("qwen2.5-tiny", "bf16", 4)])

    def test_help_shows_lists_and_sweep_doc(self):
        p = run("--help")
        self.assertIn("-m, --model LIST", p.stdout)
        self.assertIn("--quant LIST", p.stdout)
        self.assertIn("docs/SWEEPS.md", p.stdout)


class Defaults(unittest.TestCase):
    """Issue 21 item 4: defaults that cannot trap."""

    def test_big_cpu_run_says_its_time_before_starting(self):
        import threading
        proc = subprocess.Popen([QB, "--backend", "cpu", "--model", "qwen2.5-7b"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        guard = threading.Timer(120, proc.kill)  # a run that never says it ends the test, not CI
        guard.start()
        try:
            lines = []
            for line in proc.stderr:  # a debug build warns first; then the estimate, before any cell
                lines.append(line)
                if line.startswith("# no --out") or line.startswith("# cell") or len(lines) > 5:
                    break
            said = "".join(lines)
            self.assertRegex(said, r"(?m)^# estimated \d+ minutes on the CPU: 4 cell\(s\) x 4 runs x 2048 generated")
            self.assertIn("# no --out: the results are printed only, nothing is saved", lines[-1])
            self.assertNotIn("# cell", said)
        finally:
            guard.cancel()
            proc.kill()
            proc.communicate()

    def test_small_run_says_nothing_is_saved_without_out(self):
        p = run(*TINY)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# no --out: the results are printed only, nothing is saved", p.stderr)
        self.assertNotIn("estimated", p.stderr)
        with tempfile.TemporaryDirectory() as d:
            p = run(*TINY, "--out", os.path.join(d, "r.hdf5"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("nothing is saved", p.stderr)

    def test_out_must_be_hdf5(self):
        with tempfile.TemporaryDirectory() as d:
            for value, expected in [("-", "--out -: the results file is HDF5 and cannot go to stdout"),
                                    (os.path.join(d, "x.txt"), "its name must end in .h5 or .hdf5"),
                                    (os.path.join(d, "x"), "its name must end in .h5 or .hdf5")]:
                with self.subTest(out=value):
                    one_error_line(self, run(*TINY, "--out", value), expected)
            self.assertEqual(os.listdir(d), [])


class UpFront(unittest.TestCase):
    """Issue 21 item 5: errors before the first cell, exit 2, one line; did-you-mean; short forms."""

    def test_repeat_id_outside_the_vocabulary(self):
        # qwen2.5-tiny has 1024 tokens: the check names the cell's model, before any cell ran
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = run("--backend", "cpu", "--model", "qwen2.5-tiny", "--context-lengths", "4", "--prompt",
                    "repeat:1024", "--out", out)
            one_error_line(self, p, "--prompt repeat:1024: token id outside the vocabulary of qwen2.5-tiny",
                           "ids 0 to 1023")
            self.assertNotIn("# cell", p.stderr)
            self.assertFalse(os.path.exists(out), "no cell may run")
            p = run(*TINY, "--prompt", "repeat:1023")
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_resume_with_other_settings_names_the_setting(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = run(*TINY, "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, "rb") as f:
                before = f.read()
            args = [a if a != "2" else "3" for a in TINY]  # --generate-length 3
            p = run(*args, "--out", out, "--resume")
            one_error_line(self, p, f"--resume: {out} was made with other settings: generate_length 2 there, 3 now")
            self.assertNotIn("MPI_ABORT", p.stderr + p.stdout)
            p = run(*TINY, "--context-lengths", "5", "--out", out, "--resume")
            one_error_line(self, p, "was made with other settings: cells[0] ")
            with open(out, "rb") as f:
                self.assertEqual(f.read(), before, "the file is untouched")
            p = run(*TINY, "--out", out, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("1 of 1 cells already in", p.stderr)

    def test_resume_of_a_foreign_file(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            with open(out, "w") as f:
                f.write("not hdf5")
            p = run(*TINY, "--out", out, "--resume")
            one_error_line(self, p, f"--resume: {out} is not a readable qwenbench results file")
            self.assertNotIn("MPI_ABORT", p.stderr + p.stdout)

    def test_unknown_flags_suggest_the_closest(self):
        for flag, expected in [("--modle", "unknown flag '--modle' (did you mean --model?)"),
                               ("--generate-lenght", "(did you mean --generate-length?)"),
                               ("--repetition", "(did you mean --repetitions?)"),
                               ("--alreduce", "(did you mean --allreduce?)"),
                               ("--decode-fusoin", "(did you mean --decode-fusion?)"),
                               ("--zzzzzz", "unknown flag '--zzzzzz' (see --help)"),
                               ("-x", "unknown flag '-x'")]:
            with self.subTest(flag=flag):
                one_error_line(self, run(flag, "1"), expected)

    def test_short_forms(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = run("--backend", "cpu", "-m", "qwen2.5-tiny", "-p", "3,4", "-n", "2", "-r", "2", "--warmup", "0",
                    "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(cell_list(out), [("qwen2.5-tiny", "bf16", 3), ("qwen2.5-tiny", "bf16", 4)])
            import h5py
            with h5py.File(out, "r") as f:
                settings = json.loads(f.attrs["settings_json"])
            self.assertEqual((settings["generate_length"], settings["repetitions"]), (2, 2))
        one_error_line(self, run("-n", "0"), "--generate-length: 0 is out of range")
        one_error_line(self, run("-m"), "--model: missing value")
        p = run("-h")
        self.assertEqual(p.returncode, 0)
        for form in ["-m, --model", "-p, --context-lengths", "-n, --generate-length", "-r, --repetitions",
                     "-h, --help"]:
            self.assertIn(form, p.stdout)


class ExportShards(unittest.TestCase):
    def export(self, out, shards):
        return subprocess.run([QB, "export-weights", "--model", "qwen2.5-tiny", "--out", out, "--shards", str(shards)],
                              capture_output=True, text=True, timeout=120)

    def test_too_many_shards_are_refused_and_none_is_empty(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ck")
            p = self.export(out, 1000)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("--shards 1000: more than the", p.stderr)
            self.assertIn("a shard would be empty", p.stderr)
            self.assertFalse(os.path.exists(out) and os.listdir(out), "nothing written")
            n_tensors = int(p.stderr.split("more than the ")[1].split()[0])
            # with n - 1 shards, the old even split (ceil) left about half of them empty
            for shards in [n_tensors - 1, n_tensors]:
                with self.subTest(shards=shards):
                    ck = os.path.join(d, f"ck{shards}")
                    p = self.export(ck, shards)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    with open(os.path.join(ck, "model.safetensors.index.json")) as f:
                        used = set(json.load(f)["weight_map"].values())
                    files = {n for n in os.listdir(ck) if n.endswith(".safetensors")}
                    self.assertEqual(len(files), shards)
                    self.assertEqual(used, files, "every shard holds a tensor")
            p = subprocess.run([QB, "export-weights", "--model", "qwen2.5-tiny", "--out", out, "--seed", " -1"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--seed", p.stderr)


if __name__ == "__main__":
    QB = os.path.abspath(sys.argv.pop(1))
    RUN_CPU_JOBS = any(a.startswith("CpuJobs") for a in sys.argv[1:])
    unittest.main(verbosity=2)
