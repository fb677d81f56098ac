//! What a disk holds, for the consent a planned disk needs, and the install marker by which a
//! rerun recognises the unfinished work of an earlier run of the same install (so erasing
//! that needs no new consent).

use crate::inventory::Disk;

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A short description of what a disk holds, for consent errors and the plan.
pub(crate) fn holdings(d: &Disk) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(pt) = &d.content.partition_table {
        parts.push(format!(
            "a {} partition table with {} partition{}",
            pt.to_uppercase(),
            d.partitions.len(),
            if d.partitions.len() == 1 { "" } else { "s" }
        ));
    }
    let mut describe = |c: &crate::inventory::Content, on: &str| {
        if let Some(fs) = &c.fs_type {
            parts.push(match (fs.as_str(), &c.fs_label) {
                ("zfs_member", Some(pool)) => format!("ZFS pool {pool:?}{on}"),
                ("zfs_member", None) => format!("a ZFS label{on}"),
                (fs, Some(l)) => format!("{} {fs} filesystem labelled {l:?}{on}", article(fs)),
                (fs, None) => format!("{} {fs} filesystem{on}", article(fs)),
            });
        }
    };
    describe(&d.content, "");
    for p in &d.partitions {
        describe(&p.content, &format!(" on partition {}", p.number));
    }
    if parts.is_empty() && !d.partitions.is_empty() {
        parts.push(format!("{} partition(s)", d.partitions.len()));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The separator between a partition's planned name and the install marker it carries while
/// the install that wrote it has not finished: `tappaas-tank1-0~1a2b3c4d`.
pub const MARKER_SEPARATOR: char = '~';

/// The "install in progress" marker of a node's install: 8 hex digits of a SHA-256 over the
/// site's name, the node's name and the by-id names of the disks it is installed on, so it is
/// the same on every run of the same install and differs for another node or other disks.
pub(crate) fn install_marker<'d>(
    site: &str,
    node: &str,
    disks: impl Iterator<Item = &'d str>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut by_id: Vec<&str> = disks.collect();
    by_id.sort_unstable();
    let mut h = Sha256::new();
    for part in ["tappaas-install-marker/1", site, node]
        .into_iter()
        .chain(by_id)
    {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name a partition labelled `label` carries while the install with `marker` runs.
pub fn marked_label(label: &str, marker: &str) -> String {
    format!("{label}{MARKER_SEPARATOR}{marker}")
}

/// Whether `d` holds nothing but an unfinished install with this `marker`: a GPT whose every
/// partition is named `tappaas-...~<marker>` and holds nothing, a ZFS label or the FAT of an
/// ESP. Such a disk was written by an earlier run of this same install that never reached its
/// end (a power cut, a crash), so erasing it again needs no consent: `finish` renames the
/// partitions to their planned names as the very last write, and from then on the disk is a
/// node's and needs `wipe = true` like any other.
pub fn interrupted_install(d: &Disk, marker: &str) -> bool {
    let suffix = format!("{MARKER_SEPARATOR}{marker}");
    d.content.partition_table.as_deref() == Some("gpt")
        && d.content.fs_type.is_none()
        && !d.partitions.is_empty()
        && d.partitions.iter().all(|p| {
            p.part_label
                .as_deref()
                .and_then(|l| l.strip_suffix(&suffix))
                .is_some_and(|l| l.starts_with("tappaas-"))
                && matches!(
                    p.content.fs_type.as_deref(),
                    None | Some("zfs_member") | Some("vfat")
                )
        })
}

/// How the plan describes a disk that holds an interrupted install.
pub(crate) fn interrupted_description(marker: &str) -> String {
    format!(
        "an unfinished TAPPaaS install of this node (partition names end in \
         {MARKER_SEPARATOR}{marker}), left by a power cut or crash"
    )
}
