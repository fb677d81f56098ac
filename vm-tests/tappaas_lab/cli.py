"""`vm-tests/run`: the command line, then every scenario one after the other."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import report
from .common import log
from .qemu import Lab, run_setup
from .scenario import ScenarioError, load_scenario, scenario_paths
from .scenario_run import run_scenario


def parser(description: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", help="names in vm-tests/scenarios/ or paths to .toml files")
    ap.add_argument("--accel", choices=["auto", "tcg", "kvm"], default=os.environ.get("TAPPAAS_VM_ACCEL", "auto"),
                    help="auto (default): KVM only if a real probe boot under it succeeds")
    ap.add_argument("--keep", action="store_true", help="keep disk images of passed scenarios")
    ap.add_argument("--workdir", help="where runs go (default: <cache>/runs)")
    ap.add_argument("--summary-json", help="also write the summary as JSON to this file")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return ap


def main(description: str | None = None, argv: list[str] | None = None) -> int:
    """Exit code: 0 all passed (or skipped), 1 a scenario failed, 2 a scenario file is wrong."""
    args = parser(description).parse_args(argv)
    paths = scenario_paths(args.scenarios)
    try:
        scenarios = [load_scenario(p) for p in paths]
    except ScenarioError as e:
        print(f"scenario error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for sc in scenarios:
            print(f"{sc['name']:24} {sc.get('description', '')}")
        return 0
    if not scenarios:
        sys.exit("no scenarios")

    t0 = time.monotonic()
    env = run_setup()
    setup_secs = time.monotonic() - t0
    lab = Lab(env, args)
    workroot = Path(args.workdir) if args.workdir else Path(env["LAB_CACHE"]) / "runs"
    workroot.mkdir(parents=True, exist_ok=True)
    log(f"lab ready in {setup_secs:.0f} s (kernel {env.get('LAB_KV')}, zfs {env.get('LAB_ZFS')}, accel {lab.accel})")

    reports = [run_one(lab, sc, workroot) for sc in scenarios]
    for line in report.summary_lines(reports, setup_secs, time.monotonic() - t0):
        print(line)
    if args.summary_json:
        report.write_summary_json(Path(args.summary_json), setup_secs, reports)
    print(report.final_line(reports))
    return 0 if report.counts(reports)[1] == 0 else 1


def run_one(lab: Lab, sc: dict, workroot: Path) -> dict:
    log(f"=== {sc['name']}")
    try:
        rep = run_scenario(lab, sc, workroot)
    except ScenarioError as e:
        rep = {"name": sc["name"], "passed": False, "seconds": 0.0, "errors": [f"scenario error: {e}"]}
    except Exception as e:  # a harness bug must not hide the other scenarios
        rep = {"name": sc["name"], "passed": False, "seconds": 0.0, "errors": [f"harness error: {e!r}"]}
    for e in rep["errors"]:
        log(f"  FAIL: {e}")
    log(report.scenario_line(rep))
    return rep
