"""test_analysis_report.py - the report command on synthetic results files (no C writer needed).

Checks that the tables and CSVs carry the file's numbers, that non-VALID cells show their status, that a cell
faster than its bandwidth floor is marked INVALID, that a cell the file marks noisy is marked NOISY with its
spread, that the peer ratio and the published (other card) table are right, that a report of several files
labels each file (headers, row labels) and keeps one plot line per file, and that the plots are non-empty PNGs.
Run: /usr/bin/python3 tests/test_analysis_report.py   (exit status 0 = pass)
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402
import test_analysis_synth as synth  # noqa: E402

# 7B and 72B shapes from the protocol table (../shared/reference/protocol.md), written to a private config dir
# so the test does not depend on configs/models.
SHAPES = {
    "qwen2.5-7b": {"num_hidden_layers": 28, "hidden_size": 3584, "intermediate_size": 18944,
                   "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                   "tie_word_embeddings": False},
}


def write_config_dir(path):
    os.makedirs(path, exist_ok=True)
    for name, cfg in SHAPES.items():
        with open(os.path.join(path, name + ".json"), "w") as f:
            json.dump(cfg, f)
    return path


class ReportOnSyntheticFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-analysis-")
        d = cls.tmp.name
        cls.env = {"QWENBENCH_CONFIG_DIR": write_config_dir(os.path.join(d, "configs"))}
        cls.h5 = os.path.join(d, "synth.h5")
        cls.peer = os.path.join(d, "peer.h5")
        cls.out = os.path.join(d, "report")
        synth.write(cls.h5)
        synth.write(cls.peer, cells=synth.peer_cells(), meta={"command_line": "peer_transformers.py"})
        cls.proc = checks.run_report([cls.h5, "--peer", cls.peer, "--out", cls.out], cls.env)
        if cls.proc.returncode != 0:
            raise AssertionError(f"report failed (exit {cls.proc.returncode}): {cls.proc.stderr}")
        with open(os.path.join(cls.out, "report.md"), encoding="utf-8") as f:
            cls.md = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_speed_table_equals_file(self):
        n = checks.check_speed_table(self, self.h5, self.out, "qwen2.5-7b", "qwen2.5-7b",
                                     roofline_invalid={("awq", 1, 6144)})
        self.assertEqual(n, len(synth.default_cells()))

    def test_status_reasons_listed(self):
        for c in synth.default_cells():
            if c["status"] != "VALID":
                self.assertIn(c["reason"], self.md, f"reason of a {c['status']} cell missing from report.md")

    def test_csv_equals_file(self):
        checks.check_csv_equals_file(self, self.h5, self.out)
        checks.check_csv_equals_file(self, self.peer, self.out)

    def test_roofline_columns(self):
        import pandas as pd
        cells = pd.read_csv(os.path.join(self.out, "cells.csv"))
        cells = cells[cells["file"] == self.h5]
        bf16 = cells[(cells["quant"] == "bf16") & (cells["tp_size"] == 1) & (cells["context_len"] == 1)].iloc[0]
        # 7B bf16 TP1 at 3000 GB/s: 212.1 tok/s from the weights alone (protocol.md); the KV cache of 9 positions
        # is 0.5 MB, so the floor stays 212.1 to 0.1.
        self.assertAlmostEqual(bf16["floor_tok_s"], 212.1, delta=0.1)
        self.assertAlmostEqual(bf16["pct_of_floor"], 100 * bf16["decode_tok_per_s_mean"] / bf16["floor_tok_s"],
                               places=9)
        awq = cells[(cells["quant"] == "awq") & (cells["context_len"] == 6144)].iloc[0]
        self.assertFalse(awq["roofline_ok"], "a cell at 300 % of its floor must be flagged")
        self.assertEqual(awq["report_status"], "INVALID")
        self.assertEqual(awq["status"], "VALID", "the file's own status is kept in cells.csv")

    def test_latency_table_and_step_columns(self):
        import numpy as np
        import pandas as pd
        steps = checks.read_dataset(self.h5, "step_latency_s")
        runs = pd.read_csv(os.path.join(self.out, "runs.csv"), float_precision="round_trip")
        runs = runs[runs["file"] == self.h5]
        for _, r in runs.iterrows():
            mine = steps[int(r["step_offset"]):int(r["step_offset"]) + int(r["n_gen"]) - 1]
            k = max(1, len(mine) // 10)
            self.assertEqual(r["step_s_median"], np.median(mine), f"run {r['cell_id']}/{r['repetition']} median")
            want = 100 * (np.mean(mine[-k:]) / np.mean(mine[:k]) - 1)
            self.assertAlmostEqual(r["step_drift_pct"], want, places=9)
        table = checks.grid(checks.table_with_caption(checks.markdown_tables(self.md, "qwen2.5-7b"), "Latency:"))
        file_cells = [c for c in checks.read_cells(self.h5) if c["n_runs"] > 0]
        for c in file_cells:
            text = table[(checks.row_label(c, checks.read_cells(self.h5)), c["context_len"])]
            ttft, tpot = (float(x) for x in text.split(" (")[0].split(" / "))
            self.assertLessEqual(abs(ttft - c["ttft_s_mean"] * 1e3), checks.PRINT_TOLERANCE, text)
            self.assertLessEqual(abs(tpot - c["tpot_s_mean"] * 1e3), 0.0005 + 1e-9, text)  # three decimals
        mem = checks.read_dataset(self.h5, "rank_memory")
        cells = pd.read_csv(os.path.join(self.out, "cells.csv"), float_precision="round_trip")
        cells = cells[cells["file"] == self.h5].reset_index(drop=True)
        for i in range(len(cells)):
            want = mem["peak_bytes"][mem["cell"] == i].max() / 2 ** 30
            self.assertAlmostEqual(cells["peak_mem_max_rank_gib"][i], want, places=12)

    def test_peer_ratio(self):
        tables = checks.markdown_tables(self.md, "qwen2.5-7b")
        ratio = checks.grid(checks.table_with_caption(tables, "Ratio qwenbench / `transformers`"))
        ours = {(c["quant"], c["tp_size"], c["context_len"]): c for c in checks.read_cells(self.h5)}
        peer = {(c["quant"].lower(), c["context_len"]): c for c in checks.read_cells(self.peer)}  # 'BF16' too
        for (quant, n), p in peer.items():
            c = ours[(quant, 1, n)]
            want = c["speed_mean"] / p["speed_mean"]
            text = ratio[(f"{quant} TP1", n)]
            self.assertLessEqual(abs(float(text.rstrip("x")) - want), checks.PRINT_TOLERANCE,
                                 f"ratio {quant} input {n}: table '{text}', file {want}")
            two = ratio[(f"{quant} TP2", n)]
            self.assertIn("(2 vs 1 GPUs)", two, "a ratio across GPU counts must say so")
        self.assertNotIn(("awq TP1", 6144), ratio, "no peer for awq: no ratio")

    def test_published_is_labelled_another_card(self):
        tables = checks.markdown_tables(self.md, "qwen2.5-7b")
        pub = table_pub = checks.table_with_caption(tables, "Published")
        self.assertIn("A100 80GB: another card", pub[0])
        self.assertIn("not a like-for-like ratio", pub[0])
        g = checks.grid(table_pub)
        self.assertTrue(g[("transformers BF16", 1)].startswith("40.38 (1)"), g[("transformers BF16", 1)])
        self.assertTrue(g[("vllm BF16", 1)].startswith("84.28 (1)"), g[("vllm BF16", 1)])

    def test_per_cell_bandwidth_field(self):
        """A /cells field copy_bandwidth_gbps, when a writer records one, sets that cell's floor (0 = use the root)."""
        import numpy as np
        import pandas as pd
        from numpy.lib import recfunctions
        data = synth.build(synth.default_cells())
        bw = np.zeros(len(data["cells"]))
        bw[0] = 6000.0
        cells = data["cells"].copy()
        if "copy_bandwidth_gbps" in cells.dtype.names:
            cells["copy_bandwidth_gbps"] = bw
        else:
            cells = recfunctions.append_fields(cells, "copy_bandwidth_gbps", bw, usemask=False)
        h5 = os.path.join(self.tmp.name, "per-cell-bw.h5")
        synth.write(h5, replace={"cells": cells})
        out = os.path.join(self.tmp.name, "report-per-cell-bw")
        proc = checks.run_report([h5, "--out", out], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = pd.read_csv(os.path.join(out, "cells.csv"))
        self.assertEqual(list(got["bandwidth_gbps"][:2]), [6000.0, 3000.0])
        self.assertAlmostEqual(got["floor_tok_s"][0], 424.2, delta=0.2)

    def test_peer_in_the_same_file(self):
        """Peer cells (another backend) in the qwenbench file itself are compared like a --peer file's."""
        h5 = os.path.join(self.tmp.name, "with-peer.h5")
        synth.write(h5, cells=synth.default_cells() + synth.peer_cells())
        out = os.path.join(self.tmp.name, "report-with-peer")
        proc = checks.run_report([h5, "--out", out], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            tables = checks.markdown_tables(f.read(), "qwen2.5-7b")
        ratio = checks.grid(checks.table_with_caption(tables, "Ratio qwenbench / `transformers`"))
        cells = checks.read_cells(h5)
        ours = next(c for c in cells if c["backend"] == "cuda" and c["quant"] == "bf16" and c["tp_size"] == 1
                    and c["context_len"] == 1)
        peer = next(c for c in cells if c["backend"] == "transformers" and c["quant"] == "BF16"
                    and c["context_len"] == 1)
        self.assertLessEqual(abs(float(ratio[("bf16 TP1", 1)].rstrip("x")) - ours["speed_mean"] / peer["speed_mean"]),
                             checks.PRINT_TOLERANCE)

    def test_empty_file(self):
        """A file with no cells yet (a run stopped before its first cell) still gives a report."""
        h5 = os.path.join(self.tmp.name, "empty.h5")
        synth.write(h5, cells=[])
        out = os.path.join(self.tmp.name, "report-empty")
        proc = checks.run_report([h5, "--out", out], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            self.assertIn("No cells in the files", f.read())

    def test_header(self):
        for text in ("abc123def456", "2 x Synthetic GPU (node-a)", "3000.0 GB/s", "Release",
                     "qwenbench --model qwen2.5-7b --out synth.h5", "peer_transformers.py"):
            self.assertIn(text, self.md)

    def test_plots_written(self):
        for name in ("speed_qwen2.5-7b.png", "tp_scaling_qwen2.5-7b.png", "step_latency_qwen2.5-7b.png",
                     "floor_share.png"):
            checks.check_png(self, os.path.join(self.out, name))
            self.assertIn(f"]({name})", self.md, f"report.md does not embed {name}")

    def test_no_tp_plot_for_one_tp_size(self):
        out = os.path.join(self.tmp.name, "report-tp1")
        h5 = os.path.join(self.tmp.name, "tp1.h5")
        synth.write(h5, cells=[synth.cell(context_len=n) for n in (1, 16)])
        proc = checks.run_report([h5, "--out", out, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "tp_scaling_qwen2.5-7b.png")))
        checks.check_png(self, os.path.join(out, "speed_qwen2.5-7b.png"))
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            self.assertNotIn("Published", f.read())

    def test_two_files_and_unknown_model(self):
        """Several files go in one report; a model without shapes gets no floor but still its tables."""
        other = os.path.join(self.tmp.name, "other.h5")
        synth.write(other, cells=[synth.cell(model="/ckpt/my-finetune", context_len=n) for n in (1, 16)],
                    bandwidth_gbps=None)
        out = os.path.join(self.tmp.name, "report-two")
        proc = checks.run_report([self.h5, other, "--out", out], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        checks.check_speed_table(self, other, out, "/ckpt/my-finetune", "/ckpt/my-finetune")
        checks.check_speed_table(self, self.h5, out, "qwen2.5-7b", "qwen2.5-7b", roofline_invalid={("awq", 1, 6144)})
        checks.check_csv_equals_file(self, other, out)

    def test_bandwidth_override(self):
        out = os.path.join(self.tmp.name, "report-bw")
        proc = checks.run_report([self.h5, "--out", out, "--bandwidth-gbps", "6000"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        import pandas as pd
        cells = pd.read_csv(os.path.join(out, "cells.csv"))
        bf16 = cells[(cells["quant"] == "bf16") & (cells["tp_size"] == 1) & (cells["context_len"] == 1)].iloc[0]
        self.assertAlmostEqual(bf16["floor_tok_s"], 424.2, delta=0.2)

    def test_noisy_and_invalid_marks(self):
        """A VALID cell with noisy = 1 keeps its number, marked NOISY with a note giving its spread; INVALID cells
        (in the file, or above the floor) show INVALID with their reason; no other cell is marked."""
        cells = synth.default_cells()
        noisy = next(c for c in cells if c["quant"] == "bf16" and c["tp_size"] == 2 and c["context_len"] == 6144)
        noisy.update(noisy=1, jitter=0.25)
        h5 = os.path.join(self.tmp.name, "noisy.h5")
        synth.write(h5, cells=cells)
        out = os.path.join(self.tmp.name, "report-noisy")
        proc = checks.run_report([h5, "--out", out, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        checks.check_speed_table(self, h5, out, "qwen2.5-7b", "qwen2.5-7b", roofline_invalid={("awq", 1, 6144)})
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        table = checks.grid(checks.table_with_caption(checks.markdown_tables(md, "qwen2.5-7b"), "Speed:"))
        text = table[("bf16 TP2", 6144)]
        self.assertRegex(text, r" NOISY \[\d+\]$")
        note = int(text.rsplit("[", 1)[1].rstrip("]"))
        row = next(c for c in checks.read_cells(h5) if c["quant"] == "bf16" and c["tp_size"] == 2
                   and c["context_len"] == 6144)
        self.assertIn(f"\n{note}. bf16 TP2 input 6144 [cuda]: NOISY: speed varies {100 * row['speed_cv']:.1f}%", md)
        self.assertEqual(sum("NOISY [" in t for t in table.values()), 1, table)
        invalid = table[("gptq-int8 TP1", 1)]
        self.assertRegex(invalid, r"^INVALID \[\d+\]$")
        note = invalid.split("[")[1].rstrip("]")
        self.assertIn(f"\n{note}. gptq-int8 TP1 input 1 [cuda]: generated tokens differ", md)

    def test_energy_beside_speed(self):
        """Cells with NVML energy: an Energy table `tok/s / J/token (W)`, the throttled cell marked THROTTLED with a
        note, a cell without a measurement n/a; a file without the energy fields (the class's file) has no such
        table."""
        cells = synth.default_cells()
        for c in cells:
            if c["status"] == "VALID":
                c["energy"] = {"energy_source": "nvml energy counter", "energy_j": 4.8, "joules_per_token": 0.3,
                               "power_mean_w": 301.0, "power_peak_w": 340.0, "sm_clock_mhz": 1980.0,
                               "mem_clock_mhz": 2619.0, "temperature_max_c": 61.0, "throttled": 0,
                               "throttle_reasons": 1}
        throttled = next(c for c in cells if c["quant"] == "bf16" and c["tp_size"] == 1 and c["context_len"] == 6144)
        throttled["energy"] = dict(throttled["energy"], throttled=1, throttle_reasons=5, joules_per_token=0.35)
        unmeasured = next(c for c in cells if c["quant"] == "gptq-int4" and c["tp_size"] == 1 and c["context_len"] == 1)
        unmeasured["energy"] = synth.UNAVAILABLE_ENERGY
        h5 = os.path.join(self.tmp.name, "energy.h5")
        synth.write(h5, cells=cells)
        out = os.path.join(self.tmp.name, "report-energy")
        proc = checks.run_report([h5, "--out", out, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        table = checks.grid(checks.table_with_caption(checks.markdown_tables(md, "qwen2.5-7b"), "Energy:"))
        rows = {(c["quant"], c["tp_size"], c["context_len"]): c for c in checks.read_cells(h5)}
        plain = rows[("bf16", 1, 1)]
        self.assertEqual(table[("bf16 TP1", 1)], f"{plain['speed_mean']:.2f} / 0.300 (301 W)")
        text = table[("bf16 TP1", 6144)]
        self.assertRegex(text, r"^[0-9.]+ / 0\.350 \(301 W\) THROTTLED \[\d+\]$")
        note = text.rsplit("[", 1)[1].rstrip("]")
        self.assertIn(f"\n{note}. bf16 TP1 input 6144 [cuda]: THROTTLED: the GPU slowed its clocks during the runs "
                      "(NVML reasons 0x5)", md)
        self.assertEqual(table[("gptq-int4 TP1", 1)], "n/a")
        self.assertEqual(sum("THROTTLED" in t for t in table.values()), 1, table)
        self.assertNotIn("Energy:", self.md)

    def test_several_files_labelled(self):
        """Two files of the same model: each header and each row names its file; two files of one base name get
        '#n name'."""
        second = os.path.join(self.tmp.name, "second.h5")
        cells = synth.default_cells()
        for c in cells:
            c["step_s"] *= 0.9
        synth.write(second, cells=cells)
        out = os.path.join(self.tmp.name, "report-several")
        proc = checks.run_report([self.h5, second, "--out", out, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn(f"### synth.h5: {self.h5}\n", md)
        self.assertIn(f"### second.h5: {second}\n", md)
        both = checks.read_cells(self.h5) + checks.read_cells(second)
        for path, label in ((self.h5, "synth.h5"), (second, "second.h5")):
            n = checks.check_speed_table(self, path, out, "qwen2.5-7b", "qwen2.5-7b",
                                         roofline_invalid={("awq", 1, 6144)}, file_label=label, cells_of_model=both)
            self.assertEqual(n, len(cells))
        self.assertIn("gptq-int8 TP1 input 1 [cuda] (second.h5): generated tokens differ", md)
        # the same base name in two directories
        other_dir = os.path.join(self.tmp.name, "again")
        os.makedirs(other_dir, exist_ok=True)
        twin = os.path.join(other_dir, "synth.h5")
        synth.write(twin, cells=[synth.cell(context_len=1)])
        out2 = os.path.join(self.tmp.name, "report-twins")
        proc = checks.run_report([self.h5, twin, "--out", out2, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out2, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn(f"### #1 synth.h5: {self.h5}\n", md)
        self.assertIn(f"### #2 synth.h5: {twin}\n", md)
        table = checks.grid(checks.table_with_caption(checks.markdown_tables(md, "qwen2.5-7b"), "Speed:"))
        self.assertIn(("bf16 TP1 (#2 synth.h5)", 1), table)
        self.assertIn(("bf16 TP1 (#1 synth.h5)", 1), table)

    def test_plots_keep_one_line_per_file(self):
        """In a report of two files, every plotted line holds the cells of one file (labelled with it): the
        speed plot has a line per format, TP size and file, each with one point per input length."""
        second = os.path.join(self.tmp.name, "plots-second.h5")
        cells = synth.default_cells()
        for c in cells:
            c["step_s"] *= 0.8
        synth.write(second, cells=cells)
        drawn = self.plot_lines([self.h5, second], "report-plots")
        speed = dict(drawn["speed_qwen2.5-7b.png"])
        # VALID cells of the synthetic grid: bf16 and gptq-int4 at TP1/TP2, inputs 1 and 6144 (awq 6144 is
        # INVALID by the roofline, gptq-int8 and awq 1 are not VALID)
        want = {f"{q} TP{tp} ({f})": [1, 6144] for q in ("bf16", "gptq-int4") for tp in (1, 2)
                for f in ("synth.h5", "plots-second.h5")}
        self.assertEqual({k: sorted(v) for k, v in speed.items()}, want)
        tp = dict(drawn["tp_scaling_qwen2.5-7b.png"])
        self.assertEqual({k: sorted(v) for k, v in tp.items()},
                         {f"{q} input {n} ({f})": [1, 2] for q in ("bf16", "gptq-int4") for n in (1, 6144)
                          for f in ("synth.h5", "plots-second.h5")})
        steps = [label for label, _ in drawn["step_latency_qwen2.5-7b.png"]]
        self.assertIn("bf16 TP1 input 1 (synth.h5)", steps)
        self.assertIn("bf16 TP1 input 1 (plots-second.h5)", steps)
        floor = [label for label, _ in drawn["floor_share.png"]]
        self.assertIn("qwen2.5-7b bf16 TP1 in 1 (plots-second.h5)", floor)

    def test_option_sweep_rows(self):
        """Cells of one file that differ only in engine_options (a sweep over options) get a row and a plot line
        each, labelled with the option keys that vary."""
        fused, unfused = "allreduce=auto;decode_fusion=auto", "allreduce=auto;decode_fusion=none"
        cells = [synth.cell(context_len=n, step_s=s, engine_options=o, engine_choices="gemv=rows")
                 for n in (1, 6144) for o, s in ((fused, 0.010), (unfused, 0.012))]
        h5 = os.path.join(self.tmp.name, "options.h5")
        synth.write(h5, cells=cells)
        out = os.path.join(self.tmp.name, "report-options")
        proc = checks.run_report([h5, "--out", out, "--published", "none"], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            table = checks.grid(checks.table_with_caption(checks.markdown_tables(f.read(), "qwen2.5-7b"), "Speed:"))
        self.assertEqual(sorted({label for label, _ in table}), ["bf16 {decode_fusion=auto}",
                                                                  "bf16 {decode_fusion=none}"])
        for c in checks.read_cells(h5):
            text = table[("bf16 {" + c["engine_options"].split(";")[1] + "}", c["context_len"])]
            self.assertLessEqual(abs(float(text.split(" ± ")[0]) - c["speed_mean"]), checks.PRINT_TOLERANCE, text)
        speed = dict(self.plot_lines([h5], "report-options-plots")["speed_qwen2.5-7b.png"])
        self.assertEqual({k: sorted(v) for k, v in speed.items()},
                         {"bf16 TP1 ({decode_fusion=auto})": [1, 6144], "bf16 TP1 ({decode_fusion=none})": [1, 6144]})

    def plot_lines(self, paths, out_name):
        """{png name: [(label, x values)]} of the report's plots of `paths` (bar plots: their tick labels)."""
        if checks.ROOT not in sys.path:
            sys.path.insert(0, checks.ROOT)
        from analysis import plots, report
        from analysis.load import load_results
        drawn = {}
        real_save = plots._save

        def spy(fig, out_dir, name):
            ax = fig.axes[0]  # errorbar lines are containers; plot lines are lines; bars have tick labels
            lines = [(c.get_label(), list(c.lines[0].get_xdata())) for c in ax.containers if hasattr(c, "has_xerr")]
            lines += [(line.get_label(), list(line.get_xdata())) for line in ax.get_lines()
                      if not line.get_label().startswith("_")]
            drawn[name] = lines or [(t.get_text(), None) for t in ax.get_yticklabels()]
            return real_save(fig, out_dir, name)
        old_env = os.environ.get("QWENBENCH_CONFIG_DIR")
        os.environ["QWENBENCH_CONFIG_DIR"] = self.env["QWENBENCH_CONFIG_DIR"]
        plots._save = spy
        try:
            report.write_report([load_results(p) for p in paths], [], os.path.join(self.tmp.name, out_name), None)
        finally:
            plots._save = real_save
            if old_env is None:
                os.environ.pop("QWENBENCH_CONFIG_DIR", None)
            else:
                os.environ["QWENBENCH_CONFIG_DIR"] = old_env
        return drawn


if __name__ == "__main__":
    unittest.main(verbosity=2)
