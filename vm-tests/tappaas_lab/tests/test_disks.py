"""Disk images: `sfdisk --json`, the install marker on a table, content digests, contents."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path

from tappaas_lab.common import MIB
from tappaas_lab.disks import (content_digest, create_images, marker_missing, parse_pool_content,
                               parse_sfdisk_json, prep_spec, sfdisk_json)
from tappaas_lab.scenario import ScenarioError

from .support import fixture


class Sfdisk(unittest.TestCase):
    def test_gpt_in_mib(self):
        t = parse_sfdisk_json(fixture("sfdisk-boot0.json"))
        self.assertEqual(t["label"], "gpt")
        self.assertEqual([(p["start_mib"], p["size_mib"], p["name"]) for p in t["partitions"]], [
            (0.0166015625, 0.9833984375, "tappaas-bios-0"), (1.0, 512.0, "tappaas-esp-0"),
            (513.0, 32254.0, "tappaas-rpool-0")])
        self.assertEqual(t["partitions"][0]["type"], "21686148-6449-6E6F-744E-656564454649")
        self.assertEqual(t["partitions"][0]["uuid"], "B6019958-D6B3-DC48-9B35-03F0CC31C2B4")

    def test_dos_has_no_names(self):
        t = parse_sfdisk_json(fixture("sfdisk-dos.json"))
        self.assertEqual(t, {"label": "dos", "partitions": [
            {"start_mib": 1.0, "size_mib": 255.0, "type": "83", "name": "", "uuid": None}]})

    @unittest.skipUnless(shutil.which("sfdisk"), "needs sfdisk (util-linux)")
    def test_no_table_is_none(self):
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "blank.img"
            with open(img, "wb") as f:
                f.truncate(16 * MIB)
            self.assertEqual(sfdisk_json(img), {"label": "none", "partitions": []})

    def test_marker_on_every_partition(self):
        self.assertIsNone(marker_missing(parse_sfdisk_json(fixture("sfdisk-tank1a-marked.json"))))
        self.assertEqual(marker_missing(parse_sfdisk_json(fixture("sfdisk-boot0.json"))),
                         ["tappaas-bios-0", "tappaas-esp-0", "tappaas-rpool-0"])
        self.assertEqual(marker_missing({"label": "none", "partitions": []}), [])
        half = {"partitions": [{"name": "tappaas-esp-0~0123abcd"}, {"name": "tappaas-rpool-0"}]}
        self.assertEqual(marker_missing(half), ["tappaas-esp-0~0123abcd", "tappaas-rpool-0"])


class Digest(unittest.TestCase):
    def test_holes_equal_zeros_and_a_byte_counts(self):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp) / "a", Path(tmp) / "b"
            with open(a, "wb") as f:
                f.truncate(4 * MIB)
            b.write_bytes(bytes(4 * MIB))
            self.assertEqual(content_digest(a), content_digest(b))
            with open(b, "r+b") as f:
                f.seek(3 * MIB + 7)
                f.write(b"x")
            self.assertNotEqual(content_digest(a), content_digest(b))
            c = Path(tmp) / "c"
            with open(c, "wb") as f:
                f.truncate(5 * MIB)
            self.assertNotEqual(content_digest(a), content_digest(c))  # the size counts too


class Contents(unittest.TestCase):
    def test_pool_contents(self):
        self.assertEqual(parse_pool_content("zpool:oldtank", "s"), ("oldtank", "exported", "disk"))
        self.assertEqual(parse_pool_content("zpool-s34:oldrpool:active", "s"), ("oldrpool", "active", "s34"))
        for bad in ("zpool:old:gone", "zpool::", "zpool:a:active:x"):
            with self.assertRaises(ScenarioError) as e:
                parse_pool_content(bad, "s")
            self.assertIn(f"s: {bad!r}: expected", str(e.exception))

    def test_images_and_the_preparation_boots_pools(self):
        with tempfile.TemporaryDirectory() as tmp:
            disks = [{"serial": "a", "size": "8M", "content": "zpool:old"},
                     {"serial": "b", "size": "8M", "content": "zpool:old"},
                     {"serial": "c", "size": "16M", "content": "random"},
                     {"serial": "d", "size": "8M"}]
            pools = create_images(disks, Path(tmp), "s")
            self.assertEqual(pools, {"old": ("exported", "disk", ["a", "b"])})
            self.assertEqual(prep_spec(pools), "old:exported:disk:a,b")
            self.assertEqual(disks[2]["_img"].stat().st_size, 16 * MIB)
            first = content_digest(disks[2]["_img"])
            create_images(disks[2:3], Path(tmp), "s")
            self.assertEqual(content_digest(disks[2]["_img"]), first)  # seeded by the serial
            with self.assertRaises(ScenarioError):
                create_images([{"serial": "e", "size": "1M", "content": "lava"}], Path(tmp), "s")


if __name__ == "__main__":
    unittest.main()
