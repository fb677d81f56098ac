"""The scenario model: a TOML file (with its `extends` chain), checked against the known keys
before anything boots. See vm-tests/README.md, "Scenarios"."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from .common import HERE, SCENARIOS


class ScenarioError(Exception):
    """The scenario file itself is wrong (not a test failure)."""


def parse_size(s: str | int) -> int:
    if isinstance(s, int):
        return s
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", str(s), re.I)
    if not m:
        raise ScenarioError(f"bad size {s!r}")
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(m.group(1)) * mult


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_toml(path: Path) -> dict:
    """A scenario file with its `extends` chain merged in."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: {e}") from e
    if "extends" in data:
        base_path = (path.parent / data.pop("extends")).resolve()
        data = deep_merge(load_toml(base_path), data)
    return data


def load_scenario(path: Path) -> dict:
    data = load_toml(path)
    data["name"] = data.get("name") or path.stem
    validate_keys(data, path)
    data["_path"] = str(path)
    if not data.get("vm"):
        raise ScenarioError(f"{path}: no [[vm]]")
    serials = set()
    for vm in data["vm"]:
        vm.setdefault("name", "vm")
        for d in vm.get("disk", []):
            if "serial" not in d or "size" not in d:
                raise ScenarioError(f"{path}: every disk needs serial and size")
            if len(d["serial"]) > 20:
                raise ScenarioError(f"{path}: serial {d['serial']!r} longer than 20 characters (virtio-blk limit)")
            if d["serial"] in serials:
                raise ScenarioError(f"{path}: duplicate serial {d['serial']!r}")
            serials.add(d["serial"])
    return data


# Known keys: a typo in an expectation must be an error, never a silently skipped check.
KEYS = {
    "": {"name", "description", "site", "guest_script", "binaries", "skip_without_binaries", "timeout", "prep_timeout",
         "verify_timeout", "guest_env", "vm", "selftest"},
    "vm": {"name", "firmware", "memory", "cpu", "disk", "nic", "guest_env", "cut", "expect"},
    "vm.cut": {"when", "delay", "expect_marked"},
    "vm.disk": {"serial", "size", "role", "content", "bystander"},
    "vm.nic": {"mac", "name"},
    "vm.expect": {"guest_exit", "guest_ok", "absent_pools", "disk", "pool", "root_files", "root_absent",
                  "root_lacks"},
    "vm.expect.disk": {"serial", "label", "partitions"},
    "vm.expect.disk.partitions": {"type", "name", "start_mib", "size_mib", "min_size_mib"},
    "vm.expect.pool": {"name", "state", "vdevs", "properties", "datasets"},
    "vm.expect.pool.vdevs": {"type", "devices"},
}


def validate_keys(data: dict, path: Path) -> None:
    def check(obj, where: str) -> None:
        if not isinstance(obj, dict):
            raise ScenarioError(f"{path}: {where or 'top level'} must be a table")
        unknown = set(obj) - KEYS[where]
        if unknown:
            raise ScenarioError(f"{path}: unknown key(s) {sorted(unknown)} in {where or 'top level'}")
        for k, v in obj.items():
            sub = f"{where}.{k}" if where else k
            if sub in KEYS:
                for item in (v if isinstance(v, list) else [v]):
                    check(item, sub)
    check(data, "")
    if data.get("vm") is not None and not isinstance(data["vm"], list):
        raise ScenarioError(f"{path}: vm must be [[vm]] (an array of tables)")


def scenario_paths(args: list[str]) -> list[Path]:
    """The files `vm-tests/run`'s arguments name (a name in scenarios/ or a path), or every
    scenarios/*.toml. Exits like the harness always did when one is missing."""
    if not args:
        return sorted(SCENARIOS.glob("*.toml"))
    paths = []
    for s in args:
        p = Path(s)
        if not p.suffix:
            p = SCENARIOS / f"{s}.toml"
        if not p.is_file():
            raise SystemExit(f"no scenario {s} ({p})")
        paths.append(p.resolve())
    return paths


def resolve(scenario: dict, rel: str) -> Path:
    """Paths in a scenario are relative to vm-tests/ (or absolute)."""
    p = Path(rel)
    if p.is_absolute():
        return p
    return HERE / p


def binary_path(scenario: dict, rel: str) -> Path:
    """A scenario's binary; `../target/...` follows CARGO_TARGET_DIR when it is set."""
    target = os.environ.get("CARGO_TARGET_DIR")
    if target and rel.startswith("../target/"):
        return Path(target) / rel[len("../target/"):]
    return resolve(scenario, rel)
