"""Driving the lab: lab/setup, the initramfs of one boot, the QEMU command line, one boot
(with its retry after a QEMU abort and its power cut), and the KVM probe."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import LAB, log
from .console import boot_result, progress_event, read_console

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def parse_setup_output(stdout: str) -> dict[str, str]:
    """The `LAB_*=value` lines lab/setup prints; exits when one the harness needs is missing."""
    env = {}
    for line in stdout.splitlines():
        if "=" in line and line.startswith("LAB_"):
            k, v = line.split("=", 1)
            env[k] = v
    for k in ("LAB_CACHE", "LAB_KERNEL", "LAB_INITRD", "LAB_PAYLOAD"):
        if k not in env:
            sys.exit(f"lab/setup printed no {k}")
    return env


def run_setup() -> dict[str, str]:
    cmd = [str(LAB / "setup")]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"lab/setup failed (exit {proc.returncode})")
    return parse_setup_output(proc.stdout)


def qemu_cmd(kernel: str, bootdir: Path, initrd: Path, disks: list[dict], nics: list[dict], stick: Path | None,
             firmware: str, memory: int, accel: str, readonly: bool, cpu: str | None = None) -> list[str]:
    cmd = ["qemu-system-x86_64", "-machine", "q35", "-m", str(memory), "-smp", "2",
           "-nographic", "-nodefaults", "-serial", "stdio", "-monitor", "none", "-no-reboot",
           "-kernel", kernel, "-initrd", str(initrd),
           "-append", "console=ttyS0,115200 panic=-1 quiet loglevel=3"]
    if accel == "kvm":
        cmd += ["-accel", "kvm", "-cpu", "max"]
    else:
        cmd += ["-accel", "tcg,thread=multi"]
        cpu = cpu or os.environ.get("TAPPAAS_VM_CPU")
        if cpu:
            cmd += ["-cpu", cpu]  # else QEMU's default, qemu64, as in the qemu-lab profile
    if firmware == "uefi":
        vars_fd = bootdir / "OVMF_VARS.fd"
        shutil.copy(OVMF_VARS, vars_fd)
        cmd += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={vars_fd}"]
    # Fixed PCI slots, as in hardware-profiles/qemu-lab.toml: xHCI 02.0, NICs from 03.0, then
    # the disks (so interface names enp0s3, enp0s4 and the by-path links stay put).
    slot = 3
    for i, nic in enumerate(nics):
        nd = nic.get("name", f"n{i}")
        cmd += ["-netdev", f"user,id={nd},restrict=on",
                "-device", f"virtio-net-pci,netdev={nd},mac={nic['mac']},addr={slot:02x}.0"]
        slot += 1
    for i, d in enumerate(disks):
        ro = ",readonly=on" if readonly else ""
        cmd += ["-drive", f"file={d['_img']},if=none,id=d{i},format=raw,cache=unsafe{ro}",
                "-device", f"virtio-blk-pci,drive=d{i},serial={d['serial']},addr={slot:02x}.0"]
        slot += 1
    if stick is not None:
        cmd += ["-device", "qemu-xhci,id=xhci,addr=02.0",
                "-drive", f"file={stick},if=none,id=stick,format=raw,readonly=on",
                "-device", "usb-storage,bus=xhci.0,drive=stick,serial=stick0,removable=on"]
    return cmd


def guest_env_file(env: dict[str, str]) -> str:
    """/lab/env, sourced by the guest's /init: quoted for sh, whatever the values hold."""
    return "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in env.items())


class Lab:
    def __init__(self, env: dict[str, str], args: argparse.Namespace):
        self.env = env
        self.args = args
        self.cache = Path(env["LAB_CACHE"])
        self.kernel = env["LAB_KERNEL"]
        self.initrd = env["LAB_INITRD"]
        self.payload = Path(env["LAB_PAYLOAD"])
        self.accel = self.pick_accel()

    # -- initramfs for one boot: our files as an uncompressed cpio in front of the cached base
    def make_initrd(self, bootdir: Path, script: Path, env: dict[str, str], binaries: list[Path]) -> Path:
        stage = bootdir / "cpio"
        if stage.exists():
            shutil.rmtree(stage)
        (stage / "lab" / "bin").mkdir(parents=True)
        shutil.copy(script, stage / "lab" / "run.sh")
        (stage / "lab" / "env").write_text(guest_env_file(env))
        for b in binaries:
            dest = stage / "lab" / "bin" / b.name
            # Debug builds carry ~100 MB of debug info each, which the guest would hold in RAM:
            # the copy loses it (symbols stay, so a panic still names its functions).
            stripped = subprocess.run(["objcopy", "--strip-debug", str(b), str(dest)],
                                      capture_output=True)
            if stripped.returncode != 0:
                shutil.copy(b, dest)
            os.chmod(dest, 0o755)
        names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=stage,
                              input=("\n".join(names) + "\n").encode(), capture_output=True, check=True)
        out = bootdir / "initrd.img"
        with open(out, "wb") as f:
            data = cpio.stdout
            f.write(data)
            f.write(b"\0" * ((-len(data)) % 4))
            with open(self.initrd, "rb") as base:
                shutil.copyfileobj(base, f)
        shutil.rmtree(stage)  # it is all in initrd.img now
        return out

    def boot(self, name: str, bootdir: Path, script: Path, env: dict[str, str], disks: list[dict],
             nics: list[dict] | None = None, stick: Path | None = None, firmware: str = "bios",
             memory: int = 2048, timeout: int = 600, readonly: bool = False, binaries: list[Path] | None = None,
             accel: str | None = None, cpu: str | None = None, cut_when: str | None = None,
             cut_delay: float = 0.0) -> dict:
        """Boot once; returns {ok, exit, result, seconds, log, error}.

        With `cut_when` (a regex), the VM is killed like a power cut (SIGKILL to QEMU, no
        shutdown, no flush of the guest's caches) `cut_delay` seconds after a progress line on
        the console matches it; the result then has `cut` (seconds into the boot) and `cut_line`.

        QEMU itself sometimes aborts under TCG (an assertion in its MSI-X emulation, seen while
        the guest kernel set up virtio under heavy host load). That is not an outcome of the
        test: when QEMU died on its own before the guest reached our /init (nothing of ours
        ran, no disk was written), or the boot was read-only, the boot is run once more. The
        first attempt's console log is kept as console-qemu-abort.log.
        """
        kw = dict(nics=nics, stick=stick, firmware=firmware, memory=memory, timeout=timeout,
                  readonly=readonly, binaries=binaries, accel=accel, cpu=cpu, cut_when=cut_when,
                  cut_delay=cut_delay)
        res = self._boot_once(name, bootdir, script, env, disks, **kw)
        if res.get("qemu_aborted") and (readonly or not res.get("guest_started")):
            log(f"{name}: QEMU aborted ({res['qemu_aborted']}) before the guest ran anything; booting again")
            shutil.copy(res["log"], bootdir / "console-qemu-abort.log")
            res = self._boot_once(name, bootdir, script, env, disks, **kw)
            res["retried_after_qemu_abort"] = True
        return res

    def _boot_once(self, name: str, bootdir: Path, script: Path, env: dict[str, str], disks: list[dict],
                   nics: list[dict] | None, stick: Path | None, firmware: str, memory: int, timeout: int,
                   readonly: bool, binaries: list[Path] | None, accel: str | None, cpu: str | None,
                   cut_when: str | None, cut_delay: float) -> dict:
        bootdir.mkdir(parents=True, exist_ok=True)
        initrd = self.make_initrd(bootdir, script, env, binaries or [])
        accel = accel or self.accel
        cmd = qemu_cmd(self.kernel, bootdir, initrd, disks, nics or [], stick, firmware, memory, accel, readonly, cpu)
        (bootdir / "qemu.cmd").write_text(" ".join(cmd) + "\n")
        logf = bootdir / "console.log"
        t0 = time.monotonic()
        timed_out = False
        cut_at: float | None = None
        cut_line: str | None = None
        with open(logf, "wb") as out:
            # `timeout` as well, so a harness that dies does not leave a guest running. Its own
            # session, so that a cut kills QEMU together with `timeout`.
            proc = subprocess.Popen(["timeout", "--kill-after=10", str(timeout + 5)] + cmd,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                if cut_when is None:
                    proc.wait(timeout=timeout)
                else:
                    cut_line = self.wait_for_progress(proc, logf, re.compile(cut_when), t0 + timeout)
                    if cut_line is not None:
                        time.sleep(cut_delay)
                        if proc.poll() is None:
                            os.killpg(proc.pid, signal.SIGKILL)
                            cut_at = time.monotonic() - t0
                        proc.wait()
                    else:
                        proc.wait(timeout=max(1.0, t0 + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        secs = time.monotonic() - t0
        return {"seconds": secs, "log": str(logf),
                **boot_result(read_console(logf), name, timed_out=timed_out, timeout=timeout, cut_when=cut_when,
                              cut_at=cut_at, cut_line=cut_line, qemu_rc=proc.returncode)}

    @staticmethod
    def wait_for_progress(proc: subprocess.Popen, logf: Path, when: re.Pattern, deadline: float) -> str | None:
        """Follows the console log until a progress line matches `when`; None if the VM ends or
        the deadline passes first."""
        seen = 0
        pending = ""
        while time.monotonic() < deadline:
            with open(logf, "rb") as f:
                f.seek(seen)
                chunk = f.read()
            seen += len(chunk)
            pending += chunk.decode("utf-8", "replace").replace("\r", "")
            *lines, pending = pending.split("\n")
            for line in lines:
                event = progress_event(line, when)
                if event is not None:
                    return event
            if proc.poll() is not None:
                return None
            time.sleep(0.1)
        return None

    # -- KVM only if a real boot under it works; remembered per host kernel + qemu + guest kernel
    def pick_accel(self) -> str:
        want = self.args.accel
        if want in ("tcg", "kvm"):
            return want
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "tcg"
        qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        key = hashlib.sha256(f"{os.uname().release}|{qv}|{self.env.get('LAB_KV')}".encode()).hexdigest()[:16]
        memo = self.cache / f"accel-{key}"
        if memo.exists():
            return memo.read_text().strip()
        log("probing KVM with a real boot (once per host kernel, qemu and guest kernel)")
        probe = self.cache / "accel-probe"
        script = probe / "probe.sh"
        probe.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/bin/sh\necho '{\"ok\": true}' >\"$LAB_RESULT\"\n")
        r = self.boot("kvm-probe", probe, script, {"LAB_STICK": "0"}, [], timeout=30, accel="kvm")
        accel = "kvm" if r["ok"] and r["exit"] == 0 else "tcg"
        log(f"KVM probe: {'works' if accel == 'kvm' else 'failed'} ({r['seconds']:.0f} s): using {accel}")
        memo.write_text(accel + "\n")
        return accel
