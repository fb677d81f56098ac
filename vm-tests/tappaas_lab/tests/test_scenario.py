"""The scenario loader: every scenario and selftest file in the repo, and broken ones."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from tappaas_lab.common import HERE, SCENARIOS, SELFTEST_D
from tappaas_lab.scenario import (ScenarioError, binary_path, deep_merge, load_scenario, parse_size, resolve,
                                  scenario_paths)

GOOD = """
name = "t"
guest_script = "guest/install.sh"
[[vm]]
[[vm.disk]]
serial = "boot0"
size = "1G"
"""


class RepoFiles(unittest.TestCase):
    def files(self) -> list[Path]:
        files = sorted(SCENARIOS.glob("*.toml")) + sorted(SELFTEST_D.glob("*.toml"))
        self.assertGreaterEqual(len(files), 10)
        return files

    def test_every_scenario_and_selftest_file_loads(self):
        for p in self.files():
            with self.subTest(p.name):
                sc = load_scenario(p)
                self.assertEqual(sc["name"], p.stem)
                self.assertEqual(sc["_path"], str(p))
                self.assertTrue(all(vm["name"] for vm in sc["vm"]))
                for vm in sc["vm"]:
                    for d in vm.get("disk", []):
                        parse_size(d["size"])

    def test_what_they_name_exists(self):
        for p in self.files():
            sc = load_scenario(p)
            with self.subTest(p.name):
                self.assertTrue(resolve(sc, sc["guest_script"]).is_file(), sc["guest_script"])
                if sc.get("site"):
                    self.assertTrue(resolve(sc, sc["site"]).is_file(), sc["site"])

    def test_selftest_variants_extend_smoke_zfs(self):
        base = load_scenario(SCENARIOS / "smoke-zfs.toml")
        for p in sorted(SELFTEST_D.glob("*.toml")):
            sc = load_scenario(p)
            self.assertEqual(sc["vm"], base["vm"])  # arrays come from the base
            self.assertIn("LAB_SABOTAGE", sc["guest_env"])
            self.assertTrue(sc["selftest"]["must_fail_with"])


class Broken(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, text: str, name: str = "s.toml") -> Path:
        p = self.dir / name
        p.write_text(text)
        return p

    def error(self, text: str) -> str:
        p = self.write(text)
        with self.assertRaises(ScenarioError) as e:
            load_scenario(p)
        msg = str(e.exception)
        self.assertTrue(msg.startswith(f"{p}: "), msg)
        return msg[len(f"{p}: "):]

    def test_good_one_loads(self):
        sc = load_scenario(self.write(GOOD))
        self.assertEqual(sc["vm"][0]["name"], "vm")

    def test_syntax_error_says_where(self):
        self.assertIn("(at line 2, column", self.error('name = "t"\nvm = [1,,]\n'))

    def test_missing_file(self):
        with self.assertRaises(ScenarioError) as e:
            load_scenario(self.dir / "nope.toml")
        self.assertEqual(str(e.exception), f"{self.dir / 'nope.toml'}: No such file or directory")

    def test_unknown_keys_at_every_level(self):
        self.assertEqual(self.error("tiemout = 3\n" + GOOD), "unknown key(s) ['tiemout'] in top level")
        self.assertEqual(self.error(GOOD + "memroy = 1\n"), "unknown key(s) ['memroy'] in vm.disk")
        self.assertEqual(
            self.error(GOOD + '[[vm.expect.disk]]\nserial = "boot0"\npartitions = [{ size_mb = 1 }]\n'),
            "unknown key(s) ['size_mb'] in vm.expect.disk.partitions")
        self.assertEqual(self.error(GOOD + '[[vm.expect.pool]]\nname = "p"\nvdevs = [{ kind = "mirror" }]\n'),
                         "unknown key(s) ['kind'] in vm.expect.pool.vdevs")
        self.assertEqual(self.error(GOOD + '[[vm.cut]]\nwhen = "x"\nexpect_marker = true\n'),
                         "unknown key(s) ['expect_marker'] in vm.cut")

    def test_shapes(self):
        self.assertEqual(self.error('guest_script = "x"\n'), "no [[vm]]")
        self.assertEqual(self.error('guest_script = "x"\n[vm]\nname = "a"\n'), "vm must be [[vm]] (an array of tables)")
        self.assertEqual(self.error('guest_script = "x"\nvm = [1]\n'), "vm must be a table")
        self.assertEqual(self.error('guest_script = "x"\n[[vm]]\nexpect = 3\n'), "vm.expect must be a table")

    def test_disks(self):
        self.assertEqual(self.error('[[vm]]\n[[vm.disk]]\nserial = "a"\n'), "every disk needs serial and size")
        self.assertEqual(self.error('[[vm]]\n[[vm.disk]]\nserial = "' + "x" * 21 + '"\nsize = 1\n'),
                         f"serial {'x' * 21!r} longer than 20 characters (virtio-blk limit)")
        self.assertEqual(self.error(GOOD + '[[vm]]\n[[vm.disk]]\nserial = "boot0"\nsize = 1\n'),
                         "duplicate serial 'boot0'")

    def test_extends_merges_tables_and_replaces_arrays(self):
        self.write('timeout = 5\nbinaries = ["a", "b"]\n[guest_env]\nA = "1"\nB = "2"\n' + GOOD.replace('name = "t"\n', '')
                   .replace('guest_script = "guest/install.sh"\n', ''), "base.toml")
        sc = load_scenario(self.write('extends = "base.toml"\nname = "child"\nbinaries = ["c"]\n'
                                      '[guest_env]\nB = "3"\n'))
        self.assertEqual((sc["name"], sc["timeout"], sc["binaries"], sc["guest_env"]),
                         ("child", 5, ["c"], {"A": "1", "B": "3"}))
        self.assertNotIn("extends", sc)

    def test_extends_a_missing_file(self):
        p = self.write('extends = "gone.toml"\n')
        with self.assertRaises(ScenarioError) as e:
            load_scenario(p)
        self.assertEqual(str(e.exception), f"{(self.dir / 'gone.toml').resolve()}: No such file or directory")


class Helpers(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual([parse_size(s) for s in (512, "4G", "256M", "1 KiB", "2tb", "7")],
                         [512, 4 << 30, 256 << 20, 1024, 2 << 40, 7])
        for bad in ("4X", "", "1.5G", "-1"):
            with self.assertRaises(ScenarioError):
                parse_size(bad)

    def test_deep_merge_leaves_its_inputs(self):
        base = {"a": {"x": 1, "y": 2}, "b": [1]}
        self.assertEqual(deep_merge(base, {"a": {"y": 3}, "b": [2]}), {"a": {"x": 1, "y": 3}, "b": [2]})
        self.assertEqual(base, {"a": {"x": 1, "y": 2}, "b": [1]})

    def test_paths(self):
        self.assertEqual(resolve({}, "guest/install.sh"), HERE / "guest/install.sh")
        self.assertEqual(resolve({}, "/abs"), Path("/abs"))
        with mock.patch.dict(os.environ, {"CARGO_TARGET_DIR": "/t"}):
            self.assertEqual(binary_path({}, "../target/debug/x"), Path("/t/debug/x"))
            self.assertEqual(binary_path({}, "bin/x"), HERE / "bin/x")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(binary_path({}, "../target/debug/x"), HERE / "../target/debug/x")

    def test_scenario_arguments(self):
        self.assertEqual(scenario_paths([]), sorted(SCENARIOS.glob("*.toml")))
        self.assertEqual(scenario_paths(["smoke-zfs"]), [(SCENARIOS / "smoke-zfs.toml").resolve()])
        with self.assertRaises(SystemExit) as e:
            scenario_paths(["nosuch"])
        self.assertEqual(str(e.exception.code), f"no scenario nosuch ({SCENARIOS / 'nosuch.toml'})")


if __name__ == "__main__":
    unittest.main()
