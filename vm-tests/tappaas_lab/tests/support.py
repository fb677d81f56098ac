"""Shared by the tests: where the fixtures and the repo's files are."""

from __future__ import annotations

import json
from pathlib import Path

from tappaas_lab.common import REPO

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ZFS_FIXTURES = REPO / "installer" / "tests" / "fixtures" / "zfs"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str):
    return json.loads(fixture(name))
