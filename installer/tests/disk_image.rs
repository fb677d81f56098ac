//! The GPT we write, read back by the real tools: a planned disk's table is written onto a
//! sparse image file of the planned size through a test `RealHost` that allow-lists exactly that
//! file, then `sgdisk -v`, `sfdisk --json`, `blkid -p` and `partx --show` must all see the plan.
//! Needs gdisk, fdisk and util-linux; no root.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod disk_common;

use disk_common::*;
use std::path::Path;
use tappaas_installer::disk;
use tappaas_installer::exec::{Host, HostError, RealHost};
use tappaas_installer::plan::{DiskRoleKind, PartKind};

fn write_on_image(
    role: DiskRoleKind,
    sector: u32,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    tappaas_installer::plan::DiskPlan,
) {
    let plan = lab_plan(sector);
    let planned = disk(&plan, role);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", planned.disk.size_bytes);
    let d = retarget(&planned, &img);
    let host = RealHost::for_test_devices([img.clone()]).image_sector_size(sector);
    let wiped = disk::wipe(&host, &d).unwrap();
    assert!(wiped.old_partitions.is_empty());
    disk::write_gpt(&host, &d, None).unwrap();
    (dir, img, d)
}

#[test]
fn boot_disk_gpt_is_read_back_by_sgdisk_sfdisk_blkid_and_partx() {
    let (_dir, img, d) = write_on_image(DiskRoleKind::Boot, 512);
    let kinds: Vec<PartKind> = d.partitions.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PartKind::BiosBoot, PartKind::Esp, PartKind::Zfs]);
    assert_sgdisk_clean(&img);
    assert_sfdisk_matches(&img, &d, &[]);
    assert_blkid_and_partx(&img, &d);
}

#[test]
fn tank_disk_gpt_is_read_back_by_sgdisk_sfdisk_blkid_and_partx() {
    let (_dir, img, d) = write_on_image(DiskRoleKind::Tank1, 512);
    assert_eq!(d.partitions.len(), 1);
    assert_eq!(d.partitions[0].label, "tappaas-tank1-0");
    assert_sgdisk_clean(&img);
    assert_sfdisk_matches(&img, &d, &[]);
    assert_blkid_and_partx(&img, &d);
}

#[test]
fn boot_disk_4kn_gpt_is_read_back_by_fdisk() {
    let (_dir, img, d) = write_on_image(DiskRoleKind::Boot, 4096);
    // No BIOS boot partition on 4Kn; ESP and rpool keep their numbers.
    let numbers: Vec<u32> = d.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [2, 3]);
    // sgdisk, sfdisk 2.38 and blkid assume 512-byte sectors on a file and cannot be told
    // otherwise; fdisk can. The 4Kn loop-device test covers the others.
    assert_fdisk_matches(&img, &d);
}

#[test]
fn rewriting_a_written_disk_gives_the_same_layout_and_fresh_guids() {
    let (_dir, img, d) = write_on_image(DiskRoleKind::Boot, 512);
    let guid = |img: &Path| {
        tool_ok(&["sfdisk", "--disk-id", &img.display().to_string()])
            .trim()
            .to_string()
    };
    let first = guid(&img);
    let host = RealHost::for_test_devices([img.clone()]);
    let wiped = disk::wipe(&host, &d).unwrap();
    // The old table's partitions are found and their edges are in the zeroed ranges.
    assert_eq!(wiped.old_partitions.len(), 3);
    disk::write_gpt(&host, &d, None).unwrap();
    assert_ne!(guid(&img), first);
    assert_sgdisk_clean(&img);
    assert_sfdisk_matches(&img, &d, &[]);
}

#[test]
fn an_image_of_the_wrong_size_is_refused_untouched() {
    let plan = lab_plan(512);
    let planned = disk(&plan, DiskRoleKind::Tank2);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "small.img", planned.disk.size_bytes - (1 << 20));
    let d = retarget(&planned, &img);
    let host = RealHost::for_test_devices([img.clone()]);
    let err = disk::wipe(&host, &d).unwrap_err();
    assert!(err.to_string().contains("serial tank2a"), "{err}");
    assert!(matches!(err, disk::DiskError::SizeMismatch { .. }));
    assert_eq!(
        std::fs::metadata(&img).unwrap().blocks(),
        0,
        "the image was written"
    );
}

#[test]
fn the_production_host_refuses_an_image_and_the_planned_by_id_path_is_absent_here() {
    let plan = lab_plan(512);
    let d = disk(&plan, DiskRoleKind::Boot);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", d.disk.size_bytes);
    let err = RealHost::new().open_disk(&img).unwrap_err();
    assert!(matches!(err, HostError::NotAllowed { .. }), "{err}");
    // The plan's own path goes through the policy and fails only because no such disk exists.
    let err = disk::wipe(&RealHost::new(), &d).unwrap_err().to_string();
    assert!(
        err.contains("looking up /dev/disk/by-id/virtio-boot0"),
        "{err}"
    );
}

use std::os::unix::fs::MetadataExt;

/// `sfdisk --json` of an image: (partition name, uuid) per partition, and the disk's label-id.
fn names_and_guids(img: &Path) -> (Vec<(String, String)>, String) {
    let json: serde_json::Value =
        serde_json::from_str(&tool_ok(&["sfdisk", "--json", &img.display().to_string()])).unwrap();
    let table = &json["partitiontable"];
    let parts = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["uuid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (parts, table["id"].as_str().unwrap().to_string())
}

/// The first and last MiB of a (sparse, large) image: where both GPT copies live.
fn table_areas(img: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(img).unwrap();
    let mut out = vec![0u8; 2 << 20];
    f.read_exact(&mut out[..1 << 20]).unwrap();
    f.seek(SeekFrom::End(-(1 << 20))).unwrap();
    f.read_exact(&mut out[1 << 20..]).unwrap();
    out
}

#[test]
fn the_install_marker_is_on_disk_until_finalize_and_only_the_names_change() {
    let plan = lab_plan(512);
    let planned = disk(&plan, DiskRoleKind::Boot);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", planned.disk.size_bytes);
    let d = retarget(&planned, &img);
    let host = RealHost::for_test_devices([img.clone()]);
    disk::wipe(&host, &d).unwrap();
    let marker = plan.install_marker.as_str();
    assert_eq!(marker.len(), 8, "{marker}");
    disk::write_gpt(&host, &d, Some(marker)).unwrap();

    let (marked, disk_id) = names_and_guids(&img);
    let want_marked: Vec<String> = d
        .partitions
        .iter()
        .map(|p| format!("{}~{marker}", p.label))
        .collect();
    assert_eq!(
        marked.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        want_marked
    );
    assert_sgdisk_clean(&img);

    assert!(
        disk::finalize_names(&host, &d, marker).unwrap(),
        "nothing renamed"
    );
    let (finals, disk_id_after) = names_and_guids(&img);
    let want: Vec<String> = d.partitions.iter().map(|p| p.label.clone()).collect();
    assert_eq!(
        finals.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        want
    );
    // GUIDs, extents and types are those of the first write: only names and CRCs changed.
    assert_eq!(
        finals.iter().map(|(_, g)| g).collect::<Vec<_>>(),
        marked.iter().map(|(_, g)| g).collect::<Vec<_>>()
    );
    assert_eq!(disk_id_after, disk_id);
    assert_sgdisk_clean(&img);
    assert_sfdisk_matches(&img, &d, &[]);
    assert_blkid_and_partx(&img, &d);

    // A rerun of finish finds the final names and writes nothing.
    let before = table_areas(&img);
    assert!(!disk::finalize_names(&host, &d, marker).unwrap());
    assert!(table_areas(&img) == before, "a second finalize wrote");
}

#[test]
fn finalize_refuses_a_table_with_another_marker_and_writes_nothing() {
    let plan = lab_plan(512);
    let planned = disk(&plan, DiskRoleKind::Tank1);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", planned.disk.size_bytes);
    let d = retarget(&planned, &img);
    let host = RealHost::for_test_devices([img.clone()]);
    disk::wipe(&host, &d).unwrap();
    disk::write_gpt(&host, &d, Some("00000000")).unwrap();
    let before = table_areas(&img);
    let err = disk::finalize_names(&host, &d, &plan.install_marker)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tappaas-tank1-0~00000000"), "{err}");
    assert!(table_areas(&img) == before, "a refused finalize wrote");
}
