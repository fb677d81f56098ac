"""Where the lab's files are, and the harness's log line."""

from __future__ import annotations

import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # vm-tests/
REPO = HERE.parent
LAB = HERE / "lab"
SCENARIOS = HERE / "scenarios"
SELFTEST_D = HERE / "selftest.d"
MIB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {msg}", flush=True)
