"""The guest's side of the serial console: what lab/guest/init and the guest scripts print,
and what one boot's console log says happened."""

from __future__ import annotations

import json
import re
from pathlib import Path

RESULT_BEGIN = "TAPPAAS-LAB-RESULT-BEGIN"
RESULT_END = "TAPPAAS-LAB-RESULT-END"
PROGRESS_PREFIX = "TAPPAAS-LAB-PROGRESS "   # guest/install.sh echoes progress events with it
EXIT_RE = re.compile(r"^TAPPAAS-LAB-EXIT (\d+)")
GUEST_STARTED = "TAPPAAS-LAB:"              # every line of lab/guest/init starts with it
QEMU_ABORT_RE = re.compile(r"^qemu-system-x86_64: .*Assertion .* failed\.$", re.M)


def read_console(logf: Path) -> str:
    return logf.read_bytes().decode("utf-8", "replace").replace("\r", "")


def progress_event(line: str, when: re.Pattern) -> str | None:
    """The progress event (JSON text) a console line carries, if it matches `when`."""
    i = line.find(PROGRESS_PREFIX)
    if i >= 0 and when.search(line[i + len(PROGRESS_PREFIX):]):
        return line[i + len(PROGRESS_PREFIX):]
    return None


def boot_result(text: str, name: str, *, timed_out: bool, timeout: int, cut_when: str | None,
                cut_at: float | None, cut_line: str | None, qemu_rc: int | None) -> dict:
    """What one boot's console says: {exit, result, error, ok, guest_started} (+ cut, cut_line
    with a cut, qemu_aborted when QEMU itself died of an assertion before any result)."""
    res: dict = {"exit": None, "result": None, "error": None}
    m = None
    for line in text.splitlines():
        mm = EXIT_RE.match(line)
        if mm:
            m = mm
    if m:
        res["exit"] = int(m.group(1))
    b, e = text.rfind(RESULT_BEGIN), text.rfind(RESULT_END)
    if b >= 0 and e > b:
        body = text[b + len(RESULT_BEGIN): e].strip()
        try:
            res["result"] = json.loads(body)
        except json.JSONDecodeError as ex:
            res["error"] = f"{name}: result is not JSON ({ex})"
    if cut_when is not None:
        res["cut"] = cut_at
        res["cut_line"] = cut_line
    if timed_out:
        res["error"] = f"{name}: timed out after {timeout} s"
    elif cut_at is not None:
        pass  # killed on purpose: no result expected
    elif res["result"] is None and not res["error"]:
        res["error"] = f"{name}: no result on the console (qemu exit {qemu_rc})"
    res["ok"] = res["error"] is None
    res["guest_started"] = GUEST_STARTED in text
    abort = QEMU_ABORT_RE.search(text)
    if abort and cut_at is None and res["result"] is None:
        res["qemu_aborted"] = abort.group(0)[:200]
    return res
