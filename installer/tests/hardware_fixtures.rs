//! The fixture trees under `hardware-profiles/fixtures/<id>/` are generated from
//! `<id>.machine.toml` by `synth`; this test regenerates each one and fails on any drift.
//! `UPDATE_FIXTURES=1 cargo test -p tappaas-installer --test hardware_fixtures` rewrites them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use tappaas_installer::synth::{self, Bus, Holds, MachineSpec, NicBus, Node, Tree};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware-profiles/fixtures")
}

/// `(id, spec)` for every `<id>.machine.toml`, sorted by id.
fn specs() -> Vec<(String, MachineSpec)> {
    let mut out = Vec::new();
    for e in fs::read_dir(fixtures_dir()).expect("listing fixtures") {
        let path = e.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".machine.toml") {
            let spec = MachineSpec::load(&path).unwrap_or_else(|e| panic!("{e}"));
            out.push((id.to_string(), spec));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Directories that hold no file: git cannot store them, so a fixture must not need them.
fn empty_dirs(tree: &Tree) -> Vec<String> {
    tree.nodes
        .iter()
        .filter(|(_, n)| **n == Node::Dir)
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn committed_fixtures_match_their_specs() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1");
    let specs = specs();
    assert!(
        specs.len() >= 7,
        "expected the fixture specs, found {}",
        specs.len()
    );
    let mut failures = Vec::new();
    for (id, spec) in &specs {
        assert_eq!(
            spec.profile.as_deref(),
            Some(id.as_str()),
            "{id}: profile field"
        );
        let tmp = tempfile::tempdir().unwrap();
        let gen_dir = tmp.path().join(id);
        synth::write_root(spec, &gen_dir).unwrap_or_else(|e| panic!("{id}: {e}"));
        let generated = Tree::read_from(&gen_dir).unwrap();
        assert!(
            empty_dirs(&generated).is_empty(),
            "{id}: empty dirs {:?}",
            empty_dirs(&generated)
        );
        let committed_dir = fixtures_dir().join(id);
        if update {
            if committed_dir.exists() {
                fs::remove_dir_all(&committed_dir).unwrap();
            }
            synth::write_root(spec, &committed_dir).unwrap();
            continue;
        }
        let committed = Tree::read_from(&committed_dir).unwrap_or_default();
        let diff = generated.diff(&committed, 20);
        if !diff.is_empty() {
            failures.push(format!(
                "{id} (generated vs committed):\n  {}",
                diff.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures drifted from their specs; rerun with UPDATE_FIXTURES=1 and review the diff:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fixture_directory_has_a_spec() {
    let ids: Vec<String> = specs().into_iter().map(|(id, _)| id).collect();
    for e in fs::read_dir(fixtures_dir()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            let name = e.file_name().to_string_lossy().into_owned();
            // A generated fixture has its spec; a committed capture has a note on its origin.
            let capture = fixtures_dir().join(format!("{name}.capture.md"));
            assert!(
                ids.contains(&name) || capture.is_file(),
                "fixtures/{name}/ has neither {name}.machine.toml nor {name}.capture.md"
            );
        }
    }
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel))
        .unwrap_or_else(|e| panic!("{}: {e}", root.join(rel).display()))
        .trim_end()
        .to_string()
}

fn exists(root: &Path, rel: &str) {
    assert!(
        fs::symlink_metadata(root.join(rel)).is_ok(),
        "missing {}",
        root.join(rel).display()
    );
}

/// The files the probe contract lists, for every disk and NIC of every committed fixture.
#[test]
fn fixtures_hold_the_contract_files() {
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        return; // The trees are being rewritten by the test next door.
    }
    for (id, spec) in specs() {
        let root = fixtures_dir().join(&id);
        for f in [
            "proc/cpuinfo",
            "proc/meminfo",
            "proc/cmdline",
            "proc/self/mountinfo",
            "sys/class/dmi/id/sys_vendor",
            "sys/class/dmi/id/product_name",
            "sys/class/dmi/id/product_version",
            "sys/class/dmi/id/product_serial",
            "sys/class/dmi/id/bios_version",
            "sys/class/net/lo/address",
        ] {
            exists(&root, f);
        }
        if spec.firmware.uefi {
            let sb =
                fs::read(root.join(
                    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
                ))
                .unwrap();
            assert_eq!(
                sb,
                [6, 0, 0, 0, u8::from(spec.firmware.secure_boot)],
                "{id}"
            );
        }
        for unit in &spec.firmware.iommu {
            assert!(
                root.join("sys/class/iommu").join(unit).is_dir(),
                "{id}: {unit}"
            );
        }
        let mountinfo = read(&root, "proc/self/mountinfo");
        assert!(
            mountinfo.contains(" /iso ro,relatime "),
            "{id}: /iso not mounted"
        );
        assert!(read(&root, "proc/cmdline").contains("root=LABEL=TAPPAAS_INSTALLER"));
        for d in &spec.disks {
            let b = format!("sys/block/{}", d.name);
            for f in ["dev", "size", "removable", "ro"] {
                exists(&root, &format!("{b}/{f}"));
            }
            for f in ["logical_block_size", "physical_block_size", "rotational"] {
                exists(&root, &format!("{b}/queue/{f}"));
            }
            assert_eq!(
                read(&root, &format!("{b}/size")),
                (d.size_bytes / 512).to_string()
            );
            match d.bus {
                Bus::Nvme => {
                    exists(&root, &format!("{b}/device/model"));
                    exists(&root, &format!("{b}/device/serial"));
                }
                Bus::Sata | Bus::Usb => {
                    exists(&root, &format!("{b}/device/model"));
                    exists(&root, &format!("{b}/device/vendor"));
                }
                Bus::Virtio => exists(&root, &format!("{b}/serial")),
                Bus::Mmc => exists(&root, &format!("{b}/device/serial")),
            }
            let devno = read(&root, &format!("{b}/dev"));
            let udev = read(&root, &format!("run/udev/data/b{devno}"));
            let by_id: Vec<&str> = udev
                .lines()
                .filter_map(|l| l.strip_prefix("S:disk/by-id/"))
                .collect();
            assert!(!by_id.is_empty(), "{id}: {} has no by-id link", d.name);
            for l in &by_id {
                let target = fs::read_link(root.join("dev/disk/by-id").join(l)).unwrap();
                assert_eq!(
                    target.to_string_lossy(),
                    format!("../../{}", d.name),
                    "{id}: {l}"
                );
            }
            if d.holds == Holds::LiveIso {
                assert!(udev.contains("E:ID_FS_TYPE=iso9660"), "{id}: stick");
                let p1 = if d.name.ends_with(char::is_numeric) {
                    "p1"
                } else {
                    "1"
                };
                let pdev = read(&root, &format!("{b}/{}{p1}/dev", d.name));
                assert!(
                    mountinfo.contains(&format!(" {pdev} / /iso ")),
                    "{id}: /iso device"
                );
            }
        }
        for n in &spec.nics {
            let b = format!("sys/class/net/{}", n.name);
            for f in [
                "address",
                "addr_assign_type",
                "carrier",
                "operstate",
                "speed",
                "type",
                "ifindex",
                "mtu",
            ] {
                exists(&root, &format!("{b}/{f}"));
            }
            let dev = fs::read_link(root.join(&b).join("device")).unwrap();
            let dev_dir = root.join(&b).join(&dev);
            assert!(
                dev_dir.is_dir(),
                "{id}: {} device dir {}",
                n.name,
                dev.display()
            );
            let driver = fs::read_link(dev_dir.join("driver")).unwrap();
            assert!(
                driver
                    .to_string_lossy()
                    .ends_with(&format!("/drivers/{}", n.driver)),
                "{id}: {} driver link {}",
                n.name,
                driver.display()
            );
            assert!(
                dev_dir.join("driver").is_dir(),
                "{id}: {} driver target",
                n.name
            );
            if n.bus == NicBus::Pci {
                assert_eq!(dev.file_name().unwrap().to_string_lossy(), n.pci, "{id}");
                assert_eq!(read(&root, &format!("{b}/device/vendor")), n.vendor_id);
                assert_eq!(read(&root, &format!("{b}/device/device")), n.device_id);
            }
            let ifindex = read(&root, &format!("{b}/ifindex"));
            let udev = read(&root, &format!("run/udev/data/n{ifindex}"));
            for k in [
                "ID_NET_NAME_PATH",
                "ID_NET_NAME_MAC",
                "ID_NET_DRIVER",
                "ID_VENDOR_FROM_DATABASE",
            ] {
                assert!(
                    udev.contains(&format!("E:{k}=")),
                    "{id}: {} lacks {k}",
                    n.name
                );
            }
        }
    }
}

#[test]
fn large_machines_are_generatable() {
    let spec = synth::large_machine(64).unwrap();
    let tree = synth::render(&spec).unwrap();
    let disks: Vec<&String> = tree
        .nodes
        .keys()
        .filter(|p| {
            p.starts_with("sys/block/sd") && p.ends_with("/dev") && p.matches('/').count() == 3
        })
        .collect();
    assert_eq!(disks.len(), 65, "64 disks and the stick");
    assert!(
        tree.nodes.contains_key("sys/block/sdbl/dev"),
        "the 64th disk is sdbl"
    );
    assert!(tree.nodes.contains_key("run/udev/data/b8:0"));
    assert!(
        tree.nodes.contains_key("run/udev/data/b67:240"),
        "sdbl is 67:240"
    );
    let tmp = tempfile::tempdir().unwrap();
    synth::write_root(&spec, &tmp.path().join("m")).unwrap();
    assert!(
        synth::write_root(&spec, &tmp.path().join("m")).is_err(),
        "refuses a non-empty dir"
    );
}

#[test]
fn sd_names_follow_the_kernel() {
    assert_eq!(synth::sd_name("sd", 0), "sda");
    assert_eq!(synth::sd_name("sd", 25), "sdz");
    assert_eq!(synth::sd_name("sd", 26), "sdaa");
    assert_eq!(synth::sd_name("sd", 63), "sdbl");
    assert_eq!(synth::sd_name("sd", 701), "sdzz");
    assert_eq!(synth::sd_name("sd", 702), "sdaaa");
}
