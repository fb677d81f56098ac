//! `docs/probe-json.md` documents every field and every enum value of the inventory's JSON.
//!
//! The inventory below is built without `..Default::default()`, so adding a field to any
//! inventory struct stops this test from compiling until it is filled in here, and then fails
//! until the doc mentions it.
// Helpers outside #[test] functions fail loudly too: this is test code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tappaas_installer::inventory::*;

const DOC: &str = include_str!("../../docs/probe-json.md");

fn content() -> Content {
    Content {
        partition_table: Some("gpt".into()),
        fs_type: Some("zfs_member".into()),
        fs_label: Some("tank".into()),
        fs_uuid: Some("123".into()),
    }
}

fn full() -> Inventory {
    Inventory {
        schema: INVENTORY_SCHEMA,
        dmi: Dmi {
            sys_vendor: "v".into(),
            product_name: "p".into(),
            product_version: "1".into(),
            product_serial: "s".into(),
            board_vendor: "b".into(),
            board_name: "n".into(),
            bios_version: "1".into(),
        },
        cpu: Cpu {
            model: "m".into(),
            vendor: "v".into(),
            cores: 4,
            threads: 8,
            virtualization: Some("vmx".into()),
            iommu: true,
        },
        memory: Memory { total_bytes: 1 },
        firmware: Firmware {
            mode: FirmwareMode::Uefi,
            secure_boot: Some(true),
        },
        disks: vec![Disk {
            name: "sda".into(),
            devno: "8:0".into(),
            by_id: vec!["wwn-0x1".into()],
            serial: Some("s".into()),
            wwn: Some("0x1".into()),
            model: Some("m".into()),
            vendor: Some("v".into()),
            size_bytes: 1,
            logical_sector_size: 512,
            physical_sector_size: 4096,
            rotational: false,
            transport: Transport::Sata,
            removable: false,
            read_only: false,
            content: content(),
            partitions: vec![Partition {
                name: "sda1".into(),
                number: 1,
                start_bytes: 1,
                size_bytes: 1,
                part_type: Some("t".into()),
                part_label: Some("l".into()),
                content: content(),
                mountpoints: vec!["/".into()],
                holders: vec!["dm-0".into()],
                swap: true,
            }],
            mountpoints: vec!["/iso".into()],
            holders: vec!["md127".into()],
            swap: false,
            boot_medium: true,
            boot_medium_reason: Some("r".into()),
            udev: BTreeMap::from([("ID_BUS".into(), "ata".into())]),
        }],
        nics: vec![Nic {
            name: "eno1".into(),
            mac: "m".into(),
            permanent_mac: Some("m".into()),
            driver: Some("igc".into()),
            pci: Some("0000:01:00.0".into()),
            physical: true,
            link: LinkState::Up,
            speed_mbps: Some(1000),
            udev: BTreeMap::from([("ID_NET_NAME_PATH".into(), "eno1".into())]),
        }],
        cmdline: "c".into(),
    }
}

/// Every object key, except inside the free-form `udev` maps.
fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                out.insert(k.clone());
                if k != "udev" {
                    keys(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, out)),
        _ => {}
    }
}

#[test]
fn every_field_is_documented() {
    let json = serde_json::to_value(full()).expect("serialising");
    let mut all = BTreeSet::new();
    keys(&json, &mut all);
    // Sanity: the walk found the nested structs' fields, not just the top level.
    for k in [
        "start_bytes",
        "fs_label",
        "speed_mbps",
        "secure_boot",
        "bios_version",
    ] {
        assert!(all.contains(k), "walk missed {k}");
    }
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !DOC.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/probe-json.md has no table row for {missing:?}"
    );
}

fn all_transports() -> Vec<Transport> {
    use Transport::*;
    let all = vec![
        Nvme, Sata, Sas, Usb, Virtio, Mmc, Scsi, Loop, Optical, Other,
    ];
    for t in &all {
        // Exhaustive: a new variant breaks the build here until it is listed above.
        match t {
            Nvme | Sata | Sas | Usb | Virtio | Mmc | Scsi | Loop | Optical | Other => {}
        }
    }
    all
}

#[test]
fn every_enum_value_is_documented() {
    let mut values: Vec<Value> = all_transports()
        .into_iter()
        .map(|t| serde_json::to_value(t).expect("transport"))
        .collect();
    for l in [LinkState::Up, LinkState::Down, LinkState::Unknown] {
        match l {
            LinkState::Up | LinkState::Down | LinkState::Unknown => {}
        }
        values.push(serde_json::to_value(l).expect("link"));
    }
    for m in [FirmwareMode::Uefi, FirmwareMode::Bios] {
        match m {
            FirmwareMode::Uefi | FirmwareMode::Bios => {}
        }
        values.push(serde_json::to_value(m).expect("mode"));
    }
    for v in values {
        let s = v.as_str().expect("enums serialise as strings");
        assert!(
            DOC.contains(&format!("`{s}`")),
            "docs/probe-json.md does not mention `{s}`"
        );
    }
    // Transport::as_str (site-file filters) and the JSON agree.
    for t in all_transports() {
        assert_eq!(serde_json::to_value(t).expect("t"), Value::from(t.as_str()));
    }
}

#[test]
fn the_doc_example_parses_as_an_inventory_fragment() {
    let start = DOC.find("```json").expect("example block") + "```json".len();
    let end = start + DOC[start..].find("```").expect("end of example");
    let v: Value = serde_json::from_str(&DOC[start..end]).expect("the example is valid JSON");
    assert_eq!(v["schema"], INVENTORY_SCHEMA);
    // The abridged example still deserialises: every field it shows has the documented type.
    let inv: Inventory = serde_json::from_value(v).expect("the example is an Inventory");
    assert_eq!(
        inv.disks[0].partitions[0].content.fs_label.as_deref(),
        Some("oldtank")
    );
}
