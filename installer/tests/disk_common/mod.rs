//! Shared by the `disk_*` and `engine_*` integration tests: real plans for the qemu-lab machine
//! (optionally with 4Kn disks), the external tools that read tables back, and loop devices that
//! detach themselves even when a test fails.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use tappaas_installer::plan::{self, DiskPlan, DiskRoleKind, Plan};
use tappaas_installer::profile::hints_for;
use tappaas_installer::synth::MachineSpec;
use tappaas_installer::{probe, profile, synth};

const SITE: &str = r#"version = 1

[site]
name = "lab"
domain = "example.org"
admin-email = "admin@example.org"

[credentials]
root-password-hash = "$6$tappaasgolden$y6afYXh.S4y3mWbFHnUP/cnYL6Ln1fUxxXBsNJEkQ0K3GVV9HRFBJ/3hQXAPNR71SjLA3rdt6yCIWVJ5.fqVe/"
ssh-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQBunsP8seThIskcM6k1gN2dldxunpTlZ4RWcYAZuFW lab@test"]

[[node]]
name = "tappaas1"
role = "primary"
profile = "qemu-lab"

[node.tank1]

[node.tank2]
"#;

/// The plan for node tappaas1 of a one-node lab site on the qemu-lab machine, its four virtio
/// disks given `sector`-byte logical (and physical) sectors.
pub fn lab_plan(sector: u32) -> Plan {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware-profiles/fixtures/qemu-lab.machine.toml");
    let mut spec = MachineSpec::load(&spec_path).expect("qemu-lab fixture spec");
    for d in spec.disks.iter_mut().filter(|d| d.role.is_some()) {
        d.logical_block = sector;
        d.physical_block = sector;
    }
    let root = tempfile::tempdir().expect("tempdir");
    synth::write_root(&spec, root.path()).expect("synthesise qemu-lab");
    let inv = probe::probe_root(root.path()).expect("probe");
    let opts = tappaas_site::ParseOptions {
        known_profiles: profile::ids().iter().map(|s| s.to_string()).collect(),
    };
    let site = tappaas_site::parse(SITE, &opts)
        .unwrap_or_else(|d| panic!("{}", tappaas_site::render_all(&d, "lab.toml")));
    let choice = plan::select_node(&inv, &site, Some("tappaas1"), None).expect("node");
    plan::plan(&inv, &site, &choice, &hints_for(Some("qemu-lab")))
        .unwrap_or_else(|e| panic!("{}", e.render("lab.toml")))
}

/// The plan's disk with `role` (the first one).
pub fn disk(plan: &Plan, role: DiskRoleKind) -> DiskPlan {
    plan.disks
        .iter()
        .find(|d| d.role == role)
        .cloned()
        .expect("planned disk")
}

/// The same disk plan aimed at `dev` (an image file or a loop device) instead of its by-id
/// path; partition nodes become `<dev>pN` as the kernel names them on loop devices.
pub fn retarget(d: &DiskPlan, dev: &Path) -> DiskPlan {
    let mut d = d.clone();
    d.disk.by_id = dev.display().to_string();
    for p in &mut d.partitions {
        p.by_id = format!("{}p{}", dev.display(), p.number);
    }
    d
}

/// Runs a tool; returns (exit code, stdout, stderr).
pub fn tool(argv: &[&str]) -> (i32, String, String) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a tool that must succeed; returns stdout.
pub fn tool_ok(argv: &[&str]) -> String {
    let (code, out, err) = tool(argv);
    assert_eq!(code, 0, "{argv:?} failed:\n{out}\n{err}");
    out
}

/// Runs a tool that must succeed without a word on stderr (the tools warn there about corrupt
/// backup tables and then carry on with exit code 0); returns stdout.
pub fn tool_quiet(argv: &[&str]) -> String {
    let (code, out, err) = tool(argv);
    assert!(
        code == 0 && err.trim().is_empty(),
        "{argv:?}: exit {code}:\n{out}\n{err}"
    );
    out
}

/// Checks `sgdisk -v` finds no problem with the table on `dev`, and has no caution or warning
/// either (it regenerates a missing backup header in memory and still says "No problems").
pub fn assert_sgdisk_clean(dev: &Path) {
    let (code, out, err) = tool(&["sgdisk", "-v", &dev.display().to_string()]);
    let all = format!("{out}{err}");
    let lower = all.to_lowercase();
    assert!(
        code == 0
            && all.contains("No problems found")
            && ["caution", "warning", "error", "corrupt", "invalid", "mismatch"]
                .iter()
                .all(|w| !lower.contains(w)),
        "sgdisk -v {}:\n{all}",
        dev.display()
    );
}

/// Checks `sfdisk --json` sees exactly the planned partitions: numbers, starts, sizes (in
/// sectors of the planned size), type GUIDs and names.
pub fn assert_sfdisk_matches(dev: &Path, d: &DiskPlan, extra: &[&str]) {
    let devs = dev.display().to_string();
    let mut argv = vec!["sfdisk", "--json"];
    argv.extend_from_slice(extra);
    argv.push(&devs);
    let json: serde_json::Value = serde_json::from_str(&tool_quiet(&argv)).expect("sfdisk json");
    let t = &json["partitiontable"];
    assert_eq!(t["label"], "gpt", "{json}");
    if let Some(ss) = t.get("sectorsize") {
        assert_eq!(ss.as_u64(), Some(u64::from(d.disk.logical_sector_size)));
    }
    let parts = t["partitions"].as_array().expect("partitions");
    let got: Vec<(u32, u64, u64, String, String)> = parts
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let num = node.strip_prefix(&devs).unwrap().trim_start_matches('p');
            (
                num.parse().unwrap(),
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["type"].as_str().unwrap().to_ascii_lowercase(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(u32, u64, u64, String, String)> = d
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.start_lba,
                p.end_lba - p.start_lba + 1,
                p.type_guid.clone(),
                p.label.clone(),
            )
        })
        .collect();
    assert_eq!(got, want, "sfdisk --json {devs}");
}

/// Checks `blkid -p` sees a GPT on `dev` and `partx --show` lists the planned partitions.
pub fn assert_blkid_and_partx(dev: &Path, d: &DiskPlan) {
    let devs = dev.display().to_string();
    let out = tool_quiet(&["blkid", "-p", "-o", "export", &devs]);
    assert!(out.contains("PTTYPE=gpt"), "blkid -p {devs}:\n{out}");
    let out = tool_quiet(&[
        "partx",
        "--show",
        "-g",
        "-o",
        "NR,START,END,TYPE,NAME",
        &devs,
    ]);
    let got: Vec<Vec<String>> = out
        .lines()
        .map(|l| l.split_whitespace().map(str::to_ascii_lowercase).collect())
        .collect();
    // partx counts in 512-byte sectors whatever the disk's sector size.
    assert_eq!(got, want_rows(d, 512), "partx --show {devs}:\n{out}");
}

/// Checks `fdisk -l` with an explicit sector size (for image files of 4Kn disks, which sfdisk
/// 2.38 and sgdisk cannot be told about) lists exactly the planned partitions.
pub fn assert_fdisk_matches(img: &Path, d: &DiskPlan) {
    let imgs = img.display().to_string();
    let ss = d.disk.logical_sector_size.to_string();
    let out = tool_quiet(&[
        "fdisk",
        "-b",
        &ss,
        "-l",
        "-o",
        "Device,Start,End,Type-UUID,Name",
        &imgs,
    ]);
    assert!(out.contains("Disklabel type: gpt"), "{out}");
    assert!(
        !out.to_lowercase().contains("warning"),
        "fdisk warns:\n{out}"
    );
    let got: Vec<Vec<String>> = out
        .lines()
        .filter_map(|l| l.strip_prefix(imgs.as_str()))
        .map(|l| l.split_whitespace().map(str::to_ascii_lowercase).collect())
        .collect();
    assert_eq!(
        got,
        want_rows(d, d.disk.logical_sector_size),
        "fdisk -l {imgs}:\n{out}"
    );
}

/// The planned partitions as rows of number, first and last sector (in `unit`-byte sectors),
/// type GUID, name.
fn want_rows(d: &DiskPlan, unit: u32) -> Vec<Vec<String>> {
    let unit = u64::from(unit);
    d.partitions
        .iter()
        .map(|p| {
            vec![
                p.number.to_string(),
                (p.start_bytes / unit).to_string(),
                ((p.start_bytes + p.size_bytes) / unit - 1).to_string(),
                p.type_guid.to_ascii_lowercase(),
                p.label.to_ascii_lowercase(),
            ]
        })
        .collect()
}

/// A sparse file of `size` bytes.
pub fn sparse_image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|f| f.set_len(size))
        .expect("sparse image");
    p
}

/// `sha256sum` of a file or device.
pub fn sha256(path: &Path) -> String {
    tool_ok(&["sha256sum", &path.display().to_string()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Why loop-device tests cannot run here, if they cannot.
pub fn loop_unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control".into());
    }
    for t in ["losetup", "partx", "sgdisk", "sfdisk", "blkid", "mkfs.ext4"] {
        if tool(&["sh", "-c", &format!("command -v {t}")]).0 != 0 {
            return Some(format!("{t} is not installed"));
        }
    }
    None
}

/// A loop device attached to an image; detached (partitions first) when dropped, also when the
/// test panics.
pub struct Loop {
    /// `/dev/loopN`.
    pub dev: PathBuf,
}

impl Loop {
    /// Attaches `image` with `sector`-byte logical sectors, without partition scanning (the
    /// kernel then refuses BLKRRPART; partitions are added with partx).
    pub fn attach(image: &Path, sector: u32) -> Loop {
        Loop::attach_with(image, sector, false)
    }

    /// Attaches `image` with partition scanning, so BLKRRPART works on it.
    pub fn attach_partscan(image: &Path, sector: u32) -> Loop {
        Loop::attach_with(image, sector, true)
    }

    fn attach_with(image: &Path, sector: u32, partscan: bool) -> Loop {
        let img = image.display().to_string();
        let ss = sector.to_string();
        let mut argv = vec!["losetup", "-f", "--show", "--sector-size", &ss];
        if partscan {
            argv.push("-P");
        }
        argv.push(&img);
        let out = tool_ok(&argv);
        Loop {
            dev: PathBuf::from(out.trim()),
        }
    }

    /// The node of partition `n`.
    pub fn part(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.dev.display()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let dev = self.dev.display().to_string();
        let _ = tool(&["partx", "-d", &dev]);
        let (code, _, err) = tool(&["losetup", "-d", &dev]);
        if code != 0 {
            eprintln!("warning: could not detach {dev}: {err}");
        }
    }
}
