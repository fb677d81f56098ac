//! Preflight: everything checked before the first destructive write (bootc's rule). The plan was
//! made from one probe; preflight re-probes and checks that every planned disk is still there
//! under its stable name, with the planned size and sector size, unmounted, unused, not the boot
//! medium, and holding nothing the site did not consent to erase; and that the payloads are
//! present with the sizes and sha256 sums of their manifest. It reports every problem at once
//! and changes nothing.

use crate::inventory::{human_bytes, Disk, Inventory};
use crate::plan::{DiskPlan, Plan};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Payload manifest format this installer reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// `payload/manifest.toml`: what the ISO (or the lab) carries, pinned by size and sha256.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The payload files.
    pub payload: Vec<PayloadEntry>,
}

/// One payload file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEntry {
    /// Short name, e.g. `pve-base`.
    pub name: String,
    /// Path relative to the manifest's directory.
    pub file: String,
    /// What it is: `root-squashfs` (the Proxmox root image), `packages`, `vm-image`, ...
    pub kind: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl Manifest {
    /// The entry of `kind`, if the manifest has exactly one.
    pub fn one(&self, kind: &str) -> Option<&PayloadEntry> {
        let mut it = self.payload.iter().filter(|p| p.kind == kind);
        match (it.next(), it.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }
}

/// One reason the install cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about: a disk (model, serial, path) or a payload file.
    pub subject: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Preflight failed: every finding, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preflight found {} problem(s); nothing was written:\n{}", .0.len(), render(.0))]
pub struct PreflightFailed(pub Vec<Finding>);

fn render(f: &[Finding]) -> String {
    f.iter()
        .map(|x| format!("- {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The disk a planned disk refers to now, found by its by-id link.
fn find<'a>(inv: &'a Inventory, d: &DiskPlan) -> Option<&'a Disk> {
    let link = d.disk.by_id.trim_start_matches("/dev/disk/by-id/");
    inv.disks.iter().find(|x| x.by_id.iter().any(|l| l == link))
}

/// Checks the planned disks against a fresh probe.
pub fn check_disks(plan: &Plan, inv: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<&str, &DiskPlan> = BTreeMap::new();
    for d in &plan.disks {
        let subject = format!("{} ({})", d.disk, d.disk.by_id);
        let mut push = |message: String, hint: Option<&str>| {
            out.push(Finding {
                subject: subject.clone(),
                message,
                hint: hint.map(str::to_string),
            })
        };
        let Some(now) = find(inv, d) else {
            push(
                "is not present".into(),
                Some("plug it in, or plan again if the machine changed"),
            );
            continue;
        };
        if let Some(other) = seen.insert(now.name.as_str(), d) {
            push(
                format!(
                    "is the same device ({}) as the planned {}-{}",
                    now.name, other.role, other.index
                ),
                Some("two roles cannot share a disk: plan again"),
            );
        }
        if now.size_bytes != d.disk.size_bytes {
            push(
                format!(
                    "is {} now, the plan was made for {}",
                    human_bytes(now.size_bytes),
                    human_bytes(d.disk.size_bytes)
                ),
                Some("plan again on this machine"),
            );
        }
        if now.logical_sector_size != d.disk.logical_sector_size {
            push(
                format!(
                    "has {}-byte sectors now, the plan used {}",
                    now.logical_sector_size, d.disk.logical_sector_size
                ),
                Some("plan again on this machine"),
            );
        }
        if now.boot_medium {
            push(
                format!(
                    "is the live system's boot medium ({})",
                    now.boot_medium_reason
                        .as_deref()
                        .unwrap_or("it backs the live system")
                ),
                None,
            );
        }
        if now.is_mounted() {
            push(
                "is mounted".into(),
                Some("unmount it; the installer never writes a mounted disk"),
            );
        }
        for usage in now.in_use() {
            push(
                usage,
                Some("stop what uses it (swapoff, mdadm --stop, dmsetup remove)"),
            );
        }
        // A disk left with this install's own marker by a run that was cut off holds nothing
        // to protect (see `plan::interrupted_install`).
        if d.erases.is_none() && !crate::plan::interrupted_install(now, &plan.install_marker) {
            if let Some(what) = crate::plan::holdings(now) {
                push(
                    format!("now holds {what}, which the plan did not have consent to erase"),
                    Some("plan again; add wipe = true to its role if it may be erased"),
                );
            }
        }
    }
    out
}

/// Reads and checks `dir/manifest.toml`.
pub fn load_manifest(dir: &Path) -> Result<Manifest, Finding> {
    let path = dir.join("manifest.toml");
    let subject = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| Finding {
        subject: subject.clone(),
        message: format!("cannot be read: {e}"),
        hint: Some("pass --payload DIR, the directory that holds manifest.toml".into()),
    })?;
    let m: Manifest = toml::from_str(&text).map_err(|e| Finding {
        subject: subject.clone(),
        message: format!("is not a valid payload manifest: {}", e.message()),
        hint: None,
    })?;
    if m.format != MANIFEST_FORMAT {
        return Err(Finding {
            subject,
            message: format!(
                "has format {}, this installer reads format {MANIFEST_FORMAT}",
                m.format
            ),
            hint: Some("use the payloads that came with this installer".into()),
        });
    }
    Ok(m)
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks every payload file of the manifest (size, then sha256) and that the kinds the
/// install needs are there exactly once. Returns the manifest and the resolved paths by kind.
pub fn check_payload(
    dir: &Path,
    needed_kinds: &[&str],
) -> Result<(Manifest, BTreeMap<String, PathBuf>), Vec<Finding>> {
    let m = load_manifest(dir).map_err(|f| vec![f])?;
    let mut out = Vec::new();
    for kind in needed_kinds {
        let n = m.payload.iter().filter(|p| p.kind == *kind).count();
        if n != 1 {
            out.push(Finding {
                subject: dir.join("manifest.toml").display().to_string(),
                message: format!(
                    "lists {n} payloads of kind {kind}, the install needs exactly one"
                ),
                hint: None,
            });
        }
    }
    let mut paths = BTreeMap::new();
    for p in &m.payload {
        let path = dir.join(&p.file);
        let subject = format!("payload {} ({})", p.name, path.display());
        let finding = |message: String| Finding {
            subject: subject.clone(),
            message,
            hint: Some("copy the payload again; a damaged stick gives wrong sums".into()),
        };
        if p.file.contains("..") || Path::new(&p.file).is_absolute() {
            out.push(finding(format!(
                "has a path outside the payload directory: {}",
                p.file
            )));
            continue;
        }
        match std::fs::metadata(&path) {
            Err(e) => out.push(finding(format!("cannot be read: {e}"))),
            Ok(md) if md.len() != p.size => out.push(finding(format!(
                "is {} bytes, the manifest says {}",
                md.len(),
                p.size
            ))),
            Ok(_) => match sha256_file(&path) {
                Err(e) => out.push(finding(format!("cannot be read: {e}"))),
                Ok(sum) if !sum.eq_ignore_ascii_case(&p.sha256) => out.push(finding(format!(
                    "has sha256 {sum}, the manifest says {}",
                    p.sha256
                ))),
                Ok(_) => {
                    paths.insert(p.kind.clone(), path);
                }
            },
        }
    }
    if out.is_empty() {
        Ok((m, paths))
    } else {
        Err(out)
    }
}

#[cfg(test)]
mod tests;
