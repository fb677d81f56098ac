//! Disks: wipe what a planned disk held, write its GPT exactly as planned, verify it, and wait
//! until the kernel and udev show the new partitions.
//!
//! Every function takes the [`DiskPlan`] and opens the disk by the plan's stable identity
//! (`/dev/disk/by-id/...`) through the [`Host`], which refuses any other path unless it is a
//! test host with an explicit allow-list. Before the first byte is written the disk must have
//! exactly the planned size and sector size: a different disk behind the same link, or a plan
//! made for other hardware, stops here and names the disk.

mod table;
#[cfg(test)]
mod tests;
mod wipe;

pub use table::{compare_partitions, finalize_names, read_partitions, write_gpt, OnDiskPartition};
pub use wipe::{wipe, wipe_regions, Wiped, WIPE_EDGE};

use crate::exec::{DiskIo, Host, HostError, PartitionNode};
use crate::plan::DiskPlan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for partition nodes after re-reading a table: udev on a slow USB-attached
/// disk can take seconds, a healthy system well under one.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a disk step failed. Every variant names the disk by model, serial and path.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The device behind the planned path does not have the planned size.
    #[error(
        "{disk}: the device has {actual} bytes but the plan was made for {planned}; \
         refusing to write a disk that may not be the planned one (re-run `plan` on this machine)"
    )]
    SizeMismatch {
        /// Model, serial and path.
        disk: String,
        /// Planned size in bytes.
        planned: u64,
        /// Size the device reports.
        actual: u64,
    },
    /// The device's logical sector size differs from the plan's (every LBA would be wrong).
    #[error(
        "{disk}: the device has {actual}-byte sectors but the plan was made for {planned}-byte \
         sectors; refusing to write (re-run `plan` on this machine)"
    )]
    SectorMismatch {
        /// Model, serial and path.
        disk: String,
        /// Planned logical sector size.
        planned: u32,
        /// The device's.
        actual: u32,
    },
    /// The plan cannot be written as a GPT (a bug in the planner, or a hand-edited plan).
    #[error("{disk}: the planned partition table is invalid: {problem}")]
    BadPlan {
        /// Model, serial and path.
        disk: String,
        /// What is wrong.
        problem: String,
    },
    /// The host refused or failed.
    #[error("{action} {disk}: {source}")]
    Host {
        /// What was being done, e.g. "opening".
        action: &'static str,
        /// Model, serial and path.
        disk: String,
        /// The host's error.
        source: HostError,
    },
    /// Reading or writing the disk failed.
    #[error("{action} {disk}: {source}")]
    Io {
        /// What was being done, e.g. "zeroing old signatures on".
        action: &'static str,
        /// Model, serial and path.
        disk: String,
        /// The error.
        source: std::io::Error,
    },
    /// The gpt crate refused to build or write the table.
    #[error("{action} {disk}: {source}")]
    Gpt {
        /// What was being done.
        action: String,
        /// Model, serial and path.
        disk: String,
        /// The crate's error.
        source: gpt::GptError,
    },
    /// The table read back from the disk is not the planned one.
    #[error(
        "{disk}: the partition table read back is not the planned one:\n  {}",
        diffs.join("\n  ")
    )]
    Verify {
        /// Model, serial and path.
        disk: String,
        /// One line per difference.
        diffs: Vec<String>,
    },
}

/// `model (serial S, size) at /dev/disk/by-id/...`: how every disk error names the disk.
pub(crate) fn describe(d: &DiskPlan) -> String {
    format!("{} at {}", d.disk, d.disk.by_id)
}

/// Opens the planned disk through the host and refuses it unless size and sector size are
/// exactly the planned ones.
pub(crate) fn open_checked(host: &dyn Host, d: &DiskPlan) -> Result<Box<dyn DiskIo>, DiskError> {
    let io = host
        .open_disk(Path::new(&d.disk.by_id))
        .map_err(|source| DiskError::Host {
            action: "opening",
            disk: describe(d),
            source,
        })?;
    if io.size_bytes() != d.disk.size_bytes {
        return Err(DiskError::SizeMismatch {
            disk: describe(d),
            planned: d.disk.size_bytes,
            actual: io.size_bytes(),
        });
    }
    if io.logical_sector_size() != d.disk.logical_sector_size {
        return Err(DiskError::SectorMismatch {
            disk: describe(d),
            planned: d.disk.logical_sector_size,
            actual: io.logical_sector_size(),
        });
    }
    Ok(io)
}

/// The partition nodes the plan expects once the table is re-read.
pub fn partition_nodes(d: &DiskPlan) -> Vec<PartitionNode> {
    d.partitions
        .iter()
        .map(|p| PartitionNode {
            path: PathBuf::from(&p.by_id),
            start_bytes: p.start_bytes,
            size_bytes: p.size_bytes,
        })
        .collect()
}

/// Re-reads the disk's partition table and waits (at most `timeout`) until every planned
/// partition node exists with the planned start and size.
pub fn settle(host: &dyn Host, d: &DiskPlan, timeout: Duration) -> Result<(), DiskError> {
    host.reread_partitions(Path::new(&d.disk.by_id))
        .map_err(|source| DiskError::Host {
            action: "re-reading the partition table of",
            disk: describe(d),
            source,
        })?;
    host.wait_for_partitions(&partition_nodes(d), timeout)
        .map_err(|source| DiskError::Host {
            action: "waiting for the new partitions of",
            disk: describe(d),
            source,
        })
}

/// The whole disk step of an install: [`wipe`], [`write_gpt`] (with read-back verification,
/// partition names carrying `marker` if given), [`settle`].
pub fn partition_disk(
    host: &dyn Host,
    d: &DiskPlan,
    marker: Option<&str>,
    timeout: Duration,
) -> Result<Wiped, DiskError> {
    let wiped = wipe(host, d)?;
    write_gpt(host, d, marker)?;
    settle(host, d, timeout)?;
    Ok(wiped)
}
