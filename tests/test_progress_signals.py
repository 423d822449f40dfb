#!/usr/bin/env python3
"""test_progress_signals.py - the live progress line on a terminal, and what Ctrl-C / SIGTERM do to a run.

Run by ctest: /usr/bin/python3 tests/test_progress_signals.py PATH/TO/qwenbench-testhooks
(1) stderr on a pty: a live line rewritten with '\\r' naming the repetition / decode step; stderr a pipe: no '\\r'.
(2) one SIGINT: the message at once, the run stops after the current cell, the table and the --resume command are
    printed, exit 3; the printed command completes the file.
(3) two SIGINTs (or SIGTERMs): exit 130 (143) at once; the results file holds the cells finished so far, no
    temporary file is left.
The test build's QWENBENCH_TEST_CELL_DELAY makes the cells of the tiny model slow enough to signal mid-sweep.
"""
import glob
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import h5py

QB_HOOKS = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1"]
MESSAGE = "qwenbench: stopping after the current cell (again to stop now; the results file stays intact)"


def env_with(**extra):
    e = dict(os.environ)
    e.update(extra)
    return e


def n_cells(path):
    with h5py.File(path, "r") as f:
        return len(f["cells"][()])


def finished_lines(text, total):
    """How many '# cell k/total ...' lines of finished cells (VALID ones: 'tok/s (elapsed') stderr holds."""
    return len(re.findall(r"# cell \d/%d [^\r\n]*tok/s \(elapsed" % total, text))


class StderrReader:
    """stderr of a running process, read without blocking, with the time each chunk arrived."""

    def __init__(self, fd):
        self.fd, self.text, self.times = fd, "", []

    def pump(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # a pty whose other side closed
            return None
        if not chunk:
            return None
        self.text += chunk.decode("utf-8", "replace")
        self.times.append((time.monotonic(), len(self.text)))
        return True

    def wait_for(self, needle, timeout):
        end = time.monotonic() + timeout
        while needle not in self.text and time.monotonic() < end:
            if self.pump(0.1) is None:
                break
        return needle in self.text

    def drain(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pump(0.1) is None:
                return


def start(args, stderr_tty, **env):
    """The test build with stderr on a pty or a pipe; stdout a pipe."""
    if stderr_tty:
        master, slave = pty.openpty()
        p = subprocess.Popen([QB_HOOKS, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                             env=env_with(**env), text=True)
        os.close(slave)
        return p, StderrReader(master), master
    p = subprocess.Popen([QB_HOOKS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=env_with(**env), text=True)
    return p, StderrReader(p.stderr.fileno()), None


def finish(p, reader, master, timeout=120):
    end = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < end:
        reader.pump(0.1)
    reader.drain(0.5)
    out = p.stdout.read()
    p.stdout.close()
    if p.stderr:
        p.stderr.close()
    if master is not None:
        os.close(master)
    if p.poll() is None:
        p.kill()
        p.wait()
    return out


class ProgressLine(unittest.TestCase):
    ARGS = [*TINY, "--context-lengths", "1,8", "--generate-length", "64", "--repetitions", "3"]

    def test_live_line_on_a_terminal(self):
        p, reader, master = start(self.ARGS, True, QWENBENCH_TEST_CELL_DELAY="1")
        finish(p, reader, master)
        self.assertEqual(p.returncode, 0, reader.text)
        self.assertIn("\r", reader.text)
        self.assertRegex(reader.text, r"\r# cell 1/2 [^\r\n]*(repetition|decode|loading weights|starting)")
        self.assertIn("# cell 2/2 qwen2.5-tiny", reader.text)  # the finished cells' lines stay

    def test_decode_step_shown_during_a_long_run(self):
        args = [*TINY, "--context-lengths", "1", "--generate-length", "256", "--repetitions", "3"]
        p, reader, master = start(args, True)
        finish(p, reader, master, timeout=300)
        self.assertEqual(p.returncode, 0, reader.text)
        self.assertRegex(reader.text, r"\r# cell 1/1 [^\r\n]*repetition \d/3, (decode step \d+/256|prefill)")

    def test_quiet_when_not_a_terminal(self):
        p, reader, master = start(self.ARGS, False, QWENBENCH_TEST_CELL_DELAY="0.3")
        finish(p, reader, master)
        self.assertEqual(p.returncode, 0, reader.text)
        self.assertNotIn("\r", reader.text)
        self.assertNotIn("\033[K", reader.text)
        self.assertEqual(finished_lines(reader.text, 2), 2, reader.text)


class Signals(unittest.TestCase):
    CELLS = "1,2,3,4,5,6"

    def args(self, path, *more):
        return [*TINY, "--context-lengths", self.CELLS, "--generate-length", "4", "--repetitions", "1",
                "--out", path, *more]

    def signal_after_first_cell(self, path, sigs, tty, *more, delay=1):
        p, reader, master = start(self.args(path, *more), tty, QWENBENCH_TEST_CELL_DELAY=str(delay))
        self.assertTrue(reader.wait_for("tok/s (elapsed", 60), reader.text)  # cell 1 done, cell 2 in its delay
        end = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < end:  # and written
            reader.pump(0.05)
        settle = time.monotonic() + 0.3 * delay  # the write returned (directory fsync'ed): cell 2 in its delay
        while time.monotonic() < settle:
            reader.pump(0.05)
        sent = time.monotonic()
        p.send_signal(sigs[0])
        self.assertTrue(reader.wait_for(MESSAGE, 2), reader.text)
        said = next(t for t, n in reader.times if MESSAGE in reader.text[:n])
        self.assertLess(said - sent, 1.5, "the message must come at once")
        for s in sigs[1:]:
            time.sleep(0.2)
            p.send_signal(s)
        return p, reader, master, sent

    def test_first_sigint_stops_after_the_cell_and_resume_completes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            # --overwrite on the command line: the printed --resume command must drop it
            open(path, "wb").close()
            p, reader, master, _ = self.signal_after_first_cell(path, [signal.SIGINT], True, "--overwrite")
            out = finish(p, reader, master)
            self.assertEqual(p.returncode, 3, reader.text + out)
            self.assertIn("| qwen2.5-tiny", out)  # the table so far
            done = n_cells(path)
            self.assertGreaterEqual(done, 1)
            self.assertLess(done, 6, "the run must stop early")
            self.assertEqual(finished_lines(reader.text, 6), done, reader.text)
            m = re.search(r"to complete it, run:\n# (.*)\n", out)
            self.assertTrue(m, out)
            cmd = shlex.split(m.group(1))
            self.assertIn("--resume", cmd)
            self.assertNotIn("--overwrite", cmd)
            self.assertEqual(cmd[0], QB_HOOKS)
            again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("already in", again.stderr)
            self.assertEqual(n_cells(path), 6)

    def test_first_sigterm_without_terminal(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p, reader, master, _ = self.signal_after_first_cell(path, [signal.SIGTERM], False)
            out = finish(p, reader, master)
            self.assertEqual(p.returncode, 3, reader.text + out)
            self.assertIn("--resume", out)
            self.assertLess(n_cells(path), 6)

    def check_second_signal_exits_at_once(self, sig, status):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            p, reader, master, _ = self.signal_after_first_cell(path, [sig, sig], True, delay=2)
            second = time.monotonic()
            while p.poll() is None and time.monotonic() - second < 5:
                reader.pump(0.05)
            self.assertIsNotNone(p.poll(), "a second signal must stop the run at once")
            self.assertLess(time.monotonic() - second, 2.5)
            finish(p, reader, master)
            self.assertEqual(p.returncode, status, reader.text)
            finished = finished_lines(reader.text, 6)
            self.assertLess(finished, 6)
            # a valid file with the cells finished so far (the last one's line may precede its write)
            self.assertIn(n_cells(path), (finished, finished - 1))
            self.assertGreaterEqual(n_cells(path), 1)
            self.assertEqual(glob.glob(path + ".tmp.*"), [])

    def test_second_sigint_exits_130_at_once(self):
        self.check_second_signal_exits_at_once(signal.SIGINT, 130)

    def test_second_sigterm_exits_143_at_once(self):
        self.check_second_signal_exits_at_once(signal.SIGTERM, 143)


if __name__ == "__main__":
    QB_HOOKS = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
