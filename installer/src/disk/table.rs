//! Writing the planned GPT with the `gpt` crate, and reading it back to prove it.

use super::{describe, open_checked, DiskError};
use crate::exec::{DiskIo, Host};
use crate::plan::{marked_label, DiskPlan, PartitionPlan};
use gpt::disk::LogicalBlockSize;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};
use std::collections::BTreeMap;
use std::io::{Cursor, SeekFrom};
use uuid::Uuid;

/// GPT partition names hold at most 36 UTF-16 code units.
const NAME_UNITS: usize = 36;
/// What the install marker adds to a name while the install runs (`~1a2b3c4d`).
const MARKER_UNITS: usize = 9;

/// A partition as read back from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDiskPartition {
    /// Partition number (entry index + 1, which is what the kernel calls it).
    pub number: u32,
    /// Type GUID, lower case.
    pub type_guid: String,
    /// Unique partition GUID.
    pub part_guid: Uuid,
    /// First LBA.
    pub start_lba: u64,
    /// Last LBA (inclusive).
    pub end_lba: u64,
    /// Partition name.
    pub name: String,
}

fn lb_size(sector: u32) -> Option<LogicalBlockSize> {
    match sector {
        512 => Some(LogicalBlockSize::Lb512),
        4096 => Some(LogicalBlockSize::Lb4096),
        _ => None,
    }
}

/// Checks what the gpt crate would otherwise panic on or silently truncate.
fn check_plan(d: &DiskPlan) -> Result<LogicalBlockSize, String> {
    let lb = lb_size(d.disk.logical_sector_size).ok_or_else(|| {
        format!(
            "{}-byte sectors are not supported (512 or 4096)",
            d.disk.logical_sector_size
        )
    })?;
    let mut seen = Vec::new();
    for p in &d.partitions {
        if !(1..=128).contains(&p.number) || seen.contains(&p.number) {
            return Err(format!(
                "partition number {} is out of range or repeated",
                p.number
            ));
        }
        seen.push(p.number);
        if p.end_lba < p.start_lba {
            return Err(format!("partition {} ends before it starts", p.number));
        }
        // Room for the install marker too (`~` and 8 hex digits).
        if p.label.encode_utf16().count() + MARKER_UNITS > NAME_UNITS {
            return Err(format!(
                "partition {} label {:?} is longer than GPT's {NAME_UNITS} characters",
                p.number, p.label
            ));
        }
        Uuid::parse_str(&p.type_guid)
            .map_err(|e| format!("partition {} type {:?}: {e}", p.number, p.type_guid))?;
    }
    Ok(lb)
}

/// The name partition `p` gets on disk: its label, marked with the install marker while the
/// install runs.
fn name_on_disk(p: &PartitionPlan, marker: Option<&str>) -> String {
    match marker {
        Some(m) => marked_label(&p.label, m),
        None => p.label.clone(),
    }
}

/// Writes the planned GPT (protective MBR, primary and backup headers and entry arrays, a fresh
/// random disk GUID and partition GUIDs), syncs, then reads the table back and compares it
/// with the plan; any difference is a [`DiskError::Verify`] listing each one.
///
/// With `marker`, every partition is named `<label>~<marker>` ("install in progress") until
/// [`finalize_names`] gives it its planned name at the end of the install.
pub fn write_gpt(host: &dyn Host, d: &DiskPlan, marker: Option<&str>) -> Result<(), DiskError> {
    let lb = check_plan(d).map_err(|problem| DiskError::BadPlan {
        disk: describe(d),
        problem,
    })?;
    let mut io = open_checked(host, d)?;
    tracing::info!(disk = %describe(d), partitions = d.partitions.len(), "writing partition table");
    write_table(&mut *io, d, lb, marker)?;
    io.sync().map_err(|source| DiskError::Io {
        action: "syncing the partition table on",
        disk: describe(d),
        source,
    })?;
    let on_disk = read_partitions(&mut *io).map_err(|e| DiskError::Verify {
        disk: describe(d),
        diffs: vec![e],
    })?;
    let diffs = compare_partitions(&d.partitions, &on_disk, marker);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(DiskError::Verify {
            disk: describe(d),
            diffs,
        })
    }
}

fn write_table(
    io: &mut dyn DiskIo,
    d: &DiskPlan,
    lb: LogicalBlockSize,
    marker: Option<&str>,
) -> Result<(), DiskError> {
    let gpt_err = |action: String| {
        let disk = describe(d);
        move |source: gpt::GptError| DiskError::Gpt {
            action,
            disk,
            source,
        }
    };
    let io_err = |source| DiskError::Io {
        action: "writing the partition table on",
        disk: describe(d),
        source,
    };
    // The crate builds the headers (usable range, random disk GUID) and checks each partition
    // fits in free space; it does not write anything until told to.
    let mut g = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(lb)
        .create_from_device(&mut *io, None)
        .map_err(gpt_err("building a partition table for".into()))?;
    for p in &d.partitions {
        let kind = Type {
            guid: Uuid::parse_str(&p.type_guid).unwrap_or_default(),
            os: OperatingSystem::None,
        };
        g.add_partition_at(
            &name_on_disk(p, marker),
            p.number,
            p.start_lba,
            p.end_lba - p.start_lba + 1,
            kind,
            0,
        )
        .map_err(gpt_err(format!(
            "placing partition {} ({}) at LBA {}-{} on",
            p.number, p.label, p.start_lba, p.end_lba
        )))?;
    }
    let primary = g.primary_header().cloned();
    let backup = g.backup_header().cloned();
    let parts: BTreeMap<u32, Partition> = g.partitions().clone();
    drop(g);
    let (mut primary, mut backup) = match (primary, backup) {
        (Ok(p), Ok(b)) => (p, b),
        (Err(e), _) | (_, Err(e)) => return Err(gpt_err("building headers for".into())(e.into())),
    };

    // The entry array is built here rather than by the crate's `write()`, which packs used
    // entries at the front and so renumbers partitions: a 4Kn boot disk has no BIOS boot
    // partition, and its ESP and rpool must stay numbers 2 and 3 as planned.
    let array_len = primary.num_parts as usize * primary.part_size as usize;
    let mut array = Cursor::new(vec![0u8; array_len]);
    for (number, part) in &parts {
        part.write_to_device(&mut array, u64::from(number - 1), 0, lb, primary.part_size)
            .map_err(io_err)?;
    }
    let array = array.into_inner();
    let sector = lb.as_u64();
    // The crate's generic helpers want a sized device: a `&mut dyn DiskIo` is one.
    let mut dev: &mut dyn DiskIo = io;
    // Order: entry arrays, backup header, primary header, protective MBR last. The kernel and
    // blkid accept a GPT only behind a protective MBR, and the wipe zeroed LBA 0, so a crash
    // part-way leaves a disk that shows no table, never one with half-written entries.
    for start in [backup.part_start, primary.part_start] {
        dev.seek(SeekFrom::Start(start * sector)).map_err(io_err)?;
        dev.write_all(&array).map_err(io_err)?;
    }
    backup
        .write_backup(&mut dev, lb)
        .map_err(|e| gpt_err("writing the backup GPT header on".into())(e.into()))?;
    primary
        .write_primary(&mut dev, lb)
        .map_err(|e| gpt_err("writing the primary GPT header on".into())(e.into()))?;
    let lbas = dev.size_bytes() / sector;
    gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(lbas - 1).unwrap_or(u32::MAX))
        .overwrite_lba0(&mut dev)
        .map_err(|e| DiskError::Io {
            action: "writing the protective MBR on",
            disk: describe(d),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(())
}

/// Reads the GPT of `io` (in its logical sector size) and returns its partitions, checking on
/// the way what a firmware or kernel would check: a protective MBR, both headers valid with
/// their CRCs, both entry arrays identical, the backup header at the last LBA.
pub fn read_partitions(mut io: &mut dyn DiskIo) -> Result<Vec<OnDiskPartition>, String> {
    let lb = lb_size(io.logical_sector_size())
        .ok_or_else(|| format!("{}-byte sectors", io.logical_sector_size()))?;
    let lbas = io.size_bytes() / lb.as_u64();
    let mbr = gpt::mbr::ProtectiveMBR::from_disk(&mut io, lb)
        .map_err(|e| format!("no valid MBR in LBA 0: {e}"))?;
    match mbr.partition(0) {
        Some(p) if p.os_type == 0xEE && p.lb_start == 1 => {}
        other => {
            return Err(format!(
                "LBA 0 is not a protective MBR (first entry {other:?})"
            ))
        }
    }
    let g = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(lb)
        .only_valid_headers(true)
        .open_from_device(&mut *io)
        .map_err(|e| format!("the GPT does not read back: {e}"))?;
    let (primary, backup) = match (g.primary_header(), g.backup_header()) {
        (Ok(p), Ok(b)) => (p.clone(), b.clone()),
        _ => return Err("a GPT header is missing".into()),
    };
    let parts = g.partitions().clone();
    drop(g);
    if backup.current_lba != lbas - 1 || primary.backup_lba != lbas - 1 {
        return Err(format!(
            "the backup header is at LBA {} (primary says {}), not at the last LBA {}",
            backup.current_lba,
            primary.backup_lba,
            lbas - 1
        ));
    }
    let backup_parts = gpt::partition::file_read_partitions(&mut io, &backup, lb)
        .map_err(|e| format!("the backup entry array does not read back: {e}"))?;
    if backup_parts != parts {
        return Err("the backup entry array differs from the primary".into());
    }
    Ok(parts
        .iter()
        .filter(|(_, p)| p.is_used())
        .map(|(n, p)| OnDiskPartition {
            number: *n,
            type_guid: p.part_type_guid.guid.to_string(),
            part_guid: p.part_guid,
            start_lba: p.first_lba,
            end_lba: p.last_lba,
            name: p.name.clone(),
        })
        .collect())
}

/// One line per difference between the planned partitions and those on disk (empty: equal).
/// With `marker`, the names on disk are expected to carry it (an install in progress).
pub fn compare_partitions(
    plan: &[PartitionPlan],
    disk: &[OnDiskPartition],
    marker: Option<&str>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for p in plan {
        let Some(got) = disk.iter().find(|g| g.number == p.number) else {
            diffs.push(format!("partition {} ({}): missing", p.number, p.label));
            continue;
        };
        let what = format!("partition {} ({})", p.number, p.label);
        if !got.type_guid.eq_ignore_ascii_case(&p.type_guid) {
            diffs.push(format!(
                "{what}: type planned {}, on disk {}",
                p.type_guid, got.type_guid
            ));
        }
        if got.start_lba != p.start_lba {
            diffs.push(format!(
                "{what}: first LBA planned {}, on disk {}",
                p.start_lba, got.start_lba
            ));
        }
        if got.end_lba != p.end_lba {
            diffs.push(format!(
                "{what}: last LBA planned {}, on disk {}",
                p.end_lba, got.end_lba
            ));
        }
        if got.name != name_on_disk(p, marker) {
            diffs.push(format!("{what}: name on disk is {:?}", got.name));
        }
    }
    for g in disk
        .iter()
        .filter(|g| plan.iter().all(|p| p.number != g.number))
    {
        diffs.push(format!(
            "partition {} ({:?}, LBA {}-{}): on disk but not planned",
            g.number, g.name, g.start_lba, g.end_lba
        ));
    }
    diffs
}

/// Gives every partition of `d` its planned name, dropping the install marker: the last write
/// of an install (see `docs/install.md`, "After a power cut"). Only the name fields of both
/// entry arrays change, and the headers' checksums with them; disk and partition GUIDs,
/// types and extents stay as they are, and are verified before and after.
///
/// Returns `false` without writing when the names are final already (a rerun of `finish`).
/// A table that is neither this install's marked one nor the final one is refused.
pub fn finalize_names(host: &dyn Host, d: &DiskPlan, marker: &str) -> Result<bool, DiskError> {
    let lb = check_plan(d).map_err(|problem| DiskError::BadPlan {
        disk: describe(d),
        problem,
    })?;
    let verify = |diffs: Vec<String>| DiskError::Verify {
        disk: describe(d),
        diffs,
    };
    let mut io = open_checked(host, d)?;
    let before = read_partitions(&mut *io).map_err(|e| verify(vec![e]))?;
    if compare_partitions(&d.partitions, &before, None).is_empty() {
        return Ok(false);
    }
    let diffs = compare_partitions(&d.partitions, &before, Some(marker));
    if !diffs.is_empty() {
        return Err(verify(diffs));
    }
    tracing::info!(disk = %describe(d), "dropping the install marker from the partition names");
    rename_in_place(&mut *io, d, lb).map_err(|source| DiskError::Io {
        action: "renaming the partitions of",
        disk: describe(d),
        source,
    })?;
    io.sync().map_err(|source| DiskError::Io {
        action: "syncing the partition table on",
        disk: describe(d),
        source,
    })?;
    let after = read_partitions(&mut *io).map_err(|e| verify(vec![e]))?;
    let mut diffs = compare_partitions(&d.partitions, &after, None);
    for (b, a) in before.iter().zip(&after) {
        if b.part_guid != a.part_guid {
            diffs.push(format!(
                "partition {}: GUID changed from {} to {}",
                b.number, b.part_guid, a.part_guid
            ));
        }
    }
    if diffs.is_empty() {
        Ok(true)
    } else {
        Err(verify(diffs))
    }
}

/// GPT entry layout: the name is 36 UTF-16LE code units at byte 56 of each entry.
const NAME_OFFSET: usize = 56;

fn rename_in_place(io: &mut dyn DiskIo, d: &DiskPlan, lb: LogicalBlockSize) -> std::io::Result<()> {
    let g = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(lb)
        .only_valid_headers(true)
        .open_from_device(&mut *io)
        .map_err(std::io::Error::other)?;
    let (mut primary, mut backup) = match (g.primary_header(), g.backup_header()) {
        (Ok(p), Ok(b)) => (p.clone(), b.clone()),
        _ => return Err(std::io::Error::other("a GPT header is missing")),
    };
    drop(g);
    let sector = lb.as_u64();
    let part_size = primary.part_size as usize;
    if part_size < NAME_OFFSET + NAME_UNITS * 2 {
        return Err(std::io::Error::other(format!(
            "GPT entries of {part_size} bytes are too small"
        )));
    }
    let array_len = primary.num_parts as usize * part_size;
    let mut dev: &mut dyn DiskIo = io;
    // Backup first, primary last, like the first write: a cut in between leaves the two
    // arrays different, which reads as a damaged table (never as a finished node).
    for start in [backup.part_start, primary.part_start] {
        let mut array = vec![0u8; array_len];
        dev.seek(SeekFrom::Start(start * sector))?;
        dev.read_exact(&mut array)?;
        for p in &d.partitions {
            let at = (p.number as usize - 1) * part_size + NAME_OFFSET;
            let field = array.get_mut(at..at + NAME_UNITS * 2).ok_or_else(|| {
                std::io::Error::other(format!("partition {} is past the entry array", p.number))
            })?;
            field.fill(0);
            for (i, unit) in p.label.encode_utf16().take(NAME_UNITS).enumerate() {
                field[2 * i..2 * i + 2].copy_from_slice(&unit.to_le_bytes());
            }
        }
        dev.seek(SeekFrom::Start(start * sector))?;
        dev.write_all(&array)?;
    }
    backup
        .write_backup(&mut dev, lb)
        .map_err(std::io::Error::other)?;
    primary
        .write_primary(&mut dev, lb)
        .map_err(std::io::Error::other)?;
    Ok(())
}
