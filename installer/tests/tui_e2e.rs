//! End to end: the real binary under tmux with `--simulate`, driven by keys, its screens read
//! back with `tmux capture-pane`. Also measures the TUI's peak resident memory (VmHWM) at the
//! end of a whole simulated install, which must stay under 20 MB.
//!
//! Needs tmux. Without it the test fails when running as root (CI, where `run-tests` installs
//! it) and is skipped, saying so, otherwise.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        Tmux {
            socket: format!("tappaas-e2e-{tag}-{}", std::process::id()),
        }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }
    fn start(&self, w: u16, h: u16, cmd: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            cmd,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }
    /// Types `text` literally.
    fn text(&self, text: &str) {
        assert!(self
            .run(&["send-keys", "-t", "e2e", "-l", text])
            .status
            .success());
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }
    /// Waits until the screen shows `what`; the screen it last saw otherwise.
    fn wait_for(&self, what: &str) -> String {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            if Instant::now() > end {
                panic!("the screen never showed {what:?}; it shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn pane_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pane pid")
    }
    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "e2e"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether tmux can be used; panics as root (CI must run this test), false otherwise.
fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    if nix::unistd::geteuid().is_root() {
        panic!("tmux is missing: install it (`apt-get install -y tmux`; run-tests does)");
    }
    eprintln!("SKIPPED: tmux is not installed and this is not root, so it cannot be installed");
    false
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn simulate_walks_every_screen_under_tmux() {
    if !have_tmux() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    tappaas_installer::probe::embedded_fixture("qemu-lab")
        .expect("fixture")
        .write_to_dir(root.path())
        .expect("fixture to dir");
    // The cable of enp0s4 is out at first: plugging it in on the network screen must make
    // it the WAN port.
    let nic = root.path().join("sys/class/net/enp0s4");
    std::fs::write(nic.join("carrier"), "0\n").expect("unplug");
    std::fs::write(nic.join("operstate"), "down\n").expect("unplug");

    let bin = env!("CARGO_BIN_EXE_tappaas-installer");
    let t = Tmux::new("walk");
    t.start(
        80,
        24,
        &format!(
            "env TERM=xterm-256color {bin} --simulate qemu-lab --root {}",
            root.path().display()
        ),
    );
    let s = t.wait_for("step 1 of 10: Welcome");
    assert!(
        s.contains("[SIMULATION]") && s.contains("English (US)"),
        "{s}"
    );
    assert!(s.contains('┌'), "box drawing on xterm: {s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("This machine");
    assert!(s.contains("vda") && s.contains("boot0"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("The first machine of a new site");
    t.keys(&["Enter"]);
    let s = t.wait_for("step 4 of 10: Disks");
    assert!(s.contains("BOOT (system)") && s.contains("ERASE"), "{s}");

    // Resizing redraws at the new size.
    t.run(&["resize-window", "-t", "e2e", "-x", "120", "-y", "40"]);
    let s = t.wait_for("step 4 of 10: Disks");
    let start = Instant::now();
    let mut s = s;
    while s.lines().count() < 40 || !s.lines().any(|l| l.chars().count() > 100) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no redraw at 120x40:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
        s = t.screen();
    }
    t.run(&["resize-window", "-t", "e2e", "-x", "80", "-y", "24"]);

    t.keys(&["Enter"]);
    let s = t.wait_for("step 5 of 10: Network");
    assert!(s.contains("enp0s4") && s.contains("no cable"), "{s}");
    std::fs::write(nic.join("carrier"), "1\n").expect("plug in");
    std::fs::write(nic.join("operstate"), "up\n").expect("plug in");
    let s = t.wait_for("plugged into enp0s4");
    let row = s.lines().find(|l| l.contains("enp0s4")).unwrap_or_default();
    assert!(row.contains("WAN") && row.contains("link up"), "{s}");
    t.keys(&["Enter"]);

    t.wait_for("step 6 of 10: Site");
    t.keys(&["Tab"]);
    t.text("centre.example");
    t.keys(&["Tab"]);
    t.text("it@centre.example");
    t.keys(&["Tab", "Tab"]);
    t.text("Centre-Pass-2026");
    t.keys(&["Tab"]);
    t.text("Centre-Pass-2026");
    let s = t.wait_for("The two passwords match");
    assert!(
        !s.contains("Centre-Pass"),
        "the password is never shown: {s}"
    );
    t.keys(&["Enter"]);
    let s = t.wait_for("step 7 of 10: Summary");
    assert!(
        s.contains("TAPPaaS install plan: site tappaas, node tappaas1"),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("Type the host name (tappaas1)");
    t.text("tappaas1");
    t.keys(&["Enter"]);
    let s = t.wait_for("press Enter to continue");
    // "steps: N of N done": every planned step ended.
    let counts = s
        .split("steps: ")
        .nth(1)
        .and_then(|r| r.split(" done").next())
        .map(|c| c.split(" of ").map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(counts.len() == 2 && counts[0] == counts[1], "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("step 10 of 10: Done");
    assert!(s.contains("https://10.0.0.10:8006"), "{s}");

    let hwm = vm_hwm_kib(t.pane_pid());
    eprintln!("peak resident memory of the TUI after a simulated install: {hwm} KiB");
    assert!(hwm < 20 * 1024, "the TUI peaked at {hwm} KiB, over 20 MB");

    t.keys(&["C-c"]);
    t.wait_for("Quit the installer?");
    t.keys(&["y"]);
    let end = Instant::now() + Duration::from_secs(10);
    while t.alive() {
        assert!(Instant::now() < end, "the TUI did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn term_linux_draws_ascii_only() {
    if !have_tmux() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_tappaas-installer");
    let t = Tmux::new("ascii");
    t.start(
        80,
        24,
        &format!("env TERM=linux {bin} --simulate qotom-q20300g9"),
    );
    t.wait_for("step 1 of 10: Welcome");
    t.keys(&["Enter"]);
    let s = t.wait_for("Network ports");
    assert!(s.is_ascii(), "non-ASCII on TERM=linux:\n{s}");
    assert!(s.contains("+----"), "{s}");
    assert!(Path::new(bin).exists());
}
