"""The lines `vm-tests/run` ends with, and the selftest's verdicts."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from tappaas_lab import report
from tappaas_lab.common import SCENARIOS, SELFTEST_D
from tappaas_lab.selftest import expectations, judge

PASS = {"name": "smoke-zfs", "passed": True, "seconds": 99.94, "errors": [],
        "vms": [{"name": "tappaas1", "boots": {"prep": {"seconds": 14.4}, "install": {"seconds": 54.6},
                                               "verify": {"seconds": 20.0}}}]}
THREE = {"name": "install-three-nodes", "passed": False, "seconds": 250.0, "errors": ["tappaas2: boom", "x"],
         "vms": [{"name": f"tappaas{i}", "boots": {"install": {"seconds": 60.0 + i}}} for i in (1, 2)]}
SKIP = {"name": "probe-lab", "passed": False, "skipped": "not built: /t/x", "seconds": 0.0, "errors": [], "vms": []}
ERROR = {"name": "bad", "passed": False, "seconds": 0.0, "errors": ["scenario error: no"]}


class Lines(unittest.TestCase):
    def test_summary(self):
        self.assertEqual(report.summary_lines([PASS, THREE, SKIP, ERROR], 4.44, 400.06), [
            "",
            "Summary",
            "  PASS  smoke-zfs                      99.9 s   prep 14s install 55s verify 20s",
            "  FAIL  install-three-nodes           250.0 s   tappaas1: install 61s; tappaas2: install 62s",
            "        tappaas2: boom",
            "        x",
            "  SKIP  probe-lab                       0.0 s   not built: /t/x",
            "  FAIL  bad                             0.0 s   ",
            "        scenario error: no",
            "  setup 4.4 s, total 400.1 s"])

    def test_scenario_and_final_lines(self):
        self.assertEqual(report.scenario_line(PASS), "=== smoke-zfs: PASS (100 s)")
        self.assertEqual(report.scenario_line(SKIP), "=== probe-lab: SKIP (0 s)  not built: /t/x")
        self.assertEqual(report.final_line([PASS, THREE, SKIP]), "1 passed, 1 failed, 1 skipped")
        self.assertEqual(report.final_line([PASS]), "1 passed, 0 failed")
        self.assertEqual(report.counts([SKIP]), (0, 0, 1))

    def test_summary_json(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "s.json"
            report.write_summary_json(p, 1.5, [{**PASS, "work": Path("/w")}])
            self.assertEqual(json.loads(p.read_text()), {"setup_seconds": 1.5, "scenarios": [{**PASS, "work": "/w"}]})


class Selftest(unittest.TestCase):
    def test_expectations(self):
        paths, expect = expectations(quick=True)
        self.assertEqual(paths, [str(p) for p in sorted(SELFTEST_D.glob("*.toml"))])
        self.assertEqual(expect["bad-keep-old-labels"], ("FAIL", "pool oldrpool"))
        self.assertTrue(all(v[0] == "FAIL" for v in expect.values()))
        paths, expect = expectations(quick=False)
        self.assertEqual(paths[0], str(SCENARIOS / "smoke-zfs.toml"))
        self.assertEqual(expect["smoke-zfs"], ("PASS", None))

    def test_judge(self):
        self.assertEqual(judge("FAIL", "r", None), (False, "not run"))
        self.assertEqual(judge("PASS", None, PASS), (True, "passed"))
        self.assertEqual(judge("PASS", None, THREE), (False, "failed: tappaas2: boom; x"))
        self.assertEqual(judge("FAIL", "boom", THREE), (True, "failed as it must (tappaas2: boom)"))
        self.assertEqual(judge("FAIL", "boom", PASS), (False, "PASSED but must fail"))
        self.assertEqual(judge("FAIL", "bang", THREE), (False, "failed, but not with 'bang': tappaas2: boom; x"))


if __name__ == "__main__":
    unittest.main()
