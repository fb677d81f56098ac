//! The probe against this very machine, checked against the tools a person would use:
//! `lsblk` for block devices and `ip link` for interfaces.
// Helpers outside #[test] functions fail loudly too: this is test code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use tappaas_installer::probe::probe_root;

/// Runs a tool that prints JSON; `None` (with the reason printed) when the tool is absent.
fn tool_json(cmd: &str, args: &[&str]) -> Option<Value> {
    let out = match Command::new(cmd).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("SKIPPED: {cmd} is not installed");
            return None;
        }
        Err(e) => panic!("running {cmd}: {e}"),
    };
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd} output: {e}")))
}

fn size(v: &Value) -> u64 {
    // lsblk prints sizes as numbers since util-linux 2.33 and as strings before.
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("bad lsblk size {v}"))
}

#[test]
fn block_devices_match_lsblk() {
    let Some(json) = tool_json(
        "lsblk",
        &["-b", "-J", "-l", "-o", "KNAME,MAJ:MIN,SIZE,TYPE,MOUNTPOINT"],
    ) else {
        return;
    };
    let inv = probe_root(Path::new("/")).expect("probing /");
    let mut lsblk_disks = BTreeMap::new();
    let mut lsblk_parts = BTreeMap::new();
    let mut root_device = None;
    for dev in json["blockdevices"].as_array().expect("blockdevices") {
        let name = dev["kname"].as_str().expect("kname").to_string();
        let entry = (
            dev["maj:min"].as_str().expect("maj:min").to_string(),
            size(&dev["size"]),
        );
        if dev["mountpoint"].as_str() == Some("/") {
            root_device = Some(name.clone());
        }
        if dev["type"] == "part" {
            lsblk_parts.insert(name, entry);
        } else {
            lsblk_disks.insert(name, entry);
        }
    }
    let ours: BTreeMap<String, (String, u64)> = inv
        .disks
        .iter()
        .map(|d| (d.name.clone(), (d.devno.clone(), d.size_bytes)))
        .collect();
    let our_parts: BTreeMap<String, u64> = inv
        .disks
        .iter()
        .flat_map(|d| d.partitions.iter().map(|p| (p.name.clone(), p.size_bytes)))
        .collect();
    assert_eq!(
        ours, lsblk_disks,
        "disks (name -> devno, size) differ from lsblk"
    );
    let lsblk_part_sizes: BTreeMap<String, u64> =
        lsblk_parts.into_iter().map(|(k, (_, s))| (k, s)).collect();
    assert_eq!(our_parts, lsblk_part_sizes, "partitions differ from lsblk");
    println!(
        "{} disks, {} partitions agree with lsblk",
        ours.len(),
        our_parts.len()
    );

    // Whatever holds / is the live system: it must be marked, with a reason.
    if let Some(dev) = root_device {
        let disk = inv
            .disks
            .iter()
            .find(|d| d.name == dev || d.partitions.iter().any(|p| p.name == dev))
            .unwrap_or_else(|| panic!("no disk for the root device {dev}"));
        assert!(disk.boot_medium, "{} holds / but is not marked", disk.name);
        assert!(disk
            .boot_medium_reason
            .as_deref()
            .is_some_and(|r| r.contains("mounted at /")));
    }
}

#[test]
fn interfaces_match_ip_link() {
    let Some(json) = tool_json("ip", &["-j", "link"]) else {
        return;
    };
    let inv = probe_root(Path::new("/")).expect("probing /");
    let mut ip = BTreeMap::new();
    for link in json.as_array().expect("ip -j link is an array") {
        let name = link["ifname"].as_str().expect("ifname").to_string();
        // Tunnels show an IP address here; only Ethernet-like addresses are MACs.
        let mac = match link["link_type"].as_str() {
            Some("ether" | "loopback") => link["address"].as_str().map(str::to_string),
            _ => None,
        };
        ip.insert(name, mac);
    }
    let ours: BTreeMap<String, Option<String>> = inv
        .nics
        .iter()
        .map(|n| {
            let mac = ip
                .get(&n.name)
                .and_then(|m| m.as_ref())
                .map(|_| n.mac.clone());
            (n.name.clone(), mac)
        })
        .collect();
    assert_eq!(ours, ip, "interfaces (name -> MAC) differ from ip link");
    assert!(!ip.is_empty());
}

#[test]
fn real_machine_system_facts() {
    let inv = probe_root(Path::new("/")).expect("probing /");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("cpuinfo");
    let threads = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(inv.cpu.threads as usize, threads);
    assert!(inv.cpu.cores >= 1 && inv.cpu.cores <= inv.cpu.threads);
    assert!(inv.memory.total_bytes > 64 * 1024 * 1024);
    let cmdline = std::fs::read_to_string("/proc/cmdline").expect("cmdline");
    assert_eq!(inv.cmdline, cmdline.trim());
}
