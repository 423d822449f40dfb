"""test_analysis_peer_json.py - the report reads the transformers peer's JSON (tests/peer_transformers.py --out).

A synthetic qwenbench file and a peer JSON of the shape the peer script writes (engine, meta, cells with runs):
the peer's cells load with the numbers of the JSON, decode tokens/s and time per output token are computed from
its runs, the ratio table divides the right speeds, and a malformed JSON gives a one-line error and exit 1.
Run: /usr/bin/python3 tests/test_analysis_peer_json.py   (exit status 0 = pass)
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import test_analysis_checks as checks  # noqa: E402
import test_analysis_synth as synth  # noqa: E402
from test_analysis_report import write_config_dir  # noqa: E402

from analysis.peer_json import is_peer_json, load_peer_json  # noqa: E402


def peer_doc():
    """Two 7B BF16 cells as the peer script writes them (compile mode, one repetition each)."""
    cells = []
    for n, total, prefill in ((1, 17.5, 0.035), (6144, 21.9, 0.218)):
        gen = 16
        cells.append({"model": "qwen2.5-7b", "quant": "bf16", "backend": "transformers-compile", "context_len": n,
                      "gen_len": gen, "tp_size": 1, "n_ranks": 1, "repetitions": 1, "warmup": 1,
                      "warmup_total_s": 46.6, "seed": 1, "prompt_rule": "random", "status": "VALID", "reason": "",
                      "speed_mean": gen / total, "speed_std": 0.0, "speed_min": gen / total, "speed_max": gen / total,
                      "ttft_s_mean": prefill, "ttft_s_std": 0.0, "ttft_s_min": prefill, "ttft_s_max": prefill,
                      "peak_mem_total_bytes": 15464910336.0, "peak_mem_total_gib": 14.4,
                      "runs": [{"tokens_head": [1, 2, 3], "repetition": 0, "n_prompt": n, "n_gen": gen,
                                "total_s": total, "prefill_s": prefill, "decode_s": total - prefill,
                                "tok_per_s": gen / total, "peak_bytes": 15464910336}],
                      "first_tokens": [1, 2, 3], "first_top5": [[1, 4, 5, 6, 7]], "tokens": [1, 2, 3]})
    return {"engine": "transformers 5.17.0 compile", "meta": {"device": "NVIDIA H100 80GB HBM3", "torch": "2.11",
            "transformers": "5.17.0", "mode": "compile", "seed": 1, "weights_bytes": 15231233024},
            "cells": cells}


class PeerJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-peer-json-")
        d = cls.tmp.name
        cls.env = {"QWENBENCH_CONFIG_DIR": write_config_dir(os.path.join(d, "configs"))}
        cls.h5 = os.path.join(d, "synth.h5")
        synth.write(cls.h5)
        cls.doc = peer_doc()
        cls.json = os.path.join(d, "peer.json")
        with open(cls.json, "w") as f:
            json.dump(cls.doc, f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_loads_the_numbers_of_the_json(self):
        self.assertTrue(is_peer_json(self.json))
        self.assertFalse(is_peer_json(self.h5))
        r = load_peer_json(self.json)
        self.assertEqual(len(r.cells), 2)
        self.assertEqual(len(r.runs), 2)
        for i, c in enumerate(self.doc["cells"]):
            row = r.cells.iloc[i]
            self.assertEqual(row["backend"], "transformers-compile")
            self.assertEqual(row["context_len"], c["context_len"])
            self.assertAlmostEqual(row["speed_mean"], c["speed_mean"], places=12)
            self.assertAlmostEqual(row["ttft_s_mean"], c["ttft_s_mean"], places=12)
            run = c["runs"][0]
            self.assertAlmostEqual(row["decode_tok_per_s_mean"], (run["n_gen"] - 1) / run["decode_s"], places=9)
            self.assertAlmostEqual(row["tpot_s_mean"], run["decode_s"] / (run["n_gen"] - 1), places=12)
        self.assertIn("H100", r.meta["devices_json"])

    def test_report_ratio_with_json_peer(self):
        out = os.path.join(self.tmp.name, "report")
        proc = checks.run_report([self.h5, "--peer", self.json, "--out", out], self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        tables = checks.markdown_tables(md, "qwen2.5-7b")
        ratio = checks.grid(checks.table_with_caption(tables, "Ratio qwenbench / `transformers-compile`"))
        ours = {(c["quant"], c["tp_size"], c["context_len"]): c for c in checks.read_cells(self.h5)}
        for c in self.doc["cells"]:
            want = ours[("bf16", 1, c["context_len"])]["speed_mean"] / c["speed_mean"]
            got = float(ratio[("bf16 TP1", c["context_len"])].rstrip("x"))
            self.assertLessEqual(abs(got - want), checks.PRINT_TOLERANCE)

    def test_malformed_json_is_one_line_error(self):
        bad = os.path.join(self.tmp.name, "bad.json")
        for text in ('{"cells": [{"model": "m"}]}', '{"cells": 3}', '{"cells": [', '{"cells": [{"model": "m", '
                     '"quant": "bf16", "backend": "t", "context_len": 1, "gen_len": 2, "status": "WHAT", '
                     '"speed_mean": 1, "runs": []}]}'):
            with open(bad, "w") as f:
                f.write(text)
            proc = checks.run_report([self.h5, "--peer", bad, "--out", os.path.join(self.tmp.name, "r2")], self.env)
            self.assertEqual(proc.returncode, 1, text)
            lines = proc.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, proc.stderr)
            self.assertIn("bad.json", lines[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
