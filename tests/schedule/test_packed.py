#!/usr/bin/env python3
"""test_packed.py - --schedule packed on the CPU engine: cells side by side on disjoint groups of ranks.

Run by ctest: /usr/bin/python3 tests/schedule/test_packed.py PATH/TO/qwenbench PATH/TO/mpirun PATH/TO/qwenbench-testhooks
Three tiny models (the preset and two fixture checkpoints) x five input lengths under mpirun -np 4: the packed
schedule with two groups of 2 (--tp 2) and four groups of 1 (--tp 1) gives the same cells, with the same tokens,
as the serial schedule; a rank killed or hung mid-sweep ends the job with every cell received kept, and --resume
completes the file. EntryTp: sweep entries with their own "tp" (a TP-2 and a TP-1 entry), the TP-1 phase beside
the TP-2 cell (no barrier between phases). Environment from ctest: OMPI_ALLOW_RUN_AS_ROOT*, QB_FIXTURE_DIR.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_ranks  # noqa: E402

QB = MPIRUN = QB_HOOKS = None
FIX = os.environ.get("QB_FIXTURE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
MODELS = ",".join(["qwen2.5-tiny", os.path.join(FIX, "gqa_untied"), os.path.join(FIX, "sharded")])
SWEEP = ["--backend", "cpu", "--model", MODELS, "--threads", "1", "--context-lengths", "1,4,8,12,16",
         "--generate-length", "6", "--repetitions", "2", "--warmup", "1"]


def qb(*args, np_=4, timeout=300, env=None):
    return mpi_ranks.run(QB, QB_HOOKS, MPIRUN, *args, np_=np_, timeout=timeout, env=env)


def placement(path):
    """[(ranks, hosts, devices, [(start_unix_s, end_unix_s) of each run])] of every cell."""
    out = []
    with h5py.File(path, "r") as f:
        cells, runs = f["cells"][()], f["runs"][()]
    for i, c in enumerate(cells):
        out.append((c["ranks"].decode(), c["hosts"].decode(), c["devices"].decode(),
                    [(float(r["start_unix_s"]), float(r["end_unix_s"])) for r in runs[runs["cell"] == i]]))
    return out


def read(path):
    """{(model, quant, context_len, tp): (status, checks, [tokens of each run])}, the root attributes."""
    out = {}
    with h5py.File(path, "r") as f:
        cells, runs, tokens = f["cells"][()], f["runs"][()], f["generated_tokens"][()]
        attrs = dict(f.attrs)
    for i, c in enumerate(cells):
        key = (c["model"].decode(), c["quant"].decode(), int(c["context_len"]), int(c["tp_size"]))
        got = [tokens[r["token_offset"]:r["token_offset"] + r["n_gen"]].tolist() for r in runs[runs["cell"] == i]]
        if key in out:
            raise AssertionError(f"cell {key} twice in {path}")
        out[key] = (c["status"].decode() if isinstance(c["status"], bytes) else str(c["status"]),
                    c["checks"].decode(), got)
    return out, attrs


def settings(attrs):
    s = attrs["settings_json"]
    return json.loads(s.decode() if isinstance(s, bytes) else s)


class Packed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.serial = {}
        for tp in (1, 2):
            path = os.path.join(cls.tmp.name, f"serial{tp}.h5")
            p = qb(*SWEEP, "--tp", str(tp), "--out", path)
            assert p.returncode == 0, p.stderr
            cls.serial[tp] = read(path)[0]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_packed(self, tp, groups):
        path = os.path.join(self.tmp.name, f"packed{tp}.h5")
        t0 = time.time()
        p = qb(*SWEEP, "--tp", str(tp), "--schedule", "packed", "--out", path)
        t1 = time.time()
        self.assertEqual(p.returncode, 0, p.stderr)
        # where and when each cell ran: its ranks, hosts and devices, and every run's start and end on one clock
        group_of = {str(r): r // tp for r in range(4)}
        for ranks, hosts, devices, times in placement(path):
            members = ranks.split(",")
            self.assertEqual(len(members), tp, ranks)
            self.assertEqual(len({group_of[m] for m in members}), 1, f"ranks {ranks} are one group")
            self.assertEqual(len(hosts.split(",")), tp, hosts)
            self.assertEqual(devices, ",".join(["cpu"] * tp))
            self.assertEqual(len(times), 2)
            for start, end in times:
                self.assertTrue(t0 - 1 <= start < end <= t1 + 1, (start, end, t0, t1))
        self.assertIn(f"# packed groups: {groups}", p.stdout + p.stderr)
        cells, attrs = read(path)
        self.assertEqual(sorted(cells), sorted(self.serial[tp]), "the same cells as the serial schedule")
        for key, (status, checks, tokens) in cells.items():
            self.assertEqual(status, "VALID", (key, checks))
            self.assertEqual(tokens, self.serial[tp][key][2], f"tokens of {key} as in the serial schedule")
            self.assertIn("packed: group", checks)
        self.assertEqual(settings(attrs).get("schedule"), "packed", "the choice is in the file's settings")
        self.assertNotIn("schedule", settings(self.serial_attrs(tp)), "serial files keep their settings")
        used = {c[1].split("packed: group ")[1].split(",")[0] for c in cells.values()}
        self.assertGreater(len(used), 1, f"cells ran on more than one group: {used}")
        devices = json.loads(attrs["devices_json"])
        self.assertEqual(sorted(d["rank"] for d in devices), [0, 1, 2, 3], "every rank's device is listed")

    def serial_attrs(self, tp):
        return read(os.path.join(self.tmp.name, f"serial{tp}.h5"))[1]

    def test_two_groups_of_two_match_serial(self):
        self.check_packed(2, "2 groups of 2: [0,1] [2,3]")

    def test_four_groups_of_one_match_serial(self):
        self.check_packed(1, "4 groups of 1: [0] [1] [2] [3]")

    def test_default_tp_on_the_cpu_is_one_rank_per_cell(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p = qb("--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1", "--context-lengths", "1,4",
                   "--generate-length", "4", "--repetitions", "1", "--schedule", "packed", "--out", path, np_=2)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual({k[3] for k in read(path)[0]}, {1})

    def check_fault_then_resume(self, fault, deadline, limit_s):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            args = [*SWEEP, "--tp", "1", "--schedule", "packed", "--deadline", str(deadline), "--out", path]
            t0 = time.time()
            p = qb(*args, env={"QWENBENCH_TEST_FAULT": fault, "QWENBENCH_TEST_CELL_DELAY": "0.3"},
                   timeout=limit_s + 60)
            took = time.time() - t0
            self.assertNotEqual(p.returncode, 0, "a dead or hung rank must fail the job")
            self.assertLess(took, limit_s, f"job took {took:.0f} s")
            cells, _ = read(path)
            self.assertGreater(len(cells), 0)
            self.assertLess(len(cells), 15, "the fault came mid-sweep")
            groups = {c[1].split("packed: group ")[1].split(",")[0] for c in cells.values()}
            self.assertIn("3", groups, "the faulty rank's finished cell is kept")
            self.assertGreater(len(groups), 1, "other groups' finished cells are kept")
            for key, (status, checks, tokens) in cells.items():
                self.assertEqual(tokens, self.serial[1][key][2], key)
            p = qb(*args, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("to run", p.stderr)
            cells, _ = read(path)  # read() refuses a cell present twice
            self.assertEqual(sorted(cells), sorted(self.serial[1]), "every cell exactly once after --resume")
            for key, (status, checks, tokens) in cells.items():
                self.assertEqual(tokens, self.serial[1][key][2], key)
            return p

    def test_killed_rank_keeps_other_groups_cells_and_resume_completes(self):
        self.check_fault_then_resume("kill:3:1", 20, 60)

    def test_hung_rank_ends_job_and_resume_completes(self):
        # --deadline 3 with warm-up 1 and 2 repetitions: the dealer gives a cell 3 x (1 + 2 + 3) = 18 s
        self.check_fault_then_resume("hang:3:1", 3, 18 + 40)

    def test_stop_signal_ends_the_dealing_and_resume_completes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            args = [*SWEEP, "--tp", "1", "--schedule", "packed", "--out", path]
            e = dict(os.environ, QWENBENCH_TEST_CELL_DELAY="1")
            p = subprocess.Popen([MPIRUN, "-np", "4", "--oversubscribe", "--bind-to", "none", QB_HOOKS, *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
            t0 = time.time()
            while not (os.path.exists(path) and len(read(path)[0]) >= 1):
                self.assertIsNone(p.poll(), "the job ended before its first cell was written")
                self.assertLess(time.time() - t0, 120, "no cell in the file after 120 s")
                time.sleep(0.2)
            p.send_signal(signal.SIGUSR1)  # mpirun forwards it to every rank; rank 0's dealer stops dealing
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 3, err)
            self.assertIn("--resume", out + err)
            cells, _ = read(path)
            self.assertLess(len(cells), 15, "stopped mid-sweep")
            p = qb(*args, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, _ = read(path)
            self.assertEqual(sorted(cells), sorted(self.serial[1]), "every cell exactly once after --resume")

    def test_a_file_from_before_the_placement_columns_still_reads(self):
        # tests/schedule/results-before-placement.h5: qwen2.5-tiny on the CPU, one cell, two runs, written by
        # qwenbench before /cells ranks, hosts, devices and /runs start_unix_s, end_unix_s existed, with its content
        # checksum: the reader must skip the fields the file lacks, not refuse it
        old = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-before-placement.h5")
        p = subprocess.run([QB, "export", old, "--format", "csv"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        header, row = p.stdout.splitlines()[:2]
        self.assertTrue(header.endswith(",ranks,hosts,devices"), header)
        self.assertTrue(row.endswith(",,,"), row)

    def test_help_names_the_schedules(self):
        p = subprocess.run([QB, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--schedule serial|packed", p.stdout)
        self.assertIn("[default: serial]", p.stdout.split("--schedule")[1].split("\n  -")[0])

    def test_bad_schedule_is_refused(self):
        p = qb("--schedule", "sideways", np_=1)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--schedule: unknown schedule 'sideways' (serial, packed)", p.stderr)


def entry_tp_sweep(path, tp2="2", tp1="1"):
    """A sweep whose entries give their own TP: one long TP-2 cell (a 3000-token input: its prefill makes each run
    last) and sixteen short TP-1 cells. Two TP-2 groups exist on 4 ranks, so one of them is told "none left" at once
    and its ranks go on to TP-1 cells while the TP-2 cell still runs on the other two (no warm-up: the TP-2 cell's
    timed runs start soon after its weights are made)."""
    sweep = {"generate_length": 128, "repetitions": 2, "warmup": 0, "tp": 4, "entries": [
        {"models": ["qwen2.5-tiny"], "quants": ["bf16"], "context_lengths": [3000], "tp": json.loads(tp2)},
        {"models": [os.path.join(FIX, "gqa_untied")], "quants": ["bf16"], "context_lengths": list(range(1, 17)),
         "tp": json.loads(tp1)}]}
    with open(path, "w") as f:
        json.dump(sweep, f)
    return path


class EntryTp(unittest.TestCase):
    """Sweep entries with their own "tp" (docs/SWEEPS.md): each cell runs on its entry's TP, in both schedules; the
    packed schedule runs the TP-1 phase beside the TP-2 phase, without a barrier between them (docs/SCHEDULING.md)."""
    ARGS = ["--backend", "cpu", "--threads", "1"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sweep = entry_tp_sweep(os.path.join(cls.tmp.name, "entry_tp.json"))
        cls.serial_path = os.path.join(cls.tmp.name, "serial.h5")
        p = qb(*cls.ARGS, "--sweep", cls.sweep, "--out", cls.serial_path)
        assert p.returncode == 0, p.stderr
        cls.serial = read(cls.serial_path)[0]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_tps(self, cells):
        self.assertEqual(len(cells), 17, sorted(cells))
        for (model, _, ctx, tp) in cells:
            self.assertEqual(tp, 2 if model == "qwen2.5-tiny" else 1, (model, ctx, tp))

    def test_serial_cells_run_on_their_entry_tp(self):
        # the file's top-level "tp": 4 is overridden by every entry's own
        self.check_tps(self.serial)
        for ranks, _, _, _ in placement(self.serial_path):
            self.assertIn(ranks, ("0,1", "0"))

    def test_packed_runs_the_tp1_phase_beside_the_tp2_cell(self):
        path = os.path.join(self.tmp.name, "packed.h5")
        t0 = time.time()
        p = qb(*self.ARGS, "--tp", "1", "--sweep", self.sweep, "--schedule", "packed", "--out", path)
        took = time.time() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("# packed groups: 2 groups of 2: [0,1] [2,3] | 4 groups of 1: [0] [1] [2] [3]",
                      p.stdout + p.stderr)
        cells, _ = read(path)  # read() refuses a cell present twice
        self.check_tps(cells)  # the entries' "tp" win over --tp 1
        self.assertEqual(sorted(cells), sorted(self.serial), "the same cells as the serial schedule")
        for key, (status, checks, tokens) in cells.items():
            self.assertEqual(status, "VALID", (key, checks))
            self.assertEqual(tokens, self.serial[key][2], f"tokens of {key} as in the serial schedule")
        with h5py.File(path, "r") as f:
            models = [c["model"].decode() for c in f["cells"][()]]
        placed = [(models[i], *cell) for i, cell in enumerate(placement(path))]
        (tp2_ranks, tp2_times), = [(r.split(","), t) for m, r, _, _, t in placed if m == "qwen2.5-tiny"]
        self.assertEqual(len(tp2_ranks), 2, tp2_ranks)
        tp2_start, tp2_end = min(s for s, _ in tp2_times), max(e for _, e in tp2_times)
        beside = [(m, r, min(s for s, _ in t)) for m, r, _, _, t in placed
                  if m != "qwen2.5-tiny" and any(tp2_start < s < tp2_end for s, _ in t)]
        print(f"\n# TP-2 cell on ranks {tp2_ranks} ran {tp2_end - tp2_start:.2f} s; {len(beside)} TP-1 cell(s) "
              f"started runs meanwhile; job {took:.1f} s", file=sys.stderr)
        self.assertTrue(beside, f"no TP-1 run started while the TP-2 cell ran on ranks {tp2_ranks} "
                                f"({tp2_start:.3f} to {tp2_end:.3f}): {placed}")
        for _, ranks, _ in beside:
            self.assertNotIn(ranks, tp2_ranks, "a TP-1 cell beside the TP-2 cell runs on the other ranks")
        self.assertLess(took, 60, f"the packed job took {took:.0f} s")

    def test_resume_matches_cells_by_their_entry_tp(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            shutil.copy(self.serial_path, path)
            p = qb(*self.ARGS, "--sweep", self.sweep, "--out", path, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("# resume: 17 of 17 cells already in", p.stderr)
            other = entry_tp_sweep(os.path.join(d, "other.json"), tp2='"auto"')
            p = qb(*self.ARGS, "--sweep", other, "--out", path, "--resume")
            self.assertNotEqual(p.returncode, 0, "an entry's other TP is another cell: resume must refuse the file")
            self.assertIn("made with other settings", p.stderr)
            self.assertEqual(len(read(path)[0]), 17, "the file is kept")

    def test_help_says_an_entry_tp_wins(self):
        p = subprocess.run([QB, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('except an entry\'s own "tp", which wins over --tp for that entry\'s cells', p.stdout)

    def test_an_entry_tp_the_ranks_cannot_give_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            for tp1, why in (("3", "entries[1].tp 3: the 4 ranks of this job do not split into groups of 3"),
                             ("8", "entries[1].tp 8: larger than the 4 rank(s) of this job")):
                sweep = entry_tp_sweep(os.path.join(d, "bad.json"), tp1=tp1)
                p = qb(*self.ARGS, "--sweep", sweep, "--out", os.path.join(d, "r.h5"))
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(why, p.stderr)
                self.assertEqual(len([ln for ln in p.stderr.splitlines() if "error" in ln]), 1, p.stderr)
            sweep = entry_tp_sweep(os.path.join(d, "bad.json"), tp1='"some"')
            p = qb(*self.ARGS, "--sweep", sweep, np_=1)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn('bad.json: entries[1].tp: must be "auto" or a positive integer, not "some"', p.stderr)


if __name__ == "__main__":
    QB, MPIRUN, QB_HOOKS = sys.argv[1:4]
    rest = sys.argv[4:]
    if rest[:1] == ["--without"]:  # test classes left to another ctest test (tests/schedule.cmake)
        for name in rest[1].split(","):
            globals().pop(name)
        rest = rest[2:]
    unittest.main(argv=sys.argv[:1] + rest, verbosity=2)
