"""What `vm-tests/run` prints about the scenarios it ran, and its summary JSON
(`--summary-json`, which `vm-tests/selftest` reads)."""

from __future__ import annotations

import json
from pathlib import Path


def verdict(rep: dict) -> str:
    return "SKIP" if rep.get("skipped") else "PASS" if rep["passed"] else "FAIL"


def scenario_line(rep: dict) -> str:
    """The log line that ends one scenario (after its `FAIL:` lines)."""
    skipped = "  " + rep["skipped"] if rep.get("skipped") else ""
    return f"=== {rep['name']}: {verdict(rep)} ({rep['seconds']:.0f} s){skipped}"


def summary_lines(reports: list[dict], setup_secs: float, total_secs: float) -> list[str]:
    """The `Summary` block: one line per scenario with its boots' times, its errors, the times."""
    lines = ["", "Summary"]
    for rep in reports:
        vms = rep.get("vms", [])
        boots = "; ".join(
            (f"{vm['name']}: " if len(vms) > 1 else "")
            + " ".join(f"{k} {b['seconds']:.0f}s" for k, b in vm["boots"].items())
            for vm in vms)
        lines.append(f"  {verdict(rep)}  {rep['name']:28} {rep['seconds']:6.1f} s   {boots or rep.get('skipped', '')}")
        for e in rep["errors"]:
            lines.append(f"        {e}")
    lines.append(f"  setup {setup_secs:.1f} s, total {total_secs:.1f} s")
    return lines


def counts(reports: list[dict]) -> tuple[int, int, int]:
    """(passed, failed, skipped)."""
    passed = sum(1 for r in reports if r["passed"])
    skipped = sum(1 for r in reports if r.get("skipped"))
    return passed, len(reports) - passed - skipped, skipped


def final_line(reports: list[dict]) -> str:
    passed, failed, skipped = counts(reports)
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


def write_summary_json(path: Path, setup_secs: float, reports: list[dict]) -> None:
    path.write_text(json.dumps({"setup_seconds": setup_secs, "scenarios": reports}, indent=2, default=str))
