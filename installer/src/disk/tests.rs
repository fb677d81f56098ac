//! Every disk step and failure path against a mocked [`Host`], on sparse in-memory disks.

use super::*;
use crate::exec::{CmdError, Effect, Journal, MemDisk, MockHost};
use crate::plan::{
    DiskRef, DiskRoleKind, PartKind, PartitionPlan, GPT_TYPE_BIOS_BOOT, GPT_TYPE_ESP, GPT_TYPE_ZFS,
};
use mockall::predicate::eq;
use mockall::Sequence;
use std::io::{self, Read, Seek, SeekFrom, Write};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BY_ID: &str = "/dev/disk/by-id/virtio-boot0";

/// A boot-disk plan with the planner's geometry (BIOS boot on 512-byte disks only).
fn boot_plan(size: u64, sector: u32) -> DiskPlan {
    let s = u64::from(sector);
    let entries = 16384 / s;
    let mib = MIB / s;
    let last_usable = size / s - 2 - entries;
    let end = (last_usable + 1) / mib * mib - 1;
    let esp_end = mib + 512 * MIB / s - 1;
    let mut parts = Vec::new();
    let mut part = |number, kind, start: u64, end: u64, type_guid: &str, label: &str| {
        parts.push(PartitionPlan {
            number,
            kind,
            start_lba: start,
            end_lba: end,
            start_bytes: start * s,
            size_bytes: (end + 1 - start) * s,
            type_guid: type_guid.into(),
            label: label.into(),
            by_id: format!("{BY_ID}-part{number}"),
        })
    };
    if sector == 512 {
        part(
            1,
            PartKind::BiosBoot,
            2 + entries,
            mib - 1,
            GPT_TYPE_BIOS_BOOT,
            "tappaas-bios-0",
        );
    }
    part(
        2,
        PartKind::Esp,
        mib,
        esp_end,
        GPT_TYPE_ESP,
        "tappaas-esp-0",
    );
    part(
        3,
        PartKind::Zfs,
        esp_end + 1,
        end,
        GPT_TYPE_ZFS,
        "tappaas-rpool-0",
    );
    DiskPlan {
        disk: DiskRef {
            name: "vda".into(),
            model: "QEMU HARDDISK".into(),
            serial: "boot0".into(),
            wwn: None,
            size_bytes: size,
            logical_sector_size: sector,
            by_id: BY_ID.into(),
        },
        role: DiskRoleKind::Boot,
        index: 0,
        erases: None,
        partitions: parts,
    }
}

/// A single-ZFS-partition plan over the same disk (a previous tank layout, say).
fn tank_plan(size: u64, sector: u32) -> DiskPlan {
    let mut d = boot_plan(size, sector);
    let s = u64::from(sector);
    let end = d.partitions.last().map(|p| p.end_lba).unwrap_or(0);
    d.partitions = vec![PartitionPlan {
        number: 1,
        kind: PartKind::Zfs,
        start_lba: MIB / s,
        end_lba: end,
        start_bytes: MIB,
        size_bytes: (end + 1) * s - MIB,
        type_guid: GPT_TYPE_ZFS.into(),
        label: "old-tank".into(),
        by_id: format!("{BY_ID}-part1"),
    }];
    d
}

/// A mock host whose `open_disk` hands out handles to `disk` for the planned path.
fn host_with(disk: &MemDisk, opens: usize) -> MockHost {
    let mut host = MockHost::new();
    let disk = disk.clone();
    host.expect_open_disk()
        .withf(|p| p == Path::new(BY_ID))
        .times(opens)
        .returning(move |_| Ok(Box::new(disk.clone())));
    host
}

fn write(disk: &MemDisk, offset: u64, bytes: &[u8]) {
    let mut d = disk.clone();
    d.seek(SeekFrom::Start(offset)).unwrap();
    d.write_all(bytes).unwrap();
}

#[test]
fn wipe_of_a_blank_disk_zeroes_exactly_the_edges() {
    let plan = boot_plan(2 * GIB, 512);
    let journal = Journal::default();
    let disk = MemDisk::new(BY_ID, 2 * GIB, 512).recording(journal.clone());
    let wiped = wipe(&host_with(&disk, 1), &plan).unwrap();
    assert!(wiped.old_partitions.is_empty());
    // Disk start + BIOS boot + ESP start merge; ESP end + rpool start merge; rpool end + disk end.
    let rpool_end = (plan.partitions[2].end_lba + 1) * 512;
    let expect = vec![
        (0, 17 * MIB),
        (497 * MIB, 32 * MIB),
        (rpool_end - 16 * MIB, 2 * GIB - (rpool_end - 16 * MIB)),
    ];
    assert_eq!(wiped.zeroed, expect);
    let effects: Vec<(u64, u64, bool)> = journal
        .take()
        .into_iter()
        .map(|e| match e {
            Effect::WriteDisk {
                offset, len, zeros, ..
            } => (offset, len, zeros),
            other => panic!("unexpected {other}"),
        })
        .collect();
    let want: Vec<(u64, u64, bool)> = expect.iter().map(|&(o, l)| (o, l, true)).collect();
    assert_eq!(effects, want);
}

#[test]
fn wipe_clears_an_old_install_table_and_zfs_labels_but_not_the_middle() {
    let (size, sector) = (4 * GIB, 512);
    let disk = MemDisk::new(BY_ID, size, sector);
    // An old install: a ZFS partition from 1 GiB to 3 GiB (edges the new plan does not share)
    // with labels at both of its ends.
    let mut old = tank_plan(size, sector);
    let (start, end) = (GIB, 3 * GIB);
    old.partitions[0].start_lba = start / 512;
    old.partitions[0].end_lba = end / 512 - 1;
    write_gpt(&host_with(&disk, 1), &old, None).unwrap();
    let label = vec![0x5a; 256 << 10];
    write(&disk, start, &label);
    write(&disk, end - 512 * 1024, &label);
    write(&disk, 2 * GIB, b"vm data in the middle");

    let wiped = wipe(&host_with(&disk, 1), &boot_plan(size, sector)).unwrap();
    assert_eq!(wiped.old_partitions, vec![(start, end)]);
    assert!(
        disk.read_at(0, 34 * 512).iter().all(|&b| b == 0),
        "MBR/GPT left"
    );
    assert!(
        disk.read_at(size - 33 * 512, 33 * 512)
            .iter()
            .all(|&b| b == 0),
        "backup GPT left"
    );
    assert!(
        disk.read_at(start, label.len()).iter().all(|&b| b == 0),
        "L0/L1 left"
    );
    assert!(
        disk.read_at(end - 512 * 1024, label.len())
            .iter()
            .all(|&b| b == 0),
        "L2/L3 left"
    );
    assert_eq!(disk.read_at(2 * GIB, 21), b"vm data in the middle");
    let mut d = disk.clone();
    assert!(
        read_partitions(&mut d).is_err(),
        "a table survived the wipe"
    );
}

#[test]
fn wipe_finds_partitions_that_only_the_backup_gpt_still_names() {
    let (size, sector) = (4 * GIB, 4096);
    let disk = MemDisk::new(BY_ID, size, sector);
    let old = tank_plan(size, sector);
    write_gpt(&host_with(&disk, 1), &old, None).unwrap();
    write(&disk, 4096, &[0u8; 4096]); // primary header destroyed
    let (start, end) = (MIB, (old.partitions[0].end_lba + 1) * 4096);
    let wiped = wipe(&host_with(&disk, 1), &boot_plan(size, sector)).unwrap();
    assert_eq!(wiped.old_partitions, vec![(start, end)]);
}

#[test]
fn wipe_clears_the_edges_of_old_mbr_partitions() {
    let disk = MemDisk::new(BY_ID, 4 * GIB, 512);
    let mut mbr = [0u8; 512];
    mbr[510..].copy_from_slice(&[0x55, 0xAA]);
    let (start, len) = (3u32 << 20, 1u32 << 20); // LBAs: 1.5 GiB .. 2 GiB
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&start.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&len.to_le_bytes());
    write(&disk, 0, &mbr);
    let end = u64::from(start + len) * 512;
    write(&disk, end - 4096, &[7u8; 4096]);
    let wiped = wipe(&host_with(&disk, 1), &boot_plan(4 * GIB, 512)).unwrap();
    assert_eq!(wiped.old_partitions, vec![(u64::from(start) * 512, end)]);
    assert!(disk.read_at(end - 4096, 4096).iter().all(|&b| b == 0));
}

#[test]
fn wipe_refuses_a_disk_of_another_size_before_writing_anything() {
    let journal = Journal::default();
    let disk = MemDisk::new(BY_ID, 2 * GIB + 512, 512).recording(journal.clone());
    let err = wipe(&host_with(&disk, 1), &boot_plan(2 * GIB, 512)).unwrap_err();
    assert!(matches!(err, DiskError::SizeMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [
        "QEMU HARDDISK",
        "serial boot0",
        BY_ID,
        "2147484160 bytes",
        "2147483648",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
    assert!(journal.effects().is_empty());
}

#[test]
fn wipe_refuses_a_disk_with_other_sectors() {
    let disk = MemDisk::new(BY_ID, 2 * GIB, 4096);
    let err = wipe(&host_with(&disk, 1), &boot_plan(2 * GIB, 512)).unwrap_err();
    assert!(
        matches!(
            err,
            DiskError::SectorMismatch {
                planned: 512,
                actual: 4096,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wipe_reports_the_hosts_refusal_with_the_disk() {
    let mut host = MockHost::new();
    host.expect_open_disk().times(1).returning(|p| {
        Err(HostError::NotAllowed {
            path: p.to_path_buf(),
            reason: "the system is using it".into(),
        })
    });
    let err = wipe(&host, &boot_plan(2 * GIB, 512)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "opening QEMU HARDDISK (serial boot0, 2.1 GB) at {BY_ID}: refusing to write {BY_ID}: \
             the system is using it"
        )
    );
}

/// A disk whose writes fail, like a dying drive.
#[derive(Debug)]
struct Failing(MemDisk);
impl Read for Failing {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}
impl Write for Failing {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(5))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Seek for Failing {
    fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
        self.0.seek(p)
    }
}
impl DiskIo for Failing {
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn size_bytes(&self) -> u64 {
        self.0.size_bytes()
    }
    fn logical_sector_size(&self) -> u32 {
        self.0.logical_sector_size()
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_io_error_while_wiping_names_the_step_and_the_disk() {
    let mut host = MockHost::new();
    host.expect_open_disk()
        .returning(|_| Ok(Box::new(Failing(MemDisk::new(BY_ID, 2 * GIB, 512)))));
    let msg = wipe(&host, &boot_plan(2 * GIB, 512))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("zeroing old signatures on QEMU HARDDISK (serial boot0"),
        "{msg}"
    );
    assert!(msg.contains("Input/output error"), "{msg}");
    let msg = write_gpt(&host, &boot_plan(2 * GIB, 512), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("writing the partition table on QEMU HARDDISK"),
        "{msg}"
    );
}

#[test]
fn gpt_round_trips_with_planned_numbers_on_512_and_4kn() {
    for (sector, numbers) in [(512u32, vec![1, 2, 3]), (4096, vec![2, 3])] {
        let plan = boot_plan(8 * GIB, sector);
        let disk = MemDisk::new(BY_ID, 8 * GIB, sector);
        write_gpt(&host_with(&disk, 1), &plan, None).unwrap();
        let mut d = disk.clone();
        let parts = read_partitions(&mut d).unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), numbers);
        assert!(compare_partitions(&plan.partitions, &parts, None).is_empty());
        let mut guids: Vec<_> = parts.iter().map(|p| p.part_guid).collect();
        guids.dedup();
        assert_eq!(guids.len(), parts.len());
        // A second write gives fresh GUIDs.
        write_gpt(&host_with(&disk, 1), &plan, None).unwrap();
        let again = read_partitions(&mut d).unwrap();
        assert_ne!(again[0].part_guid, parts[0].part_guid);
    }
}

/// Adds one to a byte as it is written at any of `at` (absolute offsets).
#[derive(Debug)]
struct Tamper(MemDisk, Vec<u64>);
impl Read for Tamper {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}
impl Write for Tamper {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let pos = self.0.stream_position()?;
        let mut buf = b.to_vec();
        for &at in &self.1 {
            if (pos..pos + b.len() as u64).contains(&at) {
                buf[(at - pos) as usize] = buf[(at - pos) as usize].wrapping_add(1);
            }
        }
        self.0.write(&buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Seek for Tamper {
    fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
        self.0.seek(p)
    }
}
impl DiskIo for Tamper {
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn size_bytes(&self) -> u64 {
        self.0.size_bytes()
    }
    fn logical_sector_size(&self) -> u32 {
        self.0.logical_sector_size()
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tampering_host(disk: &MemDisk, at: Vec<u64>) -> MockHost {
    let mut host = MockHost::new();
    let disk = disk.clone();
    host.expect_open_disk()
        .returning(move |_| Ok(Box::new(Tamper(disk.clone(), at.clone()))));
    host
}

#[test]
fn verification_lists_a_table_that_is_not_the_plan() {
    let size = 8 * GIB;
    let plan = boot_plan(size, 512);
    // The first-LBA field of entry 3 (index 2), in the primary array (LBA 2) and the backup.
    let backup_array = size - 33 * 512;
    let at = vec![2 * 512 + 2 * 128 + 32, backup_array + 2 * 128 + 32];
    let disk = MemDisk::new(BY_ID, size, 512);
    let err = write_gpt(&tampering_host(&disk, at), &plan, None).unwrap_err();
    let p3 = &plan.partitions[2];
    assert_eq!(
        err.to_string(),
        format!(
            "QEMU HARDDISK (serial boot0, 8.6 GB) at {BY_ID}: the partition table read back is \
             not the planned one:\n  partition 3 (tappaas-rpool-0): first LBA planned {}, on disk {}",
            p3.start_lba,
            p3.start_lba + 1
        )
    );
}

#[test]
fn verification_catches_primary_and_backup_disagreeing() {
    let plan = boot_plan(8 * GIB, 512);
    let disk = MemDisk::new(BY_ID, 8 * GIB, 512);
    let err = write_gpt(&tampering_host(&disk, vec![2 * 512 + 32]), &plan, None).unwrap_err();
    assert!(matches!(err, DiskError::Verify { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the backup entry array differs from the primary"),
        "{err}"
    );
}

#[test]
fn an_unwritable_plan_is_refused_before_the_disk_is_opened() {
    let mut plan = boot_plan(2 * GIB, 512);
    plan.partitions[2].label = "tappaas-a-label-that-is-far-too-long-for-gpt".into();
    let host = host_with(&MemDisk::new(BY_ID, 2 * GIB, 512), 0);
    let err = write_gpt(&host, &plan, None).unwrap_err();
    assert!(matches!(err, DiskError::BadPlan { .. }), "{err:?}");
    assert!(
        err.to_string().contains("longer than GPT's 36 characters"),
        "{err}"
    );
}

#[test]
fn a_partition_past_the_usable_end_is_refused_by_the_gpt_builder() {
    let mut plan = boot_plan(2 * GIB, 512);
    plan.partitions[2].end_lba = 2 * GIB / 512 - 2; // inside the backup table
    let journal = Journal::default();
    let disk = MemDisk::new(BY_ID, 2 * GIB, 512).recording(journal.clone());
    let err = write_gpt(&host_with(&disk, 1), &plan, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("placing partition 3 (tappaas-rpool-0) at LBA"),
        "{err}"
    );
    assert!(journal.effects().is_empty(), "wrote before refusing");
}

#[test]
fn settle_rereads_then_waits_for_the_exact_planned_nodes() {
    let plan = boot_plan(2 * GIB, 512);
    let mut host = MockHost::new();
    let mut seq = Sequence::new();
    host.expect_reread_partitions()
        .with(eq(Path::new(BY_ID)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let want = partition_nodes(&plan);
    assert_eq!(
        want[2].path,
        Path::new("/dev/disk/by-id/virtio-boot0-part3")
    );
    assert_eq!(want[2].start_bytes, plan.partitions[2].start_bytes);
    host.expect_wait_for_partitions()
        .withf(move |nodes, t| nodes == want.as_slice() && *t == SETTLE_TIMEOUT)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    settle(&host, &plan, SETTLE_TIMEOUT).unwrap();
}

#[test]
fn settle_reports_missing_partitions_after_the_timeout() {
    let mut host = MockHost::new();
    host.expect_reread_partitions().returning(|_| Ok(()));
    host.expect_wait_for_partitions().returning(|_, t| {
        Err(HostError::PartitionsNotReady {
            timeout: t,
            pending: vec![format!("{BY_ID}-part3: does not exist yet")],
        })
    });
    let msg = settle(&host, &boot_plan(2 * GIB, 512), Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("waiting for the new partitions of QEMU HARDDISK"),
        "{msg}"
    );
    assert!(msg.contains("after 5s"), "{msg}");
    assert!(
        msg.contains("virtio-boot0-part3: does not exist yet"),
        "{msg}"
    );
}

#[test]
fn settle_reports_a_failed_reread_with_the_command_line() {
    let mut host = MockHost::new();
    host.expect_reread_partitions().returning(|d| {
        Err(HostError::Cmd(CmdError::Failed {
            command: format!("partx -a {}", d.display()),
            status: "exit code 1".into(),
            code: Some(1),
            stderr: "partx: error adding partition 2: Device or resource busy".into(),
        }))
    });
    host.expect_wait_for_partitions().times(0);
    let msg = settle(&host, &boot_plan(2 * GIB, 512), SETTLE_TIMEOUT)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("re-reading the partition table of QEMU HARDDISK"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("`partx -a {BY_ID}` failed (exit code 1)")),
        "{msg}"
    );
    assert!(msg.contains("Device or resource busy"), "{msg}");
}

#[test]
fn partition_disk_runs_wipe_write_reread_wait_in_order() {
    let plan = boot_plan(2 * GIB, 512);
    let disk = MemDisk::new(BY_ID, 2 * GIB, 512);
    let mut host = MockHost::new();
    let mut seq = Sequence::new();
    for _ in 0..2 {
        let d = disk.clone();
        host.expect_open_disk()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Box::new(d.clone())));
    }
    host.expect_reread_partitions()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    host.expect_wait_for_partitions()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    host.expect_run().times(0);
    host.expect_write_file().times(0);
    partition_disk(&host, &plan, None, SETTLE_TIMEOUT).unwrap();
    let mut d = disk.clone();
    assert_eq!(read_partitions(&mut d).unwrap().len(), 3);
}

#[test]
fn a_failed_wipe_stops_before_the_table_is_written() {
    let mut host = MockHost::new();
    host.expect_open_disk()
        .times(1)
        .returning(|_| Ok(Box::new(MemDisk::new(BY_ID, GIB, 512))));
    host.expect_reread_partitions().times(0);
    let err = partition_disk(&host, &boot_plan(2 * GIB, 512), None, SETTLE_TIMEOUT).unwrap_err();
    assert!(matches!(err, DiskError::SizeMismatch { .. }));
}
