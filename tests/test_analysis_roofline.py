"""test_analysis_roofline.py - the bandwidth floor against the worked examples and the formulas it states.

Expected values: protocol.md's examples at 3.0 TB/s (7B BF16 TP1 212 tok/s, 7B int4 ~670, 72B BF16 TP8 168);
the KV term is checked against 2 * layers * kv_heads_local * head_dim * 2 bytes * (context + gen/2).
Run: /usr/bin/python3 tests/test_analysis_roofline.py   (exit status 0 = pass)
"""
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from analysis import roofline  # noqa: E402

SHAPES = {
    "qwen2.5-7b": dict(num_hidden_layers=28, hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "qwen2.5-72b": dict(num_hidden_layers=80, hidden_size=8192, intermediate_size=29568, num_attention_heads=64,
                        num_key_value_heads=8, vocab_size=152064, tie_word_embeddings=False),
}


class Floor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-roofline-")
        cls.dir = cls.tmp.name
        for name, cfg in SHAPES.items():
            with open(os.path.join(cls.dir, name + ".json"), "w") as f:
                json.dump(cfg, f)
        cls.s7 = roofline.find_shape("qwen2.5-7b", cls.dir)
        cls.s72 = roofline.find_shape("qwen2.5-72b", cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def floor(self, shape, quant, tp, context=0, gen=0, bw=3000.0):
        return roofline.floor(shape, quant, tp, context, gen, bw)["floor_tok_s"]

    def test_protocol_examples(self):
        # tolerance 0.5 %: the protocol quotes rounded numbers
        for got, want, what in ((self.floor(self.s7, "bf16", 1), 212, "7B BF16 TP1"),
                                (self.floor(self.s7, "gptq-int4", 1), 670, "7B GPTQ-Int4 TP1"),
                                (self.floor(self.s7, "awq", 1), 670, "7B AWQ TP1"),
                                (self.floor(self.s72, "bf16", 8), 168, "72B BF16 TP8")):
            self.assertLess(abs(got - want) / want, 0.005, f"{what}: floor {got:.1f} tok/s, protocol says {want}")

    def test_format_order(self):
        b = [self.floor(self.s7, q, 1) for q in ("bf16", "gptq-int8", "gptq-int4")]
        self.assertLess(b[0], b[1])
        self.assertLess(b[1], b[2])
        # int8: 1 byte + (2-byte scale + 1-byte zero) per 128 weights
        self.assertAlmostEqual(roofline.bytes_per_param("gptq-int8", 128), 1 + 3 / 128)
        self.assertAlmostEqual(roofline.bytes_per_param("gptq-int4", 128), 0.5 + 2.5 / 128)

    def test_kv_term(self):
        for tp, kv_local in ((1, 4), (2, 2), (4, 1), (8, 1)):  # 7B has 4 kv heads: replicated beyond TP4
            got = roofline.kv_bytes_per_token(self.s7, tp, 6144, 2048)
            want = 2 * 28 * kv_local * 128 * 2 * (6144 + 1024)
            self.assertEqual(got, want, f"TP{tp}: KV bytes {got} != {want}")
        r = roofline.floor(self.s7, "bf16", 1, 6144, 2048, 3000.0)
        self.assertAlmostEqual(r["bytes_per_token"], r["weights_read_bytes"] + r["kv_read_bytes"])
        self.assertAlmostEqual(r["floor_tok_s"], 3000e9 / r["bytes_per_token"])

    def test_tp_halves_weights(self):
        w1 = roofline.weight_bytes_per_token(self.s72, "bf16", 1)
        w2 = roofline.weight_bytes_per_token(self.s72, "bf16", 2)
        self.assertLess(abs(w2 / w1 - 0.5), 0.001, "72B: TP2 reads half the weights per GPU (norms replicated)")

    def test_name_fallbacks(self):
        self.assertEqual(roofline.size_label("Qwen2.5-7B-Instruct-GPTQ-Int4"), "7b")
        self.assertEqual(roofline.size_label("/models/Qwen2.5-0.5B-Instruct/"), "0.5b")
        self.assertEqual(roofline.size_label("qwen2.5-tiny"), "tiny")
        self.assertIsNone(roofline.size_label("llama-3-8b"))
        self.assertIsNone(roofline.size_label("qwen2.5-fixture-0"), "a word preset matches only as the whole name")
        self.assertIsNone(roofline.size_label("qwen2.5-7bx"))
        self.assertEqual(roofline.find_shape("/ckpt/Qwen2.5-7B-Instruct-AWQ", self.dir).layers, 28)
        self.assertIsNone(roofline.find_shape("/ckpt/my-finetune", self.dir))
        ckpt = os.path.join(self.dir, "some-checkpoint")
        os.makedirs(ckpt, exist_ok=True)
        with open(os.path.join(ckpt, "config.json"), "w") as f:
            json.dump(dict(SHAPES["qwen2.5-7b"], quantization_config={"bits": 4, "group_size": 64}), f)
        shape = roofline.find_shape(ckpt, self.dir)
        self.assertEqual((shape.layers, shape.group_size), (28, 64), "a checkpoint's own config.json comes first")

    def test_annotate_flags_above_floor(self):
        import pandas as pd
        base = dict(model="qwen2.5-7b", quant="bf16", tp_size=1, context_len=1, gen_len=0)
        cells = pd.DataFrame([dict(base, decode_tok_per_s_mean=100.0), dict(base, decode_tok_per_s_mean=300.0),
                              dict(base, model="unknown-model", decode_tok_per_s_mean=1e9)])
        out = roofline.annotate(cells, 3000.0, self.dir)
        self.assertEqual(list(out["roofline_ok"]), [True, False, True])
        self.assertAlmostEqual(out["pct_of_floor"][0], 100 * 100.0 / out["floor_tok_s"][0])
        self.assertIn("bandwidth floor", out["roofline_note"][1])
        self.assertIn("no shapes", out["roofline_note"][2])
        tiny = dict(num_hidden_layers=2, hidden_size=128, intermediate_size=384, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=1024)
        with open(os.path.join(self.dir, "qwen2.5-tiny.json"), "w") as f:
            json.dump(tiny, f)
        small = roofline.annotate(pd.DataFrame([dict(base, model="qwen2.5-tiny", decode_tok_per_s_mean=1e9)]),
                                  3000.0, self.dir)
        self.assertGreater(small["pct_of_floor"][0], 100)
        self.assertTrue(small["roofline_ok"][0], "a cache-resident working set is not held to the floor")
        self.assertIn("fits in caches", small["roofline_note"][0])
        none = roofline.annotate(cells.iloc[:1], float("nan"), self.dir)
        self.assertTrue(none["roofline_ok"][0])
        self.assertIn("no copy bandwidth", none["roofline_note"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
