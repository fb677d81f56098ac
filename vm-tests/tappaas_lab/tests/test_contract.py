"""What the harness repeats from the Rust side, checked against the Rust side: its source,
its golden plans (installer/tests/snapshots, which `cargo test --test plan_golden` keeps equal
to what the planner makes) and its generated CLI reference (docs/cli.md, drift-tested). A
change on either side that the other does not follow fails here."""

from __future__ import annotations

import json
import re
import tomllib
import unittest

from tappaas_lab import contract
from tappaas_lab.common import HERE, REPO
from tappaas_lab.console import PROGRESS_PREFIX, progress_event
from tappaas_lab.scenario import load_scenario

from .support import fixture

INSTALLER = REPO / "installer"


def rust(path: str) -> str:
    return (INSTALLER / "src" / path).read_text()


def rust_item(source: str, header: str) -> str:
    """The text of one top-level Rust item (rustfmt layout: it ends at the first `}` in column 0)."""
    start = source.index(header)
    return source[start: source.index("\n}\n", start) + 3]


def golden_plans() -> dict[str, dict]:
    out = {}
    for snap in sorted((INSTALLER / "tests" / "snapshots").glob("plan_golden__*-json.snap")):
        out[snap.name] = json.loads(snap.read_text().split("---\n", 2)[2])  # after insta's header
    return out


def lab_plan() -> dict:
    return golden_plans()["plan_golden__qemu-lab-primary-json.snap"]


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


def rust_events() -> dict[str, list[str]]:
    """The progress events `--progress-fd` writes: {event name: its fields, in order}, read
    from `pub enum Event` in installer/src/progress.rs. A flattened `outcome` stands for its
    tag (`"outcome":"done"`), followed by `reason` or `error` for the other outcomes."""
    src = rust("progress.rs")
    enum = rust_item(src, "pub enum Event {")
    attrs = src[:src.index("pub enum Event {")].rsplit("#[derive", 1)[1]
    assert 'tag = "event"' in attrs and 'rename_all = "kebab-case"' in attrs, attrs
    outcome = src[:src.index("pub enum Outcome {")].rsplit("#[derive", 1)[1]
    assert 'tag = "outcome"' in outcome, outcome
    events: dict[str, list[str]] = {}
    current = None
    for line in enum.splitlines():
        m = re.match(r"^    (\w+) \{$", line)
        if m:
            current = kebab(m.group(1))
            events[current] = []
            continue
        f = re.match(r"^        (\w+): ", line)
        if f and current:
            events[current].append(f.group(1))
    return events


def progress_line(event: str, fields: list[str], step: str) -> str:
    """One JSON line as the installer writes it (serde_json, compact, fields in declaration order)."""
    values = {"step": step, "node": "tappaas1", "steps": [step], "index": 1, "total": 100, "done": 50,
              "description": "d", "unit": "files", "level": "info", "message": "m", "duration_ms": 1,
              "outcome": "done"}
    line = {"v": 1, "t_ms": 0, "event": event}
    line.update({f: values[f] for f in fields})
    return json.dumps(line, separators=(",", ":"))


class InstallMarker(unittest.TestCase):
    def test_separator_is_the_planners(self):
        m = re.search(r"pub const MARKER_SEPARATOR: char = '(.)';", rust("plan/holdings.rs"))
        self.assertIsNotNone(m, "MARKER_SEPARATOR not found in installer/src/plan/holdings.rs")
        self.assertEqual(contract.MARKER_SEPARATOR, m.group(1))

    def test_prefix_is_what_the_planner_recognises(self):
        body = rust_item(rust("plan/holdings.rs"), "pub fn interrupted_install(")
        prefixes = re.findall(r'starts_with\("([^"]+)"\)', body)
        self.assertEqual(len(prefixes), 1, body)
        self.assertTrue(contract.MARKED_RE.pattern.startswith("^" + prefixes[0]), contract.MARKED_RE.pattern)

    def test_every_planned_name_marked_matches_and_unmarked_does_not(self):
        plans = golden_plans()
        self.assertGreaterEqual(len(plans), 6)
        for snap, plan in plans.items():
            marker = plan["install_marker"]
            self.assertRegex(marker, rf"^[0-9a-f]{{{contract.MARKER_HEX_DIGITS}}}$", snap)
            labels = [p["label"] for d in plan["disks"] for p in d["partitions"]]
            self.assertTrue(labels, snap)
            for label in labels:
                self.assertTrue(contract.is_marked(label + contract.MARKER_SEPARATOR + marker), (snap, label))
                self.assertFalse(contract.is_marked(label), (snap, label))
                self.assertFalse(contract.is_marked(label + contract.MARKER_SEPARATOR + marker[:-1]), label)
                self.assertFalse(contract.is_marked(label + "-" + marker), label)

    def test_the_lab_plan_is_the_one_the_scenarios_expect(self):
        plan = lab_plan()
        planned = {d["disk"]["serial"]: [p["label"] for p in d["partitions"]] for d in plan["disks"]}
        for name in ("install-one-node", "power-cut"):
            exp = load_scenario(HERE / "scenarios" / f"{name}.toml")["vm"][0]["expect"]
            for d in exp["disk"]:
                if d["serial"] in planned:
                    self.assertEqual([p["name"] for p in d["partitions"]], planned[d["serial"]], (name, d["serial"]))


class StickLabel(unittest.TestCase):
    def test_is_the_live_label_of_the_qemu_lab_machine(self):
        with open(REPO / "hardware-profiles" / "fixtures" / "qemu-lab.machine.toml", "rb") as f:
            machine = tomllib.load(f)
        self.assertEqual(contract.STICK_LABEL, machine["live"]["label"])


class Progress(unittest.TestCase):
    def test_the_parsed_events_are_what_the_installer_wrote_in_the_lab(self):
        events = rust_events()
        self.assertEqual(set(events), {"started", "step-started", "step-progress", "log", "step-finished", "finished"})
        captured = [line[line.index(PROGRESS_PREFIX) + len(PROGRESS_PREFIX):]
                    for line in fixture("console-cut.log").replace("\r", "").splitlines() if PROGRESS_PREFIX in line]
        self.assertTrue(captured)
        for text in captured:
            got = json.loads(text)
            keys = [k for k in list(got)[3:] if k not in ("reason", "error")]
            self.assertEqual(keys, events[got["event"]], text)

    def test_every_cut_matches_an_event_of_the_lab_plan(self):
        events = rust_events()
        steps = [s["id"] for s in lab_plan()["steps"]]
        lines = [progress_line(e, f, s) for e, f in events.items() for s in steps]
        cuts = [(p.name, c["when"]) for p in sorted((HERE / "scenarios").glob("*.toml"))
                for vm in load_scenario(p)["vm"] for c in vm.get("cut", [])]
        self.assertGreaterEqual(len(cuts), 2)
        for name, when in cuts:
            hits = [ln for ln in lines if progress_event(PROGRESS_PREFIX + ln, re.compile(when))]
            self.assertTrue(hits, f"{name}: cut {when!r} matches no progress line of the qemu-lab plan")

    def test_guest_scripts_name_real_events(self):
        events = rust_events()
        for script in sorted((HERE / "guest").glob("*.sh")):
            for name in re.findall(r'"event":"([^"]+)"', script.read_text()):
                self.assertIn(name, events, f"{script.name}: event {name}")

    def test_install_sh_finds_the_installers_node_line(self):
        self.assertIn('"^installing node $LAB_EXPECT_NODE:"', (HERE / "guest" / "install.sh").read_text())
        self.assertIn('"installing node {node}: ', rust("progress.rs"))


class InstallerInterface(unittest.TestCase):
    def test_guest_scripts_use_flags_the_install_command_has(self):
        cli = (REPO / "docs" / "cli.md").read_text()
        install = cli[cli.index("Usage: install "):]
        for name in ("install.sh", "install-refused.sh"):
            text = (HERE / "guest" / name).read_text()
            command = re.search(r"^tappaas-installer install (?:.*\\\n)*.*$", text, re.M).group(0)
            flags = set(re.findall(r"(--[a-z][a-z-]+)", command))
            self.assertTrue({"--site", "--payload", "--yes"} <= flags, (name, flags))
            for flag in flags:
                self.assertRegex(install, rf"\n\s+(-\w, )?{flag}\b", f"{name}: {flag}")

    def test_the_paths_verify_sh_reads_are_the_installers(self):
        verify = (HERE / "lab" / "guest" / "verify.sh").read_text()
        listed = re.search(r"for f in ([^;]+); do", verify).group(1).split()
        listed = [p for p in listed if p != "\\"]
        read = set(listed) | {"/usr/bin/tappaas-bootstrap", "/etc/tappaas/tls/api.key"}
        self.assertIn("agent=/run/lab/altroot/usr/bin/tappaas-bootstrap", verify)
        self.assertIn("/run/lab/altroot/etc/tappaas/tls/api.key", verify)
        sources = "\n".join(p.read_text() for p in (INSTALLER / "src").rglob("*.rs"))
        for path in sorted(read):
            if path.startswith("/var/lib/tappaas-lab/"):
                continue  # the lab's own test package writes it
            self.assertIn(f'"{path}"', sources, f"verify.sh reads {path}; the installer names no such path")
        self.assertIn("/ROOT/pve-1$", verify)
        self.assertIn('"ROOT/pve-1"', rust("plan/layout.rs"))
        # what the scenarios expect of the installed root must be among what verify.sh reads
        for p in sorted((HERE / "scenarios").glob("*.toml")):
            for vm in load_scenario(p)["vm"]:
                exp = vm.get("expect", {})
                keys = [*exp.get("root_files", {}), *exp.get("root_absent", []), *exp.get("root_lacks", {})]
                for key in keys:
                    if not key.startswith("$ "):
                        self.assertIn(key, listed, f"{p.name}: verify.sh does not read {key}")


if __name__ == "__main__":
    unittest.main()
