#!/usr/bin/env python3
"""test_hostile_model_dir.py - the qwenbench binary on hostile model directories (issue 20 items 8 and 11).

Escaping: a checkpoint directory whose name holds ESC sequences and bidi overrides (U+202E, U+2066) runs; the
table, the progress lines, `qwenbench tokens`, the results file (model name, settings, command line) and the
one-line errors carry no raw control or bidi character (they are escaped by src/io/printable.h).
Non-finite numbers: a NaN in the embedding makes the cell FAILED naming the tensor; weights whose product
overflows make the logits non-finite and the cell INVALID (the untimed logits check), on the CPU backend.

Run by ctest: /usr/bin/python3 tests/io/test_hostile_model_dir.py PATH/TO/qwenbench
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_bad_checkpoints import TINY, st_file, tiny_tensors  # noqa: E402

QB = None
EVIL = "m\x1b]0;pwn\x07\x1b[2J\u202eevil\u2066x\x7f"
RAW_BAD = [b"\x1b", b"\x07", b"\x7f", "\u202e".encode(), "\u2066".encode()]
RUN = ["--backend", "cpu", "--context-lengths", "4", "--generate-length", "4", "--repetitions", "1",
       "--warmup", "1", "--threads", "1"]


def run(*args):
    return subprocess.run([QB, *args], capture_output=True, timeout=300)


def write_model(root, name, override=None):
    """A tiny checkpoint directory; override maps a tensor name to its raw bytes."""
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(TINY, f)
    tensors = [(n, dt, s, (override or {}).get(n)) for n, dt, s in tiny_tensors()]
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(st_file(tensors))
    return d


class HostileModelDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def assert_no_raw(self, blob, what):
        for bad in RAW_BAD:
            self.assertNotIn(bad, blob, f"{what} holds a raw {bad!r}:\n{blob!r}")

    def test_escaped_everywhere(self):
        d = write_model(self.root, EVIL)
        out = os.path.join(self.root, "r.h5")
        p = run("--model", d, *RUN, "--out", out)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assert_no_raw(p.stdout, "the table")
        self.assert_no_raw(p.stderr, "the progress lines")
        self.assertIn(b"\\x1b[2J\\u{202e}evil", p.stdout)
        self.assertIn(b"# cell 1/1 m\\x1b]0;pwn", p.stderr)
        with open(out, "rb") as f:  # the stored model name, settings and command line
            stored = f.read()
        self.assertNotIn(b"\x1b]0;pwn", stored)
        self.assertNotIn("\u202eevil".encode(), stored)
        self.assertIn(b"\\x1b]0;pwn", stored)
        t = run("tokens", out)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assert_no_raw(t.stdout + t.stderr, "qwenbench tokens")
        self.assertIn(b"\\u{202e}evil", t.stdout)

    def test_tokens_escapes_a_foreign_file(self):
        """A results file written elsewhere (or by an older version) with a raw name: `tokens` escapes it."""
        try:
            import h5py
        except ImportError:
            self.skipTest("h5py is not installed")
        d = write_model(self.root, "plain")
        out = os.path.join(self.root, "r.h5")
        p = run("--model", d, *RUN, "--out", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with h5py.File(out, "r+") as f:
            cells = f["cells"][...]
            cells["model"][0] = EVIL.encode()
            f["cells"][...] = cells
            if "content_crc64" in f.attrs:  # edited: no longer qwenbench's content; a foreign writer stores none
                del f.attrs["content_crc64"]
        t = run("tokens", out)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assert_no_raw(t.stdout + t.stderr, "qwenbench tokens of a foreign file")
        self.assertIn(b"# cell 0: m\\x1b]0;pwn\\x07\\x1b[2J\\u{202e}evil", t.stdout)

    def test_errors_escaped(self):
        d = os.path.join(self.root, EVIL)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(dict(TINY, vocab_size=None), f)
        p = run("--model", d, *RUN)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assert_no_raw(p.stderr, "the --model error")
        self.assertIn(b"vocab_size", p.stderr)
        errors = [line for line in p.stderr.splitlines() if not line.startswith(b"#")]  # "#" lines: notes
        self.assertEqual(len(errors), 1, p.stderr)

    def test_nan_embedding_fails_the_cell_naming_the_tensor(self):
        V, H = TINY["vocab_size"], TINY["hidden_size"]
        emb = struct.pack("<H", 0x3c00) * (V * H - 1) + struct.pack("<H", 0x7fc0)
        d = write_model(self.root, "nan-embedding", {"model.embed_tokens.weight": emb})
        p = run("--model", d, *RUN)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stdout.decode(), r"\| FAILED: .*model\.embed_tokens\.weight: element \[15, 7\].* not finite")

    def test_overflowing_logits_make_the_cell_invalid(self):
        V, H = TINY["vocab_size"], TINY["hidden_size"]
        huge = struct.pack("<H", 0x7f7f)  # the largest finite bf16, about 3.4e38
        d = write_model(self.root, "overflow", {"model.norm.weight": huge * H, "lm_head.weight": huge * (V * H)})
        p = run("--model", d, *RUN)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("INVALID: non-finite logits at step 0", p.stdout.decode())


if __name__ == "__main__":
    QB = sys.argv.pop(1)
    unittest.main()
