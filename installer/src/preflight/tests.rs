use super::*;
use crate::inventory::{Content, Partition};

fn planned() -> (Plan, Inventory) {
    let (p, _, inv) = crate::testutil::lab_plan();
    (p, inv)
}

#[test]
fn an_unchanged_machine_passes() {
    let (p, inv) = planned();
    assert_eq!(p.disks.len(), 4);
    assert_eq!(check_disks(&p, &inv), vec![]);
}

#[test]
fn every_change_since_planning_is_reported_at_once() {
    let (p, mut inv) = planned();
    let by = |inv: &mut Inventory, serial: &str| -> usize {
        inv.disks
            .iter()
            .position(|d| d.serial.as_deref() == Some(serial))
            .expect(serial)
    };
    // tank1a vanished, tank1b grew, tank2a got a filesystem, boot0 is mounted.
    let i = by(&mut inv, "tank1a");
    inv.disks[i].by_id.clear();
    let i = by(&mut inv, "tank1b");
    inv.disks[i].size_bytes += 1 << 30;
    let i = by(&mut inv, "tank2a");
    inv.disks[i].content = Content {
        fs_type: Some("ext4".into()),
        fs_label: Some("photos".into()),
        ..Content::default()
    };
    let i = by(&mut inv, "boot0");
    inv.disks[i].partitions = vec![Partition {
        name: "vda1".into(),
        number: 1,
        mountpoints: vec!["/mnt".into()],
        ..Partition::default()
    }];
    let f = check_disks(&p, &inv);
    let msgs: Vec<String> = f.iter().map(|x| x.message.clone()).collect();
    assert_eq!(
        msgs,
        vec![
            "is mounted".to_string(),
            "now holds 1 partition(s), which the plan did not have consent to erase".to_string(),
            "is not present".to_string(),
            "is 18.3 GB now, the plan was made for 17.2 GB".to_string(),
            "now holds an ext4 filesystem labelled \"photos\", which the plan did not have consent to erase".to_string(),
        ]
    );
    assert!(
        f[2].subject.contains("/dev/disk/by-id/virtio-tank1a"),
        "{}",
        f[2].subject
    );
}

#[test]
fn the_boot_medium_is_refused_even_if_a_plan_names_it() {
    let (mut p, inv) = planned();
    let stick = inv
        .disks
        .iter()
        .find(|d| d.boot_medium && !d.by_id.is_empty())
        .expect("stick");
    p.disks[0].disk.by_id = format!("/dev/disk/by-id/{}", stick.by_id[0]);
    p.disks[0].disk.size_bytes = stick.size_bytes;
    let f = check_disks(&p, &inv);
    assert!(
        f.iter()
            .any(|x| x.message.starts_with("is the live system's boot medium")),
        "{f:?}"
    );
}

fn payload_dir(content: &[u8], sha: Option<&str>, size: Option<u64>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pve-base.squashfs"), content).expect("write");
    let real = sha256_file(&dir.path().join("pve-base.squashfs")).expect("sha");
    let manifest = format!(
        "format = 1\n[[payload]]\nname = \"pve-base\"\nfile = \"pve-base.squashfs\"\n\
         kind = \"root-squashfs\"\nsha256 = \"{}\"\nsize = {}\n",
        sha.unwrap_or(&real),
        size.unwrap_or(content.len() as u64)
    );
    std::fs::write(dir.path().join("manifest.toml"), manifest).expect("write");
    dir
}

#[test]
fn payloads_are_checked_by_size_and_sha256() {
    let ok = payload_dir(b"squashfs bytes", None, None);
    let (m, paths) = check_payload(ok.path(), &["root-squashfs"]).expect("valid payload");
    assert_eq!(m.payload.len(), 1);
    assert_eq!(paths["root-squashfs"], ok.path().join("pve-base.squashfs"));
    // The sha256 of "abc", a known vector.
    std::fs::write(ok.path().join("abc"), b"abc").expect("write");
    assert_eq!(
        sha256_file(&ok.path().join("abc")).expect("sha"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    let bad = payload_dir(b"squashfs bytes", Some(&"0".repeat(64)), None);
    let f = check_payload(bad.path(), &["root-squashfs", "vm-image"]).expect_err("bad");
    let msgs: Vec<&str> = f.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        msgs[0],
        "lists 0 payloads of kind vm-image, the install needs exactly one"
    );
    assert!(msgs[1].starts_with("has sha256 "), "{}", msgs[1]);

    let short = payload_dir(b"squashfs bytes", None, Some(999));
    let f = check_payload(short.path(), &["root-squashfs"]).expect_err("size");
    assert_eq!(f[0].message, "is 14 bytes, the manifest says 999");

    let none = tempfile::tempdir().expect("tempdir");
    let f = check_payload(none.path(), &[]).expect_err("no manifest");
    assert!(
        f[0].message.starts_with("cannot be read"),
        "{}",
        f[0].message
    );
    assert_eq!(
        f[0].hint.as_deref(),
        Some("pass --payload DIR, the directory that holds manifest.toml")
    );
}
