#!/usr/bin/env python3
"""test_e2e.py - qwenbench end to end on the CPU engine: results file, MPI ranks, faults, --resume, fixtures.

Run by ctest: /usr/bin/python3 tests/test_e2e.py PATH/TO/qwenbench PATH/TO/mpirun PATH/TO/qwenbench-testhooks
A run given QWENBENCH_TEST_* variables takes the test build (bench/test_hooks.h): the release binary has no hooks.
Needs h5py (Debian python3-h5py). Environment from ctest: OMPI_ALLOW_RUN_AS_ROOT*, QB_FIXTURE_DIR.
"""
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

QB = MPIRUN = QB_HOOKS = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1"]


def qb(*args, np_=1, timeout=300, env=None):
    hooked = any(k.startswith("QWENBENCH_TEST_") for k in (env or {}))
    cmd = [QB_HOOKS if hooked else QB, *args]
    if np_ > 1:
        cmd = [MPIRUN, "-np", str(np_), "--oversubscribe", "--bind-to", "none", *cmd]
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)


def cells_of(path):
    with h5py.File(path, "r") as f:
        cells = f["cells"][()]
        runs = f["runs"][()]
        tokens = f["generated_tokens"][()]
        steps = f["step_latency_s"][()]
        attrs = dict(f.attrs)
    return cells, runs, tokens, steps, attrs


def run_tokens(runs, tokens, cell):
    out = []
    for r in runs[runs["cell"] == cell]:
        out.append(tokens[r["token_offset"]:r["token_offset"] + r["n_gen"]].tolist())
    return out


class CpuRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "tp1.h5")
        cls.proc = qb(*TINY, "--context-lengths", "1,16,40", "--generate-length", "8", "--repetitions", "2",
                      "--out", cls.path)

    def test_run_succeeds_and_prints_table(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertIn("| model", self.proc.stdout)
        self.assertIn("qwen2.5-tiny", self.proc.stdout)

    def test_file_holds_every_cell_and_run(self):
        cells, runs, tokens, steps, attrs = cells_of(self.path)
        self.assertEqual(len(cells), 3)
        self.assertEqual([c.decode() for c in cells["status"]], ["VALID"] * 3)
        self.assertEqual(cells["context_len"].tolist(), [1, 16, 40])
        self.assertEqual(len(runs), 6)
        self.assertTrue((runs["n_gen"] == 8).all())
        self.assertEqual(len(tokens), 6 * 8)
        self.assertEqual(len(steps), 6 * 7)
        self.assertTrue((steps > 0).all())
        for key in ["build_commit", "command_line", "settings_json", "hosts", "devices_json", "mpi_version",
                    "hdf5_version"]:
            self.assertIn(key, attrs)
        self.assertGreater(float(attrs["copy_bandwidth_gbps"]), 0.0)
        devices = json.loads(attrs["devices_json"])
        self.assertEqual([d["rank"] for d in devices], [0])
        self.assertTrue(devices[0]["name"].startswith("cpu"))

    def test_numbers_are_consistent(self):
        cells, runs, tokens, steps, _ = cells_of(self.path)
        for i, c in enumerate(cells):
            rr = runs[runs["cell"] == i]
            speeds = rr["n_gen"] / rr["total_s"]
            np.testing.assert_allclose(rr["tok_per_s"], speeds, rtol=1e-9)
            self.assertAlmostEqual(c["speed_mean"], speeds.mean(), places=6)
            self.assertAlmostEqual(c["speed_std"], speeds.std(ddof=1), places=6)
            for r in rr:
                s = steps[r["step_offset"]:r["step_offset"] + r["n_gen"] - 1]
                self.assertLessEqual(s.sum(), r["decode_s"] * 1.05 + 1e-3)
            # the table prints the same mean
            self.assertIn(f"{c['speed_mean']:.2f}", self.proc.stdout)

    def test_repetitions_generate_identical_tokens(self):
        cells, runs, tokens, _, _ = cells_of(self.path)
        for i in range(len(cells)):
            t = run_tokens(runs, tokens, i)
            self.assertEqual(t[0], t[1])

    def test_tokens_command(self):
        p = subprocess.run([QB, "tokens", self.path, "--cell", "1"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cells, runs, tokens, _, _ = cells_of(self.path)
        first = " ".join(str(t) for t in run_tokens(runs, tokens, 1)[0])
        self.assertIn(first, p.stdout)

    def test_fewer_gpus_than_ranks(self):
        """--tp 1 under 2 ranks: rank 1 waits, the cells run on one rank and give TP1's tokens."""
        cells, runs, tokens, _, _ = cells_of(self.path)
        base = [run_tokens(runs, tokens, i)[0] for i in range(len(cells))]
        path = os.path.join(self.tmp.name, "tp1of2.h5")
        p = qb(*TINY, "--context-lengths", "1,16,40", "--generate-length", "8", "--repetitions", "2",
               "--tp", "1", "--out", path, np_=2)
        self.assertEqual(p.returncode, 0, p.stderr)
        c2, r2, t2, _, _ = cells_of(path)
        self.assertTrue((c2["tp_size"] == 1).all())
        self.assertTrue((c2["n_ranks"] == 1).all())
        with h5py.File(path, "r") as f:
            self.assertGreater(float(f.attrs["copy_bandwidth_gbps"]), 0.0, "measured even with a rank idle")
            self.assertEqual(len(json.loads(f.attrs["devices_json"])), 1)
        self.assertEqual([run_tokens(r2, t2, i)[0] for i in range(len(c2))], base)

    def test_tensor_parallel_ranks_match_tp1(self):
        cells, runs, tokens, _, _ = cells_of(self.path)
        base = [run_tokens(runs, tokens, i)[0] for i in range(len(cells))]
        for n in (2, 4):
            with self.subTest(ranks=n):
                path = os.path.join(self.tmp.name, f"tp{n}.h5")
                p = qb(*TINY, "--context-lengths", "1,16,40", "--generate-length", "8", "--repetitions", "2",
                       "--out", path, np_=n)
                self.assertEqual(p.returncode, 0, p.stderr)
                c2, r2, t2, _, _ = cells_of(path)
                self.assertTrue((c2["tp_size"] == n).all())
                self.assertEqual([run_tokens(r2, t2, i)[0] for i in range(len(c2))], base)


class ExportWeights(unittest.TestCase):
    def test_exported_checkpoint_runs_the_same_model(self):
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "new", "parent", "tiny-export")  # missing parents are created
            p = subprocess.run([QB, "export-weights", "--model", "qwen2.5-tiny", "--out", ck, "--seed", "7",
                                "--shards", "2"], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(os.path.join(ck, "model.safetensors.index.json")))
            got = []
            for model in (ck, "qwen2.5-tiny"):
                path = os.path.join(d, os.path.basename(model) + ".h5")
                p = qb("--backend", "cpu", "--model", model, "--seed", "7", "--context-lengths", "12",
                       "--generate-length", "8", "--repetitions", "1", "--out", path)
                self.assertEqual(p.returncode, 0, p.stderr)
                cells, runs, tokens, _, _ = cells_of(path)
                got.append(run_tokens(runs, tokens, 0)[0])
            self.assertEqual(got[0], got[1])

    def test_bad_arguments(self):
        p = subprocess.run([QB, "export-weights", "--model", "qwen2.5-tiny"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--model and --out are required", p.stderr)
        p = subprocess.run([QB, "export-weights", "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: qwenbench export-weights", p.stdout)


class ValidityChecks(unittest.TestCase):
    ARGS = [*TINY, "--context-lengths", "8", "--generate-length", "12", "--repetitions", "2"]

    def run_cell(self, *extra, env=None):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p = qb(*extra, "--out", path, env=env)
            self.assertIn(p.returncode, (0, 1), p.stderr)
            cells, runs, tokens, _, _ = cells_of(path)
            c = cells[0]
            return (p.returncode, c["status"].decode(), c["reason"].decode(), c["checks"].decode(),
                    run_tokens(runs, tokens, 0)[0])

    def test_reference_check_passes_on_a_correct_engine(self):
        rc, status, reason, checks, _ = self.run_cell(*self.ARGS, "--check", "reference")
        self.assertEqual((rc, status), (0, "VALID"), reason)
        self.assertIn("reference: 12/12 steps equal", checks)

    def test_corrupted_kernel_output_makes_the_cell_invalid(self):
        rc, status, reason, checks, _ = self.run_cell(*self.ARGS, "--check", "reference",
                                                      env={"QWENBENCH_TEST_CORRUPT": "argmax"})
        self.assertEqual((rc, status), (1, "INVALID"))
        self.assertIn("reference check failed at step 1", reason)

    def test_impossible_speed_is_caught(self):
        args = ["--backend", "cpu", "--model", "qwen2.5-0.5b", "--context-lengths", "1", "--generate-length", "3",
                "--repetitions", "1", "--warmup", "0"]
        rc, status, reason, checks, _ = self.run_cell(*args, env={"QWENBENCH_TEST_SPEEDUP": "100000"})
        self.assertEqual(status, "INVALID")
        self.assertIn("faster than the hardware allows", reason)

    def test_expected_tokens_from_another_engine(self):
        _, _, _, _, ours = self.run_cell(*self.ARGS)
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "peer.json")
            with open(f, "w") as fh:
                json.dump({"engine": "peer", "cells": [{"model": "qwen2.5-tiny", "context_len": 8, "tokens": ours}]}, fh)
            rc, status, _, checks, _ = self.run_cell(*self.ARGS, "--expect-tokens", f)
            self.assertEqual(status, "VALID")
            self.assertIn("expect-tokens (peer): 12/12 steps equal", checks)
            wrong = list(ours)
            wrong[5] = (wrong[5] + 517) % 1024
            with open(f, "w") as fh:
                json.dump({"engine": "peer", "cells": [{"model": "", "context_len": 8, "tokens": wrong}]}, fh)
            rc, status, reason, checks, _ = self.run_cell(*self.ARGS, "--expect-tokens", f)
            self.assertIn("first 5/12 steps equal", checks)
            self.assertEqual(status, "INVALID", checks)
            self.assertIn("differ at step 5", reason)


class TransformersTokens(unittest.TestCase):
    """A tokens file from transformers (the fixtures' greedy tokens) agrees through --expect-tokens."""

    def test_fixture_tokens_from_transformers_agree(self):
        fdir = os.path.join(os.environ.get("QB_FIXTURE_DIR", ""), "gqa_untied")
        if not os.path.exists(os.path.join(fdir, "expected.json")):
            self.skipTest("no fixture")
        with open(os.path.join(fdir, "expected.json")) as fh:
            exp = json.load(fh)
        case = exp["cases"][-1]
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "transformers.json")
            with open(f, "w") as fh:
                json.dump({"engine": f"transformers {exp['transformers_version']}",
                           "cells": [{"model": "", "context_len": case["prompt_len"],
                                      "tokens": case["greedy_tokens"]}]}, fh)
            path = os.path.join(d, "r.h5")
            n = len(case["greedy_tokens"])
            p = qb("--backend", "cpu", "--model", fdir, "--context-lengths", str(case["prompt_len"]),
                   "--generate-length", str(n), "--repetitions", "1", "--seed", str(case["prompt_seed"]),
                   "--expect-tokens", f, "--out", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, _, _, _, _ = cells_of(path)
            self.assertEqual(cells["status"][0].decode(), "VALID")
            self.assertIn(f"expect-tokens (transformers {exp['transformers_version']}): {n}/{n} steps equal",
                          cells["checks"][0].decode())


class RopeScaling(unittest.TestCase):
    def test_forced_yarn_is_recorded(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p = qb(*TINY, "--context-lengths", "8", "--generate-length", "4", "--repetitions", "1",
                   "--rope-scaling", "yarn:4", "--out", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, _, _, _, _ = cells_of(path)
            self.assertEqual(cells["rope_scaling"][0].decode(), "yarn:4 (forced)")


class Faults(unittest.TestCase):
    ARGS = [*TINY, "--context-lengths", "1,8,16,24", "--generate-length", "6", "--repetitions", "1"]

    def check_partial_then_resume(self, fault, deadline, limit_s):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            t0 = time.time()
            p = qb(*self.ARGS, "--deadline", str(deadline), "--out", path, np_=2,
                   env={"QWENBENCH_TEST_FAULT": fault}, timeout=limit_s + 60)
            took = time.time() - t0
            self.assertNotEqual(p.returncode, 0, "a dead/hung rank must fail the job")
            self.assertLess(took, limit_s, f"job took {took:.0f} s")
            cells, _, _, _, _ = cells_of(path)
            self.assertEqual(cells["context_len"].tolist(), [1, 8], "cells finished before the fault are kept")
            p = qb(*self.ARGS, "--deadline", str(deadline), "--out", path, "--resume", np_=2)
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, runs, _, _, _ = cells_of(path)
            self.assertEqual(sorted(cells["context_len"].tolist()), [1, 8, 16, 24], "every cell exactly once")
            self.assertEqual(len(runs), 4)
            return p

    def test_killed_rank_ends_job_and_resume_completes(self):
        self.check_partial_then_resume("kill:1:2", 20, 20 + 30)

    def test_hung_rank_ends_job_within_deadline(self):
        self.check_partial_then_resume("hang:1:2", 10, 10 + 30)

    def test_resume_refuses_other_settings(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p = qb(*TINY, "--context-lengths", "1", "--generate-length", "4", "--repetitions", "1", "--out", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            before = open(path, "rb").read()
            p = qb(*TINY, "--context-lengths", "1", "--generate-length", "5", "--repetitions", "1", "--out", path,
                   "--resume")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("other settings", p.stderr)
            self.assertEqual(open(path, "rb").read(), before)


def retype_tensor_to_f32(src, dst, name="model.norm.weight"):
    """Copy the one-file checkpoint src to dst with BF16 tensor `name` stored as F32: the same config and
    values, other tensor headers."""
    shutil.copytree(src, dst)
    path = os.path.join(dst, "model.safetensors")
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    out, parts, offset = {}, [], 0
    for key in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        t = dict(header[key])
        chunk = data[t["data_offsets"][0]:t["data_offsets"][1]]
        if key == name:
            assert t["dtype"] == "BF16"
            chunk = b"".join(b"\0\0" + chunk[i:i + 2] for i in range(0, len(chunk), 2))  # bf16 -> f32 exactly
            t["dtype"] = "F32"
        t["data_offsets"] = [offset, offset + len(chunk)]
        offset += len(chunk)
        out[key] = t
        parts.append(chunk)
    if meta is not None:
        out["__metadata__"] = meta
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(parts))


class RanksDisagree(unittest.TestCase):
    """Two ranks given different models or flags (per-rank arguments through a wrapper, as one model directory
    per node would): rank 0 prints every failing rank's message with its rank and host, and the job ends in
    seconds, not after the 600 s default --deadline, and never with the watchdog's "peer died or hung"."""
    LIMIT_S = 30
    COMMON = ["--backend", "cpu", "--threads", "1", "--context-lengths", "4", "--generate-length", "2",
              "--repetitions", "1"]
    # each rank appends its own $QB_TEST_ARGS_<rank> (the engine never reads these: the wrapper expands them)
    WRAPPER = 'eval "A=\\$QB_TEST_ARGS_$OMPI_COMM_WORLD_RANK"; exec "$0" $A "$@"'

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        fixtures = os.environ.get("QB_FIXTURE_DIR", "")
        cls.good = os.path.join(fixtures, "gqa_untied")
        cls.small = os.path.join(fixtures, "sharded")
        if not os.path.exists(os.path.join(cls.good, "config.json")):
            raise unittest.SkipTest("no fixtures")
        cls.bad_heads = os.path.join(cls.tmp.name, "bad_heads")
        shutil.copytree(cls.good, cls.bad_heads)
        cfg_path = os.path.join(cls.bad_heads, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["num_key_value_heads"] = 3
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        cls.bad_json = os.path.join(cls.tmp.name, "bad_json")
        shutil.copytree(cls.good, cls.bad_json)
        with open(os.path.join(cls.bad_json, "config.json"), "w") as f:
            f.write('{"vocab_size": 384,')
        cls.f32 = os.path.join(cls.tmp.name, "f32_norm")
        retype_tensor_to_f32(cls.good, cls.f32)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_ranks(self, args0, args1, *extra):
        cmd = [MPIRUN, "-np", "2", "--oversubscribe", "--bind-to", "none", "sh", "-c", self.WRAPPER, QB,
               *self.COMMON, *extra]
        env = dict(os.environ, QB_TEST_ARGS_0=" ".join(args0), QB_TEST_ARGS_1=" ".join(args1))
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.LIMIT_S + 60, env=env)
        took = time.time() - t0
        self.assertLess(took, self.LIMIT_S, f"took {took:.0f} s\n{p.stderr}")
        self.assertNotIn("did not complete", p.stderr, "the watchdog fired: the ranks hung")
        return p

    def error_lines(self, p):
        return [l for l in p.stderr.splitlines() if l.startswith("qwenbench: error:")]

    def test_bad_config_on_one_rank_is_printed_by_rank_0(self):
        p = self.run_ranks(["--model", self.good], ["--model", self.bad_heads])
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = self.error_lines(p)
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("qwenbench: error: rank 1 (host ", lines[0])
        self.assertIn("num_key_value_heads: must divide num_attention_heads", lines[0])

    def test_every_failing_rank_is_printed(self):
        p = self.run_ranks(["--model", self.bad_json], ["--model", self.bad_heads])
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = self.error_lines(p)
        self.assertEqual(len(lines), 2, p.stderr)
        self.assertIn("rank 0 (host ", lines[0])
        self.assertIn("bad_json", lines[0])
        self.assertIn("rank 1 (host ", lines[1])
        self.assertIn("num_key_value_heads", lines[1])

    def test_models_of_different_shapes_are_refused(self):
        p = self.run_ranks(["--model", self.good], ["--model", self.small])
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = self.error_lines(p)
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("rank 1 (host ", lines[0])
        self.assertIn("config differs from rank 0's: vocab_size 750 here, 384 on rank 0", lines[0])

    def test_different_options_are_refused(self):
        p = self.run_ranks(["--model", self.good, "--seed", "1"], ["--model", self.good, "--seed", "2"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("rank 1 (host ", p.stderr)
        self.assertIn("options differ from rank 0's: --seed 2 here, 1 on rank 0", p.stderr)

    def test_other_tensor_headers_fail_the_cell_naming_the_tensor(self):
        path = os.path.join(self.tmp.name, "tensors.h5")
        p = self.run_ranks(["--model", self.good], ["--model", self.f32], "--out", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        cells, _, _, _, _ = cells_of(path)
        self.assertEqual(cells["status"][0].decode(), "FAILED")
        reason = cells["reason"][0].decode()
        self.assertIn("rank 1 (host ", reason)
        self.assertIn("tensors differ from rank 0's: model.norm.weight: F32 [256] here, BF16 [256] on rank 0", reason)
        # the same checkpoint on both ranks runs (the F32 copy holds the same values)
        p = self.run_ranks(["--model", self.f32], ["--model", self.f32])
        self.assertEqual(p.returncode, 0, p.stderr)


class Fixtures(unittest.TestCase):
    """The CLI's greedy tokens equal transformers' for each golden fixture (tests/fixtures/*/expected.json)."""

    def test_cli_tokens_match_transformers(self):
        checked = 0
        fixtures = sorted(glob.glob(os.path.join(os.environ.get("QB_FIXTURE_DIR", ""), "*", "expected.json")))
        if not fixtures:
            self.skipTest("no fixtures")
        for exp_path in fixtures:
            exp = json.load(open(exp_path))
            fdir = os.path.dirname(exp_path)
            for case in exp["cases"]:
                self.assertIn("prompt_seed", case, f"{exp_path}: case without prompt_seed")
                with self.subTest(fixture=os.path.basename(fdir), prompt_len=case["prompt_len"]), \
                        tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, "r.h5")
                    n_gen = len(case["greedy_tokens"])
                    p = qb("--backend", "cpu", "--model", fdir, "--context-lengths", str(case["prompt_len"]),
                           "--generate-length", str(n_gen), "--repetitions", "2", "--seed", str(case["prompt_seed"]),
                           "--out", path)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    cells, runs, tokens, _, _ = cells_of(path)
                    for t in run_tokens(runs, tokens, 0):
                        self.assertEqual(t, case["greedy_tokens"])
                    checked += 1
        self.assertGreaterEqual(checked, 8, "every fixture's prompts (4 fixtures x 2 prompts) must be checked")


if __name__ == "__main__":
    QB = os.path.abspath(sys.argv.pop(1))
    MPIRUN = sys.argv.pop(1)
    QB_HOOKS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
