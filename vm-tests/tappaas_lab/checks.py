"""The outside checks: partition tables (from `sfdisk --json` on the images), pools and
datasets (from the verification boot, lab/guest/verify.sh), the installed root's files.
Pure functions: each returns the errors it found, in the words `vm-tests/selftest` matches."""

from __future__ import annotations

import re


def parse_zpool_status(text: str) -> dict:
    """The vdev tree of `zpool status -P POOL`."""
    pool: dict = {"state": None, "vdevs": [], "classes": {}}
    m = re.search(r"^\s*state:\s*(\S+)", text, re.M)
    if m:
        pool["state"] = m.group(1)
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if re.match(r"^\s*NAME\s+STATE", l))
    except StopIteration:
        return pool
    base_indent = None
    cls = "data"
    current = None
    for l in lines[start + 1:]:
        if not l.strip():
            break
        body = l.lstrip("\t")
        indent = len(body) - len(body.lstrip(" "))
        fields = body.split()
        name, state = fields[0], fields[1] if len(fields) > 1 else ""
        if base_indent is None:
            base_indent = indent  # the pool's own line
            continue
        level = (indent - base_indent) // 2
        if level == 0:
            cls = name  # logs, cache, spares, special, dedup
            continue
        target = pool["vdevs"] if cls == "data" else pool["classes"].setdefault(cls, [])
        if level == 1:
            if name.startswith("/"):
                current = {"type": "disk", "name": name, "state": state, "devices": [name]}
            else:
                current = {"type": re.sub(r"-\d+$", "", name), "name": name, "state": state, "devices": []}
            target.append(current)
        elif current is not None:
            current["devices"].append(name)
    return pool


def check_partitions(serial: str, got: dict, want: dict) -> list[str]:
    errs = []
    if "label" in want and got["label"] != want["label"]:
        errs.append(f"disk {serial}: partition table {got['label']!r}, expected {want['label']!r}")
        return errs
    if "partitions" in want:
        wp, gp = want["partitions"], got["partitions"]
        if len(wp) != len(gp):
            errs.append(f"disk {serial}: {len(gp)} partitions, expected {len(wp)}")
            return errs
        for i, (w, g) in enumerate(zip(wp, gp), 1):
            if "type" in w and g["type"] != w["type"].upper():
                errs.append(f"disk {serial} partition {i}: type {g['type']}, expected {w['type'].upper()}")
            if "name" in w and g["name"] != w["name"]:
                errs.append(f"disk {serial} partition {i}: name {g['name']!r}, expected {w['name']!r}")
            for k in ("size_mib", "start_mib"):
                if k in w and abs(g[k] - w[k]) > 0.001:
                    errs.append(f"disk {serial} partition {i}: {k} {g[k]:g}, expected {w[k]}")
            if "min_size_mib" in w and g["size_mib"] < w["min_size_mib"]:
                errs.append(f"disk {serial} partition {i}: size_mib {g['size_mib']:g} < {w['min_size_mib']}")
    return errs


def check_root_files(verify: dict, want: dict, absent: list[str] | None = None,
                     lacks: dict | None = None) -> list[str]:
    """Each expected file of the installed root exists and contains every given text; each
    path in `absent` is not there; each file in `lacks` exists and contains none of its texts
    (verify.sh reads a fixed list of paths and runs a few commands, see it)."""
    got = verify.get("root_files") or {}
    errors = [f"installed root: {path} must not be there" for path in absent or [] if path in got]
    for path, texts in (lacks or {}).items():
        if path not in got:
            errors.append(f"installed root: {path} is missing (read: {sorted(got)})")
            continue
        for text in [texts] if isinstance(texts, str) else texts:
            if text in got[path]:
                errors.append(f"installed root: {path} contains {text!r}, which must not be there")
    for path, texts in want.items():
        if path not in got:
            errors.append(f"installed root: {path} is missing (read: {sorted(got)})")
            continue
        for text in [texts] if isinstance(texts, str) else texts:
            if text not in got[path]:
                errors.append(f"installed root: {path} does not contain {text!r}")
    return errors


def check_pools(verify: dict, want_pools: list[dict], absent: list[str]) -> list[str]:
    errs = []
    pools = {p["name"]: p for p in verify.get("pools", [])}
    for name in absent:
        if name in pools:
            errs.append(f"pool {name}: present, expected gone")
        elif re.search(rf"^\s*pool:\s*{re.escape(name)}\s*$", verify.get("importable", ""), re.M):
            errs.append(f"pool {name}: still listed by `zpool import` (old labels left), expected gone")
    for w in want_pools:
        name = w["name"]
        if name not in pools:
            errs.append(f"pool {name}: not found by the verification boot (import log: "
                        f"{verify.get('import_log', '').strip()[:300]!r})")
            continue
        p = pools[name]
        tree = parse_zpool_status(p["status"])
        p["tree"] = tree
        if tree["state"] != w.get("state", "ONLINE"):
            errs.append(f"pool {name}: state {tree['state']}, expected {w.get('state', 'ONLINE')}")
        if "vdevs" in w:
            got = sorted((v["type"], tuple(sorted(v["devices"]))) for v in tree["vdevs"])
            exp = sorted((v["type"], tuple(sorted(v["devices"]))) for v in w["vdevs"])
            if got != exp:
                errs.append(f"pool {name}: vdevs {fmt_vdevs(got)}, expected {fmt_vdevs(exp)}")
        for k, v in w.get("properties", {}).items():
            gv = p["props"].get(k)
            if gv != str(v):
                errs.append(f"pool {name}: property {k}={gv}, expected {v}")
    datasets = verify.get("datasets", {})
    for w in want_pools:
        for ds, props in w.get("datasets", {}).items():
            if ds not in datasets:
                errs.append(f"dataset {ds}: missing")
                continue
            for k, v in props.items():
                gv = datasets[ds].get(k)
                if gv != str(v):
                    errs.append(f"dataset {ds}: {k}={gv}, expected {v}")
    return errs


def fmt_vdevs(v) -> str:
    return "[" + "; ".join(f"{t}: {', '.join(d)}" for t, d in v) + "]"


def pools_report(verify: dict) -> dict:
    """report.json's `pools`: each pool's vdev tree and the properties worth a glance."""
    return {p["name"]: {"tree": p.get("tree") or parse_zpool_status(p["status"]),
                        "props": {k: p["props"].get(k) for k in ("ashift", "compatibility", "health")}}
            for p in verify.get("pools", [])}
