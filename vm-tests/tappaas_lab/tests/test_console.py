"""What one boot's console says, on consoles captured in the lab."""

from __future__ import annotations

import re
import unittest

from tappaas_lab.console import boot_result, progress_event
from tappaas_lab.scenario import load_scenario
from tappaas_lab.common import HERE

from .support import fixture

DEFAULTS = dict(timed_out=False, timeout=900, cut_when=None, cut_at=None, cut_line=None, qemu_rc=0)


def console(name: str) -> str:
    return fixture(name).replace("\r", "")


def result(text: str, **kw) -> dict:
    return boot_result(text, "install", **{**DEFAULTS, **kw})


class BootResult(unittest.TestCase):
    def test_a_finished_boot(self):
        r = result(console("console-install.log"))
        self.assertEqual((r["exit"], r["error"], r["ok"], r["guest_started"]), (0, None, True, True))
        self.assertIs(r["result"]["ok"], True)
        self.assertNotIn("qemu_aborted", r)
        self.assertNotIn("cut", r)

    def test_a_cut_boot_has_no_result_and_is_ok(self):
        line = '{"v":1,"event":"step-started"}'
        r = result(console("console-cut.log"), cut_when="x", cut_at=12.5, cut_line=line, qemu_rc=-9)
        self.assertEqual((r["result"], r["exit"], r["error"], r["ok"], r["cut"], r["cut_line"]),
                         (None, None, None, True, 12.5, line))

    def test_a_cut_that_never_happened(self):
        r = result(console("console-install.log"), cut_when="x")
        self.assertEqual((r["cut"], r["cut_line"], r["ok"]), (None, None, True))

    def test_no_result(self):
        r = result("TAPPAAS-LAB: [3.58] init\nKernel panic\n", qemu_rc=1)
        self.assertEqual((r["error"], r["ok"], r["guest_started"]),
                         ("install: no result on the console (qemu exit 1)", False, True))

    def test_timeout_wins(self):
        r = result(console("console-install.log"), timed_out=True, timeout=30)
        self.assertEqual(r["error"], "install: timed out after 30 s")

    def test_result_not_json_and_last_exit_line(self):
        r = result("TAPPAAS-LAB-EXIT 3\nTAPPAAS-LAB-RESULT-BEGIN\n{nope\nTAPPAAS-LAB-RESULT-END\nTAPPAAS-LAB-EXIT 1\n")
        self.assertEqual(r["exit"], 1)
        self.assertTrue(r["error"].startswith("install: result is not JSON ("), r["error"])

    def test_qemu_abort_only_without_a_result(self):
        abort = ("qemu-system-x86_64: ../hw/pci/msix.c:227: msix_vector_unmask: "
                 "Assertion `!dev->msix_vector_use_notifier' failed.\n")
        r = result(abort, qemu_rc=134)
        self.assertEqual((r["qemu_aborted"], r["guest_started"]), (abort.strip(), False))
        self.assertNotIn("qemu_aborted", result(console("console-install.log") + abort))


class Progress(unittest.TestCase):
    def test_the_power_cut_finds_its_event_on_a_real_console(self):
        when = load_scenario(HERE / "scenarios" / "power-cut.toml")["vm"][0]["cut"][0]["when"]
        hits = [e for e in (progress_event(ln, re.compile(when)) for ln in console("console-cut.log").splitlines())
                if e is not None]
        self.assertEqual(len(hits), 1)
        self.assertTrue(hits[0].startswith('{"v":1,'), hits[0])
        self.assertIn('"event":"step-started","step":"pool:tank1"', hits[0])

    def test_only_prefixed_lines(self):
        when = re.compile('"event":"finished"')
        self.assertIsNone(progress_event('{"event":"finished"}', when))
        self.assertEqual(progress_event('junk TAPPAAS-LAB-PROGRESS {"event":"finished"}', when), '{"event":"finished"}')


if __name__ == "__main__":
    unittest.main()
