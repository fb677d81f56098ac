//! Host tests on loop devices: the engine wipes, partitions and settles a loop device through
//! a test `RealHost` (allow-listing exactly that device), the kernel gets the partition nodes
//! (via partx: this kernel may have no GPT parser), the real tools read the table back, and a
//! second loop device attached next to it is untouched byte for byte.
//!
//! Needs root, /dev/loop-control, losetup/partx/sgdisk/sfdisk/blkid; each test prints why it
//! skips otherwise. Loop devices are detached by a Drop guard even when an assertion fails.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod disk_common;

use disk_common::*;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;
use tappaas_installer::disk;
use tappaas_installer::exec::{Host, HostError, RealHost, Reread};
use tappaas_installer::plan::DiskRoleKind;

const BYSTANDER: u64 = 64 << 20;

macro_rules! require_loop {
    () => {
        if let Some(why) = loop_unavailable() {
            eprintln!("SKIPPED: loop-device test needs root and loop devices: {why}");
            return;
        }
    };
}

/// Deterministic, position-dependent bytes: any write that lands on the bystander shows.
fn pattern(len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 20) as u8)
        .collect()
}

fn bystander(dir: &Path) -> (std::path::PathBuf, String) {
    let p = dir.join("bystander.img");
    File::create(&p)
        .unwrap()
        .write_all(&pattern(BYSTANDER))
        .unwrap();
    let sum = sha256(&p);
    (p, sum)
}

/// An earlier install on the target, known to the kernel: partition 1 (ext4) starts where the
/// new rpool partition will, partition 2 (ext4, with a ZFS-label stand-in near its end) lies
/// where only the wipe of old partitions' edges reaches it.
fn old_install(lo: &Loop) -> Vec<u64> {
    let dev = lo.dev.display().to_string();
    tool_ok(&[
        "sgdisk",
        "-n1:513M:+511M",
        "-t1:8300",
        "-n2:2G:+1G",
        "-t2:bf01",
        &dev,
    ]);
    tool_ok(&["partx", "-a", &dev]);
    for n in [1, 2] {
        let part = lo.part(n).display().to_string();
        tool_ok(&["mkfs.ext4", "-q", "-F", &part]);
        assert!(tool_ok(&["blkid", "-p", &part]).contains("TYPE=\"ext4\""));
    }
    let mut f = OpenOptions::new().write(true).open(&lo.dev).unwrap();
    f.seek(SeekFrom::Start((3 << 30) - (512 << 10))).unwrap();
    f.write_all(&[0x5a; 256 << 10]).unwrap();
    f.sync_all().unwrap();
    // Where the old signatures were: partition 2's ext4 magic (0x438) and the label stand-in.
    vec![(2 << 30) + 0x438, (3 << 30) - (512 << 10)]
}

fn partition_loop(sector: u32) {
    let plan = lab_plan(sector);
    let planned = disk(&plan, DiskRoleKind::Boot);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "target.img", planned.disk.size_bytes);
    let (by_img, by_sum) = bystander(dir.path());
    let target = Loop::attach(&img, sector);
    let by = Loop::attach(&by_img, 512);
    let by_dev_sum = sha256(&by.dev);
    let old_marks = old_install(&target);

    let d = retarget(&planned, &target.dev);
    let host = RealHost::for_test_devices([target.dev.clone()]);
    let wiped = disk::partition_disk(&host, &d, None, Duration::from_secs(20)).unwrap();
    assert_eq!(
        wiped.old_partitions,
        [(513 << 20, 1 << 30), (2 << 30, 3 << 30)],
        "the old install's partitions were not found"
    );
    let mut f = File::open(&target.dev).unwrap();
    for at in old_marks {
        let mut buf = [0u8; 2];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [0, 0], "old signature left at byte {at}");
    }

    // The kernel has exactly the planned nodes, at the planned places.
    for p in &d.partitions {
        let node = target.part(p.number);
        assert!(node.exists(), "{} missing", node.display());
        let name = node.file_name().unwrap().to_string_lossy().into_owned();
        let sys = |f: &str| -> u64 {
            fs::read_to_string(format!("/sys/class/block/{name}/{f}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(sys("start") * 512, p.start_bytes, "{name} start");
        assert_eq!(sys("size") * 512, p.size_bytes, "{name} size");
    }
    if sector == 4096 {
        assert!(!target.part(1).exists(), "a partition 1 on a 4Kn boot disk");
    }
    assert_sgdisk_clean(&target.dev);
    assert_sfdisk_matches(&target.dev, &d, &[]);
    assert_blkid_and_partx(&target.dev, &d);
    // Nothing of the old install is visible inside the new partitions: blkid reports only the
    // partition entries, no filesystem, pool or nested table.
    for p in &d.partitions {
        let node = target.part(p.number).display().to_string();
        let out = tool_ok(&["blkid", "-p", "-o", "export", &node]);
        assert!(
            out.lines()
                .all(|l| l.starts_with("PART_ENTRY_") || l.starts_with("DEVNAME=")),
            "blkid -p {node} found a signature:\n{out}"
        );
        assert!(
            out.contains(&format!("PART_ENTRY_NAME={}", p.label)),
            "{out}"
        );
    }

    // The bystander cannot even be opened, and it is untouched byte for byte.
    let e = host.open_disk(&by.dev).unwrap_err();
    assert!(matches!(e, HostError::NotAllowed { .. }), "{e}");
    assert_eq!(sha256(&by.dev), by_dev_sum);
    drop(by);
    assert_eq!(sha256(&by_img), by_sum);
    assert!(
        fs::read(&by_img).unwrap() == pattern(BYSTANDER),
        "bystander bytes changed"
    );
}

#[test]
fn boot_disk_on_a_512_loop_device_and_a_bystander_untouched() {
    require_loop!();
    partition_loop(512);
}

#[test]
fn boot_disk_on_a_4kn_loop_device_and_a_bystander_untouched() {
    require_loop!();
    partition_loop(4096);
}

#[test]
fn a_disk_in_use_or_a_partition_is_refused() {
    require_loop!();
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "busy.img", 256 << 20);
    let lo = Loop::attach(&img, 512);
    let dev = lo.dev.display().to_string();
    tool_ok(&["sgdisk", "-n1:2048:+64M", &dev]);
    tool_ok(&["partx", "-a", &dev]);
    let host = RealHost::for_test_devices([lo.dev.clone(), lo.part(1)]);

    let e = host.open_disk(&lo.part(1)).unwrap_err().to_string();
    assert!(e.contains("is a partition"), "{e}");

    // Someone holds partition 1 exclusively, as a mount would: the whole disk is refused.
    let holder = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(lo.part(1))
        .unwrap();
    let e = host.open_disk(&lo.dev).unwrap_err().to_string();
    assert!(e.contains("the system is using it"), "{e}");
    drop(holder);
    assert!(host.open_disk(&lo.dev).is_ok());
}

#[test]
fn the_blkrrpart_path_rereads_or_names_the_nodes_the_kernel_did_not_create() {
    require_loop!();
    let plan = lab_plan(512);
    let planned = disk(&plan, DiskRoleKind::Tank2);
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "tank2.img", planned.disk.size_bytes);

    // Without partition scanning the kernel refuses BLKRRPART, and the error says which call.
    let plain = Loop::attach(&img, 512);
    let d = retarget(&planned, &plain.dev);
    let host = RealHost::for_test_devices([plain.dev.clone()]).reread_with(Reread::Ioctl);
    disk::wipe(&host, &d).unwrap();
    disk::write_gpt(&host, &d, None).unwrap();
    let msg = disk::settle(&host, &d, Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("re-reading the partition table (BLKRRPART) of")
            && msg.contains("Invalid argument"),
        "{msg}"
    );
    drop(plain);

    // With partition scanning BLKRRPART succeeds; whether nodes appear depends on the kernel
    // having a GPT parser. Either they match the plan, or the wait names each missing one.
    let scan = Loop::attach_partscan(&img, 512);
    let d = retarget(&planned, &scan.dev);
    let host = RealHost::for_test_devices([scan.dev.clone()]).reread_with(Reread::Ioctl);
    match disk::settle(&host, &d, Duration::from_secs(2)) {
        Ok(()) => assert!(scan.part(1).exists()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!scan.part(1).exists(), "{msg}");
            assert!(
                msg.starts_with("waiting for the new partitions of"),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("{}: does not exist yet", scan.part(1).display())),
                "{msg}"
            );
            eprintln!("note: this kernel has no GPT parser; BLKRRPART ran, the wait timed out");
        }
    }
}
