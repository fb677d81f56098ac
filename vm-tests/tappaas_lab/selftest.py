"""`vm-tests/selftest`: runs `vm-tests/run` on the sabotaged variants in selftest.d/ (each must
FAIL with its `[selftest] must_fail_with` reason) and, unless --quick, on smoke-zfs (must PASS)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .common import HERE, SCENARIOS, SELFTEST_D


def expectations(quick: bool) -> tuple[list[str], dict[str, tuple[str, str | None]]]:
    """The scenario files to run and, per scenario name, (verdict, reason it must fail with)."""
    bad = sorted(SELFTEST_D.glob("*.toml"))
    expect: dict[str, tuple[str, str | None]] = {}
    for p in bad:
        with open(p, "rb") as f:
            d = tomllib.load(f)
        expect[d.get("name", p.stem)] = ("FAIL", d["selftest"]["must_fail_with"])
    paths = [str(p) for p in bad]
    if not quick:
        paths.insert(0, str(SCENARIOS / "smoke-zfs.toml"))
        expect["smoke-zfs"] = ("PASS", None)
    return paths, expect


def judge(want: str, reason: str | None, r: dict | None) -> tuple[bool, str]:
    """Whether scenario report `r` is what the selftest expects, and the words for it."""
    if r is None:
        return False, "not run"
    if want == "PASS":
        return r["passed"], "passed" if r["passed"] else "failed: " + "; ".join(r["errors"])[:300]
    hit = [e for e in r["errors"] if reason in e]
    good = (not r["passed"]) and bool(hit)
    why = (f"failed as it must ({hit[0][:150]})" if good else
           "PASSED but must fail" if r["passed"] else
           f"failed, but not with {reason!r}: " + "; ".join(r["errors"])[:300])
    return good, why


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    paths, expect = expectations(quick)
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        rc = subprocess.run([str(HERE / "run"), "--summary-json", str(summary)] + paths,
                            stdin=subprocess.DEVNULL).returncode
        if not summary.exists():
            print(f"selftest: vm-tests/run exited {rc} without a summary")
            print("0 passed, 1 failed")
            return 1
        reports = {r["name"]: r for r in json.loads(summary.read_text())["scenarios"]}
    ok = bad_count = 0
    print("\nSelftest")
    for name, (want, reason) in expect.items():
        r = reports.get(name)
        good, why = judge(want, reason, r)
        print(f"  {'ok  ' if good else 'BAD '} {name:28} expected {want}: {why}")
        if good and want == "FAIL" and r.get("work"):
            for img in [*Path(r["work"]).rglob("*.img"), *Path(r["work"]).rglob("*.iso")]:  # failed on purpose: no need to keep the disks
                img.unlink()
        ok += good
        bad_count += not good
    print(f"{ok} passed, {bad_count} failed")
    return 0 if bad_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
