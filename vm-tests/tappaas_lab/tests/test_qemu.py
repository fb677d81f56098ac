"""The QEMU command line, the guest's environment and what lab/setup hands over."""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from tappaas_lab import qemu
from tappaas_lab.common import HERE
from tappaas_lab.scenario import load_scenario
from tappaas_lab.scenario_run import guest_env, guest_errors, needs_verify_boot


class Cmd(unittest.TestCase):
    disks = [{"_img": "/w/disk-boot0.img", "serial": "boot0"}, {"_img": "/w/disk-t.img", "serial": "t"}]
    nics = [{"name": "wan", "mac": "52:54:00:00:01:01"}, {"mac": "52:54:00:00:01:02"}]

    def cmd(self, **kw) -> list[str]:
        args = dict(kernel="/k", bootdir=Path("/b"), initrd=Path("/b/initrd.img"), disks=self.disks, nics=self.nics,
                    stick=Path("/w/stick.iso"), firmware="bios", memory=4096, accel="tcg", readonly=False)
        return qemu.qemu_cmd(**{**args, **kw})

    def test_the_qemu_lab_machine(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            cmd = self.cmd()
        self.assertEqual(cmd[:17], ["qemu-system-x86_64", "-machine", "q35", "-m", "4096", "-smp", "2", "-nographic",
                                    "-nodefaults", "-serial", "stdio", "-monitor", "none", "-no-reboot",
                                    "-kernel", "/k", "-initrd"])
        text = " ".join(cmd)
        self.assertIn("-accel tcg,thread=multi -netdev", text)  # no -cpu: QEMU's qemu64
        # NICs from PCI 03.0, then the disks, the stick's xHCI at 02.0
        self.assertIn("virtio-net-pci,netdev=wan,mac=52:54:00:00:01:01,addr=03.0", text)
        self.assertIn("-netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,mac=52:54:00:00:01:02,addr=04.0",
                      text)
        self.assertIn("-drive file=/w/disk-boot0.img,if=none,id=d0,format=raw,cache=unsafe "
                      "-device virtio-blk-pci,drive=d0,serial=boot0,addr=05.0", text)
        self.assertIn("virtio-blk-pci,drive=d1,serial=t,addr=06.0", text)
        self.assertTrue(text.endswith("-device qemu-xhci,id=xhci,addr=02.0 -drive file=/w/stick.iso,if=none,id=stick,"
                                      "format=raw,readonly=on -device usb-storage,bus=xhci.0,drive=stick,"
                                      "serial=stick0,removable=on"), text)
        self.assertNotIn("pflash", text)

    def test_readonly_kvm_cpu_and_uefi(self):
        self.assertIn("cache=unsafe,readonly=on", " ".join(self.cmd(readonly=True, stick=None)))
        self.assertNotIn("xhci", " ".join(self.cmd(stick=None)))
        self.assertIn("-accel kvm -cpu max", " ".join(self.cmd(accel="kvm")))
        with mock.patch.dict(os.environ, {"TAPPAAS_VM_CPU": "max"}):
            self.assertIn("-cpu max", " ".join(self.cmd()))
            self.assertIn("-cpu host", " ".join(self.cmd(cpu="host")))
        with tempfile.TemporaryDirectory() as tmp:
            vars_src = Path(tmp) / "vars.fd"
            vars_src.write_bytes(b"v")
            with mock.patch.object(qemu, "OVMF_VARS", str(vars_src)):
                text = " ".join(self.cmd(firmware="uefi", bootdir=Path(tmp)))
            self.assertIn(f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}", text)
            self.assertIn(f"if=pflash,format=raw,unit=1,file={Path(tmp) / 'OVMF_VARS.fd'}", text)
            self.assertEqual((Path(tmp) / "OVMF_VARS.fd").read_bytes(), b"v")


class GuestSide(unittest.TestCase):
    def test_env_file_is_quoted_for_sh(self):
        env = {"A": "plain", "B": "it's $HOME; `x`", "C": 3}
        text = qemu.guest_env_file(env)
        out = subprocess.run(["sh", "-c", f'{text}\nprintf "%s|%s|%s" "$A" "$B" "$C"'], capture_output=True,
                             text=True, check=True).stdout
        self.assertEqual(out, "plain|it's $HOME; `x`|3")

    def test_guest_env_of_a_scenario(self):
        sc = load_scenario(HERE / "scenarios" / "install-three-nodes.toml")
        vm = sc["vm"][1]
        env = guest_env(sc, vm, vm.get("disk", []), Path("/site.toml"))
        self.assertEqual((env["LAB_SCENARIO"], env["LAB_VM"], env["LAB_SITE"], env["LAB_PAYLOAD"]),
                         ("install-three-nodes", vm["name"], "/iso/site.toml", "/iso/payload"))
        self.assertEqual(env["LAB_EXPECT_NODE"], vm["guest_env"]["LAB_EXPECT_NODE"])
        sc = {"name": "s", "guest_env": {"X": 1, "Y": "a"}}
        env = guest_env(sc, {"name": "v", "guest_env": {"Y": "b"}}, [{"serial": "d1"}, {"serial": "d2", "role": "boot"}],
                        None)
        self.assertEqual(env, {"LAB_SCENARIO": "s", "LAB_VM": "v", "LAB_DISKS": "none:d1 boot:d2", "LAB_SITE": "",
                               "LAB_PAYLOAD": "/iso/payload", "X": "1", "Y": "b"})

    def test_verification_boot_only_when_something_needs_it(self):
        self.assertFalse(needs_verify_boot({"guest_exit": 1, "disk": [{}]}))
        for k in ("pool", "absent_pools", "root_files", "root_absent", "root_lacks"):
            self.assertTrue(needs_verify_boot({k: ["x"]}), k)

    def test_guest_errors(self):
        ok = {"ok": True, "exit": 0, "result": {"ok": True}, "log": "/l", "error": None}
        self.assertEqual(guest_errors("v", ok, {}), [])
        self.assertEqual(guest_errors("v", {**ok, "exit": 1}, {}),
                         ["v: guest script exited 1, expected 0 (log /l)"])
        self.assertEqual(guest_errors("v", {**ok, "exit": 1, "result": {"ok": False}}, {"guest_exit": 1,
                                                                                        "guest_ok": False}), [])
        self.assertEqual(guest_errors("v", {**ok, "result": {"ok": False, "error": "bad"}}, {}),
                         ['v: guest result not ok: "bad"'])
        self.assertEqual(guest_errors("v", {**ok, "ok": False, "error": "install: timed out after 9 s",
                                            "result": None}, {}),
                         ["v: install: timed out after 9 s (log /l)"])


class Setup(unittest.TestCase):
    def test_output(self):
        out = "[setup 2s] noise\nLAB_CACHE=/c\nLAB_KERNEL=/k\nLAB_INITRD=/i\nLAB_PAYLOAD=/p\nLAB_KV=6.1=x\n"
        self.assertEqual(qemu.parse_setup_output(out), {"LAB_CACHE": "/c", "LAB_KERNEL": "/k", "LAB_INITRD": "/i",
                                                        "LAB_PAYLOAD": "/p", "LAB_KV": "6.1=x"})
        with self.assertRaises(SystemExit) as e:
            qemu.parse_setup_output("LAB_CACHE=/c\n")
        self.assertEqual(e.exception.code, "lab/setup printed no LAB_KERNEL")


if __name__ == "__main__":
    unittest.main()
