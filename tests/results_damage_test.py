#!/usr/bin/env python3
"""results_damage_test.py - damaged results files and hostile --out targets through the qwenbench binary
(issue 20 items 2 and 7).

Run by ctest: /usr/bin/python3 tests/results_damage_test.py PATH/TO/qwenbench WORKDIR
  - a valid file from a tiny CPU run is damaged: bytes flipped at many offsets, truncated at many lengths,
    one generated token and one step latency changed in place (found with h5py's data offsets). Each copy
    goes through `qwenbench tokens` and a subset through `--resume`: the exit status is always 0..3 (never
    a signal, never >= 128), nothing hangs, a failure is one line, and changed data is reported as damage
    (content_crc64), never printed as if it were the run's tokens;
  - --out naming a FIFO or a symbolic link, with --overwrite or --resume, exits 2 before anything runs and
    leaves the FIFO and the link's target as they were; `qwenbench tokens FIFO` does not block.
Under the ASan ctest run the same binary is instrumented, so a sanitizer report fails the case too.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import h5py

QB = WORK = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1", "--context-lengths", "1,4",
        "--generate-length", "4", "--repetitions", "2"]
TIMEOUT = 120  # per command: well above the reader's own 60 s limit on a parse


def qb(*args):
    return subprocess.run([QB, *args], capture_output=True, text=True, timeout=TIMEOUT)


def check_exit(test, p, what):
    test.assertTrue(0 <= p.returncode <= 3, f"{what}: exit status {p.returncode}\n{p.stderr[-2000:]}")
    for marker in ("AddressSanitizer", "runtime error:", "Segmentation fault", "HDF5-DIAG"):
        test.assertNotIn(marker, p.stderr, f"{what}: {marker} in stderr\n{p.stderr[-2000:]}")


class Damage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(dir=WORK)
        cls.valid = os.path.join(cls.dir, "valid.h5")
        p = qb(*TINY, "--out", cls.valid)
        if p.returncode != 0:
            raise RuntimeError(f"the tiny CPU run failed: {p.stderr}")
        with open(cls.valid, "rb") as f:
            cls.data = f.read()
        cls.tokens = qb("tokens", cls.valid)
        with h5py.File(cls.valid, "r") as f:
            cls.token_offset = f["generated_tokens"].id.get_offset()
            cls.step_offset = f["step_latency_s"].id.get_offset()
            cls.n_tokens = len(f["generated_tokens"])

    def damaged(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def check_tokens(self, path, what):
        p = qb("tokens", path)
        check_exit(self, p, what)
        if p.returncode != 0:
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, f"{what}: not one line:\n{p.stderr}")
            self.assertIn("qwenbench tokens: error:", lines[0])
        return p

    def test_valid_file_reads(self):
        self.assertEqual(self.tokens.returncode, 0, self.tokens.stderr)
        self.assertIn("run 0:", self.tokens.stdout)

    def test_byte_flips_never_crash(self):
        n = len(self.data)
        offsets = sorted(set(list(range(0, min(n, 512), 3)) + list(range(512, n, max(1, n // 300)))))
        refused = 0
        for off in offsets:
            for mask in (0xFF, 0x10):
                d = bytearray(self.data)
                d[off] ^= mask
                p = self.check_tokens(self.damaged("flip.h5", d), f"flip 0x{mask:02x} at {off}")
                if p.returncode != 0:
                    refused += 1
                elif p.stdout != self.tokens.stdout:
                    self.fail(f"flip 0x{mask:02x} at {off}: tokens printed differ from the valid file's, no error")
        self.assertGreater(refused, len(offsets) // 4, "most flips of metadata should be refused")

    def test_truncations_never_crash(self):
        n = len(self.data)
        for length in sorted(set([0, 1, 7, 8, 47, 48, 96, 511, 512, 1024, n - 1, n - 8] +
                                 list(range(0, n, max(1, n // 60))))):
            p = self.check_tokens(self.damaged("cut.h5", self.data[:length]), f"truncated to {length} bytes")
            self.assertNotEqual(p.returncode, 0, f"truncated to {length} bytes: read as valid")

    def test_changed_data_is_damage_not_tokens(self):
        for what, offset in (("a generated token", self.token_offset + 4 * (self.n_tokens - 1)),
                             ("a step latency", self.step_offset + 3)):
            d = bytearray(self.data)
            d[offset] ^= 0x01
            p = self.check_tokens(self.damaged("data.h5", d), what)
            self.assertEqual(p.returncode, 1, f"{what} changed in place was not refused:\n{p.stdout}")
            self.assertIn("does not match its checksum", p.stderr)

    def test_resume_of_damaged_files(self):
        n = len(self.data)
        cases = [("cut", self.data[:length]) for length in (0, 48, 512, n // 3, n // 2, n - 1)]
        for off in range(0, n, max(1, n // 24)):
            d = bytearray(self.data)
            d[off] ^= 0xFF
            cases.append((f"flip{off}", bytes(d)))
        d = bytearray(self.data)
        d[self.token_offset] ^= 0x01
        cases.append(("token", bytes(d)))
        for name, data in cases:
            path = self.damaged(f"resume_{name}.h5", data)
            p = qb(*TINY, "--out", path, "--resume")
            check_exit(self, p, f"--resume of {name}")
            if p.returncode == 0:  # the damage was harmless (unused bytes): the file must read back
                self.assertEqual(qb("tokens", path).returncode, 0, f"--resume of {name} left an unreadable file")
            if name == "token":
                self.assertNotEqual(p.returncode, 0, "--resume accepted a file whose data was changed")


class Targets(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=WORK)

    def refused(self, out, flag, needle):
        p = qb(*TINY, "--out", out, flag)
        self.assertEqual(p.returncode, 2, f"--out {out} {flag}: {p.stderr}")
        self.assertIn(needle, p.stderr)
        self.assertNotIn("| model", p.stdout, "cells ran before the refusal")

    def test_fifo(self):
        fifo = os.path.join(self.dir, "fifo.h5")
        os.mkfifo(fifo)
        for flag in ("--overwrite", "--resume"):
            self.refused(fifo, flag, "is a FIFO, not a regular file")
        self.assertTrue(os.path.exists(fifo) and not os.path.isfile(fifo))
        import stat
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced")
        p = qb("tokens", fifo)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a FIFO, not a results file", p.stderr)

    def test_symlink_to_outside_file(self):
        outside = tempfile.mkdtemp(dir=WORK)
        victim = os.path.join(outside, "victim.h5")
        with open(victim, "w") as f:
            f.write("not to be touched\n")
        link = os.path.join(self.dir, "link.h5")
        os.symlink(victim, link)
        for flag in ("--overwrite", "--resume"):
            self.refused(link, flag, "is a symbolic link")
        self.assertTrue(os.path.islink(link))
        with open(victim) as f:
            self.assertEqual(f.read(), "not to be touched\n")


if __name__ == "__main__":
    QB, WORK = sys.argv[1], sys.argv[2]
    os.makedirs(WORK, exist_ok=True)
    unittest.main(argv=sys.argv[:1], verbosity=2)
