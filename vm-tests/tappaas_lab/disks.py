"""Disk images on the host: their pre-existing content, content digests, and reading their
partition tables with `sfdisk --json`."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from .common import MIB
from .contract import is_marked
from .scenario import ScenarioError, parse_size


def content_digest(path: Path) -> str:
    """sha256 of the logical content of a (sparse) image, reading only allocated data.

    Equal digests <=> equal bytes: the digest covers (offset, block) for every 1 MiB block that
    is not all zeros, plus the size; holes and explicit zero blocks are treated the same.
    """
    h = hashlib.sha256()
    zero = bytes(MIB)
    size = path.stat().st_size
    h.update(f"size={size}\n".encode())
    with open(path, "rb") as f:
        fd = f.fileno()
        off = 0
        while off < size:
            try:
                data_start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break  # only a hole remains
            hole = os.lseek(fd, data_start, os.SEEK_HOLE)
            blk = data_start - data_start % MIB
            while blk < hole:
                f.seek(blk)
                b = f.read(MIB)
                if b and b != zero[: len(b)]:
                    h.update(f"{blk}:".encode())
                    h.update(hashlib.sha256(b).digest())
                blk += MIB
            off = max(hole, blk)
    return h.hexdigest()


def make_ext4_files(img: Path, size: int, serial: str, workdir: Path) -> None:
    """A GPT with one Linux partition holding ext4 with a few files (made with mkfs.ext4 -d)."""
    src = workdir / f"files-{serial}"
    if src.exists():
        shutil.rmtree(src)
    (src / "docs").mkdir(parents=True)
    (src / "README.txt").write_text(f"Files on the bystander disk {serial}. Must survive the install untouched.\n")
    (src / "docs" / "notes.txt").write_text("\n".join(f"line {i}" for i in range(1000)))
    rnd = random.Random(serial)
    (src / "blob.bin").write_bytes(rnd.randbytes(2 * MIB))
    start = MIB
    part_size = size - start - MIB  # leave room for the backup GPT
    subprocess.run(["sfdisk", "-q", str(img)], input=f"label: gpt\nstart=2048, size={part_size // 512}, type=L, name=data\n",
                   text=True, check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "data", "-d", str(src), "-E", f"offset={start}",
                    str(img), f"{part_size // 1024}k"], check=True)


def make_random(img: Path, serial: str) -> None:
    rnd = random.Random(serial)
    size = img.stat().st_size
    with open(img, "r+b") as f:
        f.write(rnd.randbytes(4 * MIB))
        f.seek(max(0, size - 4 * MIB))
        f.write(rnd.randbytes(4 * MIB))


def parse_pool_content(content: str, scenario: str) -> tuple[str, str, str]:
    """`zpool:<name>[:exported|:active]` or `zpool-s34:...` -> (name, state, where)."""
    parts = content.split(":")
    where = "s34" if parts[0] == "zpool-s34" else "disk"
    pname = parts[1]
    state = parts[2] if len(parts) > 2 else "exported"
    if state not in ("exported", "active") or len(parts) > 3 or not pname:
        raise ScenarioError(f"{scenario}: {content!r}: expected {parts[0]}:<name>[:exported|:active]")
    return pname, state, where


def create_images(disks: list[dict], vwork: Path, scenario: str) -> dict[str, tuple[str, str, list[str]]]:
    """Makes each disk's sparse image (`d["_img"]`) with its content; returns the pools the
    preparation boot must make: {pool: (state, where, [serials])}."""
    prep_pools: dict[str, tuple[str, str, list[str]]] = {}
    for d in disks:
        img = vwork / f"disk-{d['serial']}.img"
        d["_img"] = img
        size = parse_size(d["size"])
        with open(img, "wb") as f:
            f.truncate(size)
        content = d.get("content", "empty")
        if content == "empty":
            pass
        elif content == "ext4-files":
            make_ext4_files(img, size, d["serial"], vwork)
        elif content == "random":
            make_random(img, d["serial"])
        elif content.startswith(("zpool:", "zpool-s34:")):
            pname, state, where = parse_pool_content(content, scenario)
            prep_pools.setdefault(pname, (state, where, []))[2].append(d["serial"])
        else:
            raise ScenarioError(f"{scenario}: unknown disk content {content!r}")
    return prep_pools


def prep_spec(prep_pools: dict[str, tuple[str, str, list[str]]]) -> str:
    """`$LAB_PREP_POOLS` for lab/guest/prep.sh: `pool:state:where:serial,serial;...`."""
    return ";".join(f"{p}:{st}:{wh}:{','.join(s)}" for p, (st, wh, s) in prep_pools.items())


def parse_sfdisk_json(text: str) -> dict:
    """`sfdisk --json` output -> {label, partitions: [{start_mib, size_mib, type, name, uuid}]}."""
    pt = json.loads(text)["partitiontable"]
    ss = pt.get("sectorsize", 512)
    parts = []
    for q in pt.get("partitions", []):
        parts.append({"start_mib": q["start"] * ss / MIB, "size_mib": q["size"] * ss / MIB,
                      "type": q.get("type", "").upper(), "name": q.get("name", ""), "uuid": q.get("uuid")})
    return {"label": pt.get("label"), "partitions": parts}


def sfdisk_json(img: Path) -> dict:
    p = subprocess.run(["sfdisk", "--json", str(img)], capture_output=True, text=True)
    if p.returncode != 0:
        return {"label": "none", "partitions": []}
    return parse_sfdisk_json(p.stdout)


def marker_missing(table: dict) -> list[str] | None:
    """After a power cut every partition of a role disk carries the install marker: None if
    so, else the names it has (empty when there is no partition at all)."""
    names = [p.get("name", "") for p in table.get("partitions", [])]
    if not names or not all(is_marked(n) for n in names):
        return names
    return None
