#!/usr/bin/env python3
"""test_energy_cpu.py - the energy fields of a CPU run (issue 21 item 6): present in /cells, and unavailable.

  /usr/bin/python3 tests/test_energy_cpu.py PATH/TO/qwenbench

The CPU backend has no GPU: energy_source says "unavailable: no GPU", the numbers are NaN, throttled and
throttle_reasons -1, and no energy note is added to the checks; the stdout table has no THROTTLED mark.
"""
import math
import os
import subprocess
import sys
import tempfile
import unittest

import h5py

QB = None


class CpuEnergy(unittest.TestCase):
    def test_fields_exist_and_say_unavailable(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = subprocess.run([QB, "--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1",
                                "--context-lengths", "4", "--generate-length", "4", "--repetitions", "2",
                                "--out", out], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("THROTTLED", p.stdout)
            with h5py.File(out, "r") as f:
                c = f["cells"][0]
                names = f["cells"].dtype.names
            for k in ("energy_source", "energy_j", "joules_per_token", "power_mean_w", "power_peak_w", "sm_clock_mhz",
                      "mem_clock_mhz", "temperature_max_c", "throttled", "throttle_reasons"):
                self.assertIn(k, names)
            self.assertEqual(c["status"].decode(), "VALID")
            self.assertEqual(c["energy_source"].decode(), "unavailable: no GPU")
            for k in ("energy_j", "joules_per_token", "power_mean_w", "power_peak_w", "sm_clock_mhz", "mem_clock_mhz",
                      "temperature_max_c"):
                self.assertTrue(math.isnan(c[k]), f"{k} = {c[k]}")
            self.assertEqual((int(c["throttled"]), int(c["throttle_reasons"])), (-1, -1))
            self.assertNotIn("J/token", c["checks"].decode())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_energy_cpu.py PATH/TO/qwenbench")
    QB = sys.argv.pop(1)
    unittest.main()
