//! The dry run: `DryRunHost` records the exact effects of partitioning every disk of a real
//! plan, in order, and touches nothing.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod disk_common;

use disk_common::*;
use std::path::Path;
use tappaas_installer::disk::{self, SETTLE_TIMEOUT};
use tappaas_installer::exec::{DryRunHost, Effect};

#[test]
fn dry_run_records_exactly_the_disk_effects_in_order() {
    let plan = lab_plan(512);
    assert_eq!(plan.disks.len(), 4);
    for d in &plan.disks {
        assert!(
            !Path::new(&d.disk.by_id).exists(),
            "{} exists on this machine",
            d.disk.by_id
        );
    }
    let host = DryRunHost::for_plan(&plan);
    for d in &plan.disks {
        disk::partition_disk(&host, d, None, SETTLE_TIMEOUT).unwrap();
    }
    let text = host.render();
    let boot: Vec<&str> = text.lines().take(10).collect();
    // 32 GiB boot disk: wipe (disk start + BIOS boot + ESP start; ESP end + rpool start; rpool
    // end + disk end), then the GPT (both entry arrays, backup header, primary header,
    // protective MBR last), then re-read and wait.
    assert_eq!(
        boot,
        [
            "  1. write 17 MiB of zeros to /dev/disk/by-id/virtio-boot0 at byte 0",
            "  2. write 32 MiB of zeros to /dev/disk/by-id/virtio-boot0 at byte 521142272",
            "  3. write 17 MiB of zeros to /dev/disk/by-id/virtio-boot0 at byte 34341912576",
            "  4. write 16 KiB to /dev/disk/by-id/virtio-boot0 at byte 34359721472",
            "  5. write 16 KiB to /dev/disk/by-id/virtio-boot0 at byte 1024",
            "  6. write 512 B to /dev/disk/by-id/virtio-boot0 at byte 34359737856",
            "  7. write 512 B to /dev/disk/by-id/virtio-boot0 at byte 512",
            "  8. write 512 B to /dev/disk/by-id/virtio-boot0 at byte 0",
            "  9. re-read the partition table of /dev/disk/by-id/virtio-boot0",
            " 10. wait up to 30s for /dev/disk/by-id/virtio-boot0-part1 \
             /dev/disk/by-id/virtio-boot0-part2 /dev/disk/by-id/virtio-boot0-part3",
        ],
        "{text}"
    );
    // Every disk gets the same shape, in plan order, and nothing else happens.
    let effects = host.effects();
    assert_eq!(effects.len(), 10 + 3 * 9, "{text}");
    let mut order = Vec::new();
    for e in &effects {
        match e {
            Effect::WriteDisk { disk, .. } | Effect::RereadPartitions { disk } => {
                if order.last() != Some(disk) {
                    order.push(disk.clone());
                }
            }
            Effect::WaitForPartitions { .. } => {}
            other => panic!("unexpected effect {other}"),
        }
    }
    let planned: Vec<_> = plan
        .disks
        .iter()
        .map(|d| Path::new(&d.disk.by_id).to_path_buf())
        .collect();
    assert_eq!(order, planned);
    // The tank disks' single partition: disk start + partition start merge, as do the ends.
    assert!(
        text.contains("write 17 MiB of zeros to /dev/disk/by-id/virtio-tank1a at byte 0"),
        "{text}"
    );
    for d in &plan.disks {
        assert!(
            !Path::new(&d.disk.by_id).exists(),
            "{} appeared",
            d.disk.by_id
        );
    }
}

#[test]
fn dry_run_of_a_plan_made_for_other_disks_fails_like_the_real_run() {
    let plan = lab_plan(512);
    let other = lab_plan(4096);
    let host = DryRunHost::for_plan(&other);
    let err = disk::wipe(&host, &plan.disks[0]).unwrap_err();
    assert!(err.to_string().contains("4096-byte sectors"), "{err}");
    assert!(host.effects().is_empty());
}
