//! Wiping a planned disk before it is partitioned.
//!
//! Proxmox's installer runs `zpool labelclear -f` on each old partition, zeroes its first 16 MiB
//! and runs `wipefs -a`. We zero, in process, the first and last [`WIPE_EDGE`] of:
//! - the whole disk (both GPT copies, the MBR, whole-disk signatures, md/LVM metadata at the end);
//! - every partition the disk's current tables name (primary GPT, backup GPT, and MBR primary
//!   entries): ZFS keeps labels L0/L1 in a vdev's first 512 KiB and L2/L3 in its last 512 KiB,
//!   filesystems and LVM keep their superblocks near the start;
//! - every partition the plan will create, so that nothing left in the new partitions' places
//!   (an old pool's end labels, a FAT boot sector) makes blkid or `zpool create` see a ghost.
//!
//! Why not `zpool labelclear` and `wipefs`: both need the old partitions' device nodes (which the
//! kernel may not have, or have stale), `labelclear` needs the ZFS module loaded, and neither can
//! be simulated in a dry run or checked in a unit test. Zeroing known byte ranges through the
//! [`Host`] is exact, works the same on every kernel, and the dry run lists every byte range.
//! Limits: logical partitions inside an MBR extended partition are not walked (the extended
//! partition's own edges are zeroed), and signatures more than 16 MiB from any edge (btrfs
//! backup superblocks) survive; neither is found by blkid or ZFS on a disk with a new table.

use super::{describe, open_checked, DiskError};
use crate::exec::{DiskIo, Host};
use crate::plan::DiskPlan;
use gpt::disk::LogicalBlockSize;
use std::io::{Seek, SeekFrom, Write};

/// How much is zeroed at each edge of the disk and of each partition.
pub const WIPE_EDGE: u64 = 16 << 20;

/// What [`wipe`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiped {
    /// Partitions the disk's old tables named, as byte ranges `(start, end)` (end exclusive).
    pub old_partitions: Vec<(u64, u64)>,
    /// The byte ranges zeroed, `(offset, length)`, sorted and merged.
    pub zeroed: Vec<(u64, u64)>,
}

/// Zeroes old signatures, partition tables and ZFS labels on the planned disk (see the module
/// documentation for exactly which bytes), then syncs. Refuses a disk whose size or sector size
/// is not the planned one before writing anything.
pub fn wipe(host: &dyn Host, d: &DiskPlan) -> Result<Wiped, DiskError> {
    let mut io = open_checked(host, d)?;
    let size = io.size_bytes();
    let old = old_partitions(&mut *io);
    let planned: Vec<(u64, u64)> = d
        .partitions
        .iter()
        .map(|p| (p.start_bytes, p.start_bytes + p.size_bytes))
        .collect();
    let zeroed = wipe_regions(size, &old, &planned);
    tracing::info!(disk = %describe(d), old_partitions = old.len(), ranges = zeroed.len(), "wiping");
    let io_err = |source| DiskError::Io {
        action: "zeroing old signatures on",
        disk: describe(d),
        source,
    };
    let chunk = vec![0u8; 1 << 20];
    for &(offset, len) in &zeroed {
        io.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            io.write_all(&chunk[..n]).map_err(io_err)?;
            left -= n as u64;
        }
    }
    io.sync().map_err(|source| DiskError::Io {
        action: "syncing",
        disk: describe(d),
        source,
    })?;
    Ok(Wiped {
        old_partitions: old,
        zeroed,
    })
}

/// The byte ranges `(offset, length)` a wipe zeroes on a disk of `size` bytes that holds `old`
/// partitions and will hold `planned` ones (both as `(start, end)` byte ranges, end exclusive):
/// the first and last [`WIPE_EDGE`] of the disk and of each partition, clamped to the disk,
/// sorted and merged.
pub fn wipe_regions(size: u64, old: &[(u64, u64)], planned: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for &(start, end) in std::iter::once(&(0, size)).chain(old).chain(planned) {
        let (start, end) = (start.min(size), end.min(size));
        if start >= end {
            continue;
        }
        if end - start <= 2 * WIPE_EDGE {
            spans.push((start, end));
        } else {
            spans.push((start, start + WIPE_EDGE));
            spans.push((end - WIPE_EDGE, end));
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some((_, last_end)) if s <= *last_end => *last_end = (*last_end).max(e),
            _ => merged.push((s, e)),
        }
    }
    merged.into_iter().map(|(s, e)| (s, e - s)).collect()
}

/// Every partition the disk's current tables name, as byte ranges: both GPT copies (they can
/// disagree after a botched repartition) and the MBR's primary entries. Unreadable or absent
/// tables contribute nothing: a blank disk is normal.
fn old_partitions(mut io: &mut dyn DiskIo) -> Vec<(u64, u64)> {
    let sector = u64::from(io.logical_sector_size());
    let mut out = Vec::new();
    if let Some(lb) = match sector {
        512 => Some(LogicalBlockSize::Lb512),
        4096 => Some(LogicalBlockSize::Lb4096),
        _ => None,
    } {
        if let Ok(g) = gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(lb)
            .open_from_device(&mut *io)
        {
            let headers: Vec<gpt::header::Header> = [g.primary_header(), g.backup_header()]
                .into_iter()
                .filter_map(|h| h.ok().cloned())
                .collect();
            drop(g);
            for h in headers {
                if h.part_size != 128 {
                    continue; // the crate asserts 128-byte entries; every real GPT has them
                }
                if let Ok(parts) = gpt::partition::file_read_partitions(&mut io, &h, lb) {
                    out.extend(parts.values().filter(|p| p.is_used()).map(|p| {
                        (
                            p.first_lba * sector,
                            (p.last_lba + 1).saturating_mul(sector),
                        )
                    }));
                }
            }
        }
    }
    let mut mbr = [0u8; 512];
    if io.seek(SeekFrom::Start(0)).is_ok() && io.read_exact(&mut mbr).is_ok() {
        out.extend(mbr_partitions(&mbr, sector));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The primary partitions of a DOS/MBR boot sector (not the GPT protective entry).
fn mbr_partitions(sector0: &[u8; 512], sector: u64) -> Vec<(u64, u64)> {
    if sector0[510..512] != [0x55, 0xAA] {
        return Vec::new();
    }
    (0..4)
        .filter_map(|i| {
            let e = &sector0[446 + 16 * i..446 + 16 * (i + 1)];
            let kind = e[4];
            let start = u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
            let len = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
            (kind != 0 && kind != 0xEE && len > 0).then(|| (start * sector, (start + len) * sector))
        })
        .collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn regions_cover_disk_and_partition_edges_and_merge() {
        let size = 1024 * MIB;
        let planned = [(MIB, 513 * MIB), (513 * MIB, 1023 * MIB)];
        let r = wipe_regions(size, &[], &planned);
        assert_eq!(
            r,
            vec![(0, 17 * MIB), (497 * MIB, 32 * MIB), (1007 * MIB, 17 * MIB),]
        );
    }

    #[test]
    fn small_partitions_are_zeroed_whole_and_everything_is_clamped() {
        let size = 100 * MIB;
        let old = [(40 * MIB, 41 * MIB), (90 * MIB, 200 * MIB)];
        let r = wipe_regions(size, &old, &[]);
        assert_eq!(
            r,
            vec![(0, 16 * MIB), (40 * MIB, MIB), (84 * MIB, 16 * MIB)]
        );
    }

    #[test]
    fn mbr_entries_are_read_and_protective_ones_ignored() {
        let mut s = [0u8; 512];
        s[510] = 0x55;
        s[511] = 0xAA;
        let mut put = |i: usize, kind: u8, start: u32, len: u32| {
            let e = 446 + 16 * i;
            s[e + 4] = kind;
            s[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            s[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        };
        put(0, 0x83, 2048, 4096);
        put(1, 0xEE, 1, 100);
        put(3, 0x8e, 10000, 10);
        assert_eq!(
            mbr_partitions(&s, 512),
            vec![(2048 * 512, 6144 * 512), (10000 * 512, 10010 * 512)]
        );
        s[511] = 0;
        assert!(mbr_partitions(&s, 512).is_empty());
    }
}
