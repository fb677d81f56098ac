"""The outside checks on output captured from the real tools in the lab."""

from __future__ import annotations

import copy
import unittest

from tappaas_lab.checks import check_partitions, check_pools, check_root_files, parse_zpool_status, pools_report
from tappaas_lab.common import HERE, SELFTEST_D
from tappaas_lab.disks import parse_sfdisk_json
from tappaas_lab.scenario import load_scenario

from .support import ZFS_FIXTURES, fixture, fixture_json


def pool_sections(text: str) -> dict[str, str]:
    """`zpool status -P` of several pools, split into what `zpool status -P POOL` prints."""
    out, name, cur = {}, None, []
    for line in text.splitlines(keepends=True):
        if line.startswith("  pool: "):
            if name:
                out[name] = "".join(cur)
            name, cur = line.split()[1], []
        cur.append(line)
    out[name] = "".join(cur)
    return out


def expect_of(path) -> dict:
    return load_scenario(path)["vm"][0]["expect"]


class ParseZpoolStatus(unittest.TestCase):
    def test_mirror_and_single_disk_from_the_shared_zfs_capture(self):
        pools = pool_sections((ZFS_FIXTURES / "status-P.txt").read_text())
        self.assertEqual(sorted(pools), ["tank1", "tank2"])
        a, b = "/dev/disk/by-id/virtio-tank1a-part1", "/dev/disk/by-id/virtio-tank1b-part1"
        self.assertEqual(parse_zpool_status(pools["tank1"]), {
            "state": "ONLINE",
            "vdevs": [{"type": "mirror", "name": "mirror-0", "state": "ONLINE", "devices": [a, b]}],
            "classes": {}})
        t2 = "/dev/disk/by-id/virtio-tank2a-part1"
        self.assertEqual(parse_zpool_status(pools["tank2"]), {
            "state": "ONLINE",
            "vdevs": [{"type": "disk", "name": t2, "state": "ONLINE", "devices": [t2]}],
            "classes": {}})

    def test_every_pool_of_a_lab_verification_boot(self):
        verify = fixture_json("verify-install-one-node.json")
        trees = {p["name"]: parse_zpool_status(p["status"]) for p in verify["pools"]}
        self.assertEqual(sorted(trees), ["rpool", "tank1", "tank2"])
        self.assertEqual([(v["type"], v["devices"]) for v in trees["rpool"]["vdevs"]],
                         [("disk", ["/dev/disk/by-id/virtio-boot0-part3"])])
        self.assertEqual([v["type"] for v in trees["tank1"]["vdevs"]], ["mirror"])
        self.assertTrue(all(t["state"] == "ONLINE" for t in trees.values()))

    def test_no_config_section(self):
        self.assertEqual(parse_zpool_status("cannot open 'x': no such pool\n"),
                         {"state": None, "vdevs": [], "classes": {}})

    def test_classes_after_the_data_vdevs(self):
        # ZFS's layout of a pool with a log and a cache device (indentation as in the captures).
        text = ("  pool: t\n state: DEGRADED\nconfig:\n\n"
                "\tNAME          STATE     READ WRITE CKSUM\n"
                "\tt             DEGRADED     0     0     0\n"
                "\t  raidz1-0    DEGRADED     0     0     0\n"
                "\t    /dev/a    ONLINE       0     0     0\n"
                "\t    /dev/b    UNAVAIL      0     0     0\n"
                "\tlogs\n"
                "\t  /dev/c      ONLINE       0     0     0\n"
                "\tcache\n"
                "\t  /dev/d      ONLINE       0     0     0\n\nerrors: No known data errors\n")
        tree = parse_zpool_status(text)
        self.assertEqual(tree["state"], "DEGRADED")
        self.assertEqual(tree["vdevs"], [{"type": "raidz1", "name": "raidz1-0", "state": "DEGRADED",
                                          "devices": ["/dev/a", "/dev/b"]}])
        self.assertEqual({k: [v["name"] for v in vs] for k, vs in tree["classes"].items()},
                         {"logs": ["/dev/c"], "cache": ["/dev/d"]})


class CheckPools(unittest.TestCase):
    def test_a_good_install_passes_its_scenario(self):
        verify = fixture_json("verify-install-one-node.json")
        exp = expect_of(HERE / "scenarios" / "install-one-node.toml")
        self.assertEqual(check_pools(verify, exp["pool"], exp["absent_pools"]), [])
        self.assertEqual(check_root_files(verify, exp["root_files"], exp["root_absent"], exp["root_lacks"]), [])
        self.assertEqual(sorted(pools_report(verify)), ["rpool", "tank1", "tank2"])

    def test_the_selftests_sabotage_fails_with_its_reason(self):
        for fx, name in [("verify-old-labels-left.json", "bad-keep-old-labels"),
                         ("verify-tank1-single-disk.json", "bad-single-disk-tank1")]:
            sc = load_scenario(SELFTEST_D / f"{name}.toml")
            exp = sc["vm"][0]["expect"]
            errs = check_pools(fixture_json(fx), exp["pool"], exp["absent_pools"])
            reason = sc["selftest"]["must_fail_with"]
            self.assertTrue(any(reason in e for e in errs), (name, errs))

    def test_old_labels_left_say_so(self):
        errs = check_pools(fixture_json("verify-old-labels-left.json"), [], ["oldrpool", "oldtank"])
        self.assertEqual(errs, ["pool oldrpool: still listed by `zpool import` (old labels left), expected gone"])

    def test_single_disk_instead_of_mirror(self):
        exp = expect_of(HERE / "scenarios" / "smoke-zfs.toml")
        errs = check_pools(fixture_json("verify-tank1-single-disk.json"), exp["pool"], [])
        self.assertEqual(errs, [
            "pool tank1: vdevs [disk: /dev/disk/by-id/virtio-tank1a-part1], expected "
            "[mirror: /dev/disk/by-id/virtio-tank1a-part1, /dev/disk/by-id/virtio-tank1b-part1]"])

    def test_each_mismatch_has_its_words(self):
        verify = fixture_json("verify-install-one-node.json")
        imported = copy.deepcopy(verify)
        want = [{"name": "tank1", "state": "DEGRADED", "properties": {"ashift": 9}},
                {"name": "nopool"},
                {"name": "tank2", "datasets": {"tank2/none": {}, "tank2": {"compression": "gzip"}}}]
        errs = check_pools(imported, want, ["tank2"])
        self.assertEqual(errs[0], "pool tank2: present, expected gone")
        self.assertIn("pool tank1: state ONLINE, expected DEGRADED", errs)
        self.assertIn("pool tank1: property ashift=12, expected 9", errs)
        self.assertTrue(any(e.startswith("pool nopool: not found by the verification boot (import log: ")
                            for e in errs), errs)
        self.assertIn("dataset tank2/none: missing", errs)
        self.assertIn("dataset tank2: compression=lz4, expected gzip", errs)


class CheckPartitions(unittest.TestCase):
    def want(self, serial: str) -> dict:
        exp = expect_of(HERE / "scenarios" / "install-one-node.toml")
        return next(d for d in exp["disk"] if d["serial"] == serial)

    def test_the_planned_layout_passes(self):
        got = parse_sfdisk_json(fixture("sfdisk-boot0.json"))
        self.assertEqual(check_partitions("boot0", got, self.want("boot0")), [])

    def test_a_marked_name_is_not_the_planned_one(self):
        got = parse_sfdisk_json(fixture("sfdisk-tank1a-marked.json"))
        self.assertEqual(check_partitions("tank1a", got, self.want("tank1a")), [
            "disk tank1a partition 1: name 'tappaas-tank1-0~a19d8fc7', expected 'tappaas-tank1-0'"])

    def test_wrong_label_stops_there(self):
        got = parse_sfdisk_json(fixture("sfdisk-dos.json"))
        self.assertEqual(check_partitions("x", got, self.want("boot0")),
                         ["disk x: partition table 'dos', expected 'gpt'"])
        self.assertEqual(check_partitions("x", {"label": "none", "partitions": []}, {"label": "none"}), [])

    def test_count_mismatch_stops_there(self):
        got = parse_sfdisk_json(fixture("sfdisk-tank1a-marked.json"))
        self.assertEqual(check_partitions("tank1a", got, self.want("boot0")),
                         ["disk tank1a: 1 partitions, expected 3"])

    def test_type_start_size_and_min_size(self):
        got = parse_sfdisk_json(fixture("sfdisk-boot0.json"))
        want = {"partitions": [{"type": "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"}, {"start_mib": 2, "size_mib": 511},
                               {"min_size_mib": 40000}]}
        self.assertEqual(check_partitions("boot0", got, want), [
            "disk boot0 partition 1: type 21686148-6449-6E6F-744E-656564454649, expected "
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "disk boot0 partition 2: size_mib 512, expected 511",
            "disk boot0 partition 2: start_mib 1, expected 2",
            "disk boot0 partition 3: size_mib 32254 < 40000"])


class CheckRootFiles(unittest.TestCase):
    verify = {"root_files": {"/etc/hostname": "tappaas1\n", "/etc/tappaas/site.toml": "x = 1\nfingerprint\n"}}

    def test_each_rule(self):
        self.assertEqual(check_root_files(self.verify, {"/etc/hostname": "tappaas1"}), [])
        self.assertEqual(check_root_files(self.verify, {"/etc/hostname": ["tappaas2", "tappaas1"]}),
                         ["installed root: /etc/hostname does not contain 'tappaas2'"])
        self.assertEqual(check_root_files(self.verify, {"/etc/hosts": "x"}), [
            "installed root: /etc/hosts is missing (read: ['/etc/hostname', '/etc/tappaas/site.toml'])"])
        self.assertEqual(check_root_files(self.verify, {}, ["/etc/hostname", "/gone"]),
                         ["installed root: /etc/hostname must not be there"])
        self.assertEqual(check_root_files(self.verify, {}, [], {"/etc/tappaas/site.toml": ["KEY", "x = 1"]}),
                         ["installed root: /etc/tappaas/site.toml contains 'x = 1', which must not be there"])
        self.assertEqual(check_root_files(self.verify, {}, [], {"/nope": "KEY"}), [
            "installed root: /nope is missing (read: ['/etc/hostname', '/etc/tappaas/site.toml'])"])
        self.assertEqual(check_root_files({}, {}), [])


if __name__ == "__main__":
    unittest.main()
