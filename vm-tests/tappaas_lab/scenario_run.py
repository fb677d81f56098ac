"""One scenario, step by step (vm-tests/README.md, "One scenario, step by step"): images and
their content, a preparation boot, power cuts, the boot under test, the outside checks, the
read-only verification boot, report.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from .checks import check_partitions, check_pools, check_root_files, pools_report
from .common import LAB, log
from .contract import STICK_LABEL
from .disks import content_digest, create_images, marker_missing, prep_spec, sfdisk_json
from .qemu import Lab
from .scenario import ScenarioError, binary_path, resolve


def summarize_boot(r: dict) -> dict:
    return {"seconds": round(r["seconds"], 1), "exit": r["exit"], "error": r["error"], "log": r["log"]}


def run_scenario(lab: Lab, sc: dict, workroot: Path) -> dict:
    name = sc["name"]
    t0 = time.monotonic()
    work = workroot / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    errors: list[str] = []
    report: dict = {"name": name, "work": str(work), "vms": []}

    site = resolve(sc, sc["site"]) if sc.get("site") else None
    if site is not None and not site.is_file():
        raise ScenarioError(f"{name}: site file {site} not found")
    script = resolve(sc, sc["guest_script"])
    if not script.is_file():
        raise ScenarioError(f"{name}: guest script {script} not found")
    binaries = [binary_path(sc, b) for b in sc.get("binaries", [])]
    missing = [str(b) for b in binaries if not b.is_file()]
    if missing and sc.get("skip_without_binaries"):
        return {"name": name, "passed": False, "skipped": f"not built: {', '.join(missing)}",
                "seconds": 0.0, "errors": [], "vms": []}
    if missing:
        raise ScenarioError(f"{name}: binary {', '.join(missing)} not found (build it first)")

    stick = make_stick(work / "stick.iso", lab.payload, site)
    for vm in sc["vm"]:
        run = VmRun(lab, sc, vm, work, stick, script, binaries, site)
        report["vms"].append(run.vrep)
        keep_going = run.run()
        errors += run.errors
        if not keep_going:
            break
    report["errors"] = errors
    report["passed"] = not errors
    report["seconds"] = time.monotonic() - t0
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str))
    if report["passed"] and not lab.args.keep:
        for img in [*work.rglob("*.img"), *work.rglob("*.iso")]:  # disks, initrds, the stick
            img.unlink()
    return report


def make_stick(stick: Path, payload: Path, site: Path | None) -> Path:
    """The boot medium: an ISO9660 image on a virtual USB stick, laid out like the real ISO."""
    graft = [f"payload/={payload}"]
    if site is not None:
        graft.append(f"site.toml={site}")
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", STICK_LABEL, "-R", "-J", "-o", str(stick),
                    "-graft-points"] + graft, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return stick


def guest_env(sc: dict, vm: dict, disks: list[dict], site: Path | None) -> dict[str, str]:
    """What the boot under test's guest script sees (vm-tests/README.md, "The guest side")."""
    roles = " ".join(f"{d.get('role', 'none')}:{d['serial']}" for d in disks)
    genv = {"LAB_SCENARIO": sc["name"], "LAB_VM": vm["name"], "LAB_DISKS": roles,
            "LAB_SITE": "/iso/site.toml" if site else "", "LAB_PAYLOAD": "/iso/payload"}
    genv.update({k: str(v) for k, v in sc.get("guest_env", {}).items()})
    genv.update({k: str(v) for k, v in vm.get("guest_env", {}).items()})
    return genv


def needs_verify_boot(expect: dict) -> bool:
    return bool(expect.get("pool", []) or expect.get("absent_pools", []) or expect.get("root_files")
                or expect.get("root_absent") or expect.get("root_lacks"))


class VmRun:
    """One VM of a scenario; `run()` says whether the scenario's next VM should run."""

    def __init__(self, lab: Lab, sc: dict, vm: dict, work: Path, stick: Path, script: Path,
                 binaries: list[Path], site: Path | None):
        self.lab, self.sc, self.vm = lab, sc, vm
        self.name = sc["name"]
        self.vmname = vm["name"]
        self.vwork = work / self.vmname
        self.vwork.mkdir()
        self.stick, self.script, self.binaries = stick, script, binaries
        self.disks: list[dict] = vm.get("disk", [])
        self.nics: list[dict] = vm.get("nic", [])
        self.genv = guest_env(sc, vm, self.disks, site)
        self.expect: dict = vm.get("expect", {})
        self.vrep: dict = {"name": self.vmname, "boots": {}}
        self.errors: list[str] = []

    def run(self) -> bool:
        # 1. images and their pre-existing content
        prep_pools = create_images(self.disks, self.vwork, self.name)
        if prep_pools and not self.prep_boot(prep_spec(prep_pools)):
            return False
        before = {d["serial"]: content_digest(d["_img"]) for d in self.disks if d.get("bystander")}
        # 2. the boot under test, after its power cuts
        if not self.power_cuts():
            return False  # the boot under test would prove nothing; the report says why
        r = self.boot_under_test()
        # 3. outside checks: partition tables on the images
        self.check_tables()
        # 4. bystanders byte-identical
        after_install = self.check_bystanders(before)
        # 5. verification boot: pools and datasets, read-only
        if needs_verify_boot(self.expect) and r["ok"]:
            self.verify_boot(after_install)
        return True

    def disk(self, serial: str) -> dict:
        return next(x for x in self.disks if x["serial"] == serial)

    def install_boot(self, boot: str, env: dict[str, str], **kw) -> dict:
        vm = self.vm
        return self.lab.boot(boot, self.vwork / f"boot-{boot}", self.script, env, self.disks, nics=self.nics,
                             stick=self.stick, firmware=vm.get("firmware", "uefi"), memory=vm.get("memory", 4096),
                             timeout=self.sc.get("timeout", 900), binaries=self.binaries, cpu=vm.get("cpu"), **kw)

    def prep_boot(self, spec: str) -> bool:
        log(f"{self.name}/{self.vmname}: preparation boot ({spec})")
        r = self.lab.boot("prep", self.vwork / "boot-prep", LAB / "guest" / "prep.sh",
                          {"LAB_PREP_POOLS": spec, "LAB_STICK": "0"}, self.disks,
                          timeout=self.sc.get("prep_timeout", 300))
        self.vrep["boots"]["prep"] = summarize_boot(r)
        if not r["ok"] or r["exit"] != 0:
            self.errors.append(f"{self.vmname}: preparation boot failed: {r['error'] or 'exit %s' % r['exit']} "
                               f"(log {r['log']})")
            return False
        return True

    def power_cuts(self) -> bool:
        """The same boot, killed when the install reaches a point; the next boot gets the same
        disks as they were left. False when a cut failed."""
        cut_failed = False
        for i, cut in enumerate(self.vm.get("cut", []), 1):
            log(f"{self.name}/{self.vmname}: boot {i} to be cut when progress matches {cut['when']!r}")
            c = self.install_boot(f"cut{i}", {**self.genv, "LAB_ECHO_PROGRESS": "1"}, cut_when=cut["when"],
                                  cut_delay=float(cut.get("delay", 0)))
            self.vrep["boots"][f"cut{i}"] = {**summarize_boot(c), "cut": c.get("cut"), "cut_line": c.get("cut_line")}
            if c.get("cut") is None:
                self.errors.append(f"{self.vmname}: cut {i} never happened: no progress line matched {cut['when']!r} "
                                   f"before the boot ended ({c['error'] or 'exit %s' % c['exit']}; log {c['log']})")
                return False
            if cut.get("expect_marked"):
                for d in self.disks:
                    if d.get("role") in (None, "none", "bystander"):
                        continue
                    names = marker_missing(sfdisk_json(d["_img"]))
                    if names is not None:
                        self.errors.append(f"{self.vmname}: after cut {i}, disk {d['serial']} should carry the "
                                           f"install marker in every partition name, has {names}")
                        cut_failed = True
        return not cut_failed

    def boot_under_test(self) -> dict:
        log(f"{self.name}/{self.vmname}: boot under test ({self.lab.accel}, {self.vm.get('firmware', 'uefi')}, "
            f"{len(self.disks)} disks, {len(self.nics)} NICs)")
        r = self.install_boot("install", self.genv)
        self.vrep["boots"]["install"] = summarize_boot(r)
        self.vrep["guest_result"] = r["result"]
        self.errors += guest_errors(self.vmname, r, self.expect)
        return r

    def check_tables(self) -> None:
        want_disks = {w["serial"]: w for w in self.expect.get("disk", [])}
        self.vrep["partitions"] = {}
        for d in self.disks:
            got = sfdisk_json(d["_img"])
            self.vrep["partitions"][d["serial"]] = got
            if d["serial"] in want_disks:
                self.errors += check_partitions(d["serial"], got, want_disks[d["serial"]])
        unknown = set(want_disks) - {d["serial"] for d in self.disks}
        if unknown:
            raise ScenarioError(f"{self.name}: expectations for unknown disks {sorted(unknown)}")

    def check_bystanders(self, before: dict[str, str]) -> dict[str, str]:
        after_install = {}
        for serial, digest in before.items():
            after = after_install[serial] = content_digest(self.disk(serial)["_img"])
            if after != digest:
                self.errors.append(f"bystander disk {serial}: changed by the run "
                                   f"(content digest {digest[:12]} -> {after[:12]})")
        return after_install

    def verify_boot(self, after_install: dict[str, str]) -> None:
        expect, vmname = self.expect, self.vmname
        log(f"{self.name}/{vmname}: verification boot (read-only)")
        v = self.lab.boot("verify", self.vwork / "boot-verify", LAB / "guest" / "verify.sh", {"LAB_STICK": "0"},
                          self.disks, timeout=self.sc.get("verify_timeout", 300), readonly=True)
        self.vrep["boots"]["verify"] = summarize_boot(v)
        if not v["ok"]:
            self.errors.append(f"{vmname}: verification boot failed: {v['error']} (log {v['log']})")
        else:
            vres = v["result"]
            self.errors += [f"{vmname}: {e}" for e in check_pools(vres, expect.get("pool", []),
                                                                   expect.get("absent_pools", []))]
            self.errors += [f"{vmname}: {e}" for e in check_root_files(vres, expect.get("root_files", {}),
                                                                        expect.get("root_absent", []),
                                                                        expect.get("root_lacks", {}))]
            self.vrep["pools"] = pools_report(vres)
            (self.vwork / "verify.json").write_text(json.dumps(vres, indent=2))
        for serial, digest in after_install.items():
            if content_digest(self.disk(serial)["_img"]) != digest:
                self.errors.append(f"bystander disk {serial}: changed by the verification boot (read-only!)")


def guest_errors(vmname: str, r: dict, expect: dict) -> list[str]:
    """The boot under test against `guest_exit` and `guest_ok`."""
    errors = []
    want_exit = expect.get("guest_exit", 0)
    if not r["ok"]:
        errors.append(f"{vmname}: {r['error']} (log {r['log']})")
    elif r["exit"] != want_exit:
        errors.append(f"{vmname}: guest script exited {r['exit']}, expected {want_exit} (log {r['log']})")
    if r["result"] is not None and expect.get("guest_ok", True) and r["result"].get("ok") is not True:
        errors.append(f"{vmname}: guest result not ok: {json.dumps(r['result'].get('error', r['result']))[:300]}")
    return errors
