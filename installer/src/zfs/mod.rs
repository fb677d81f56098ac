//! ZFS: where `rpool`, `tank1` and `tank2` are created, found again after a crash, and checked
//! against the plan. Commands are argument vectors for the engine's runner; the tools' output is
//! parsed (see [`parse`]) and compared with the [`PoolPlan`].
//!
//! Creation is idempotent in the disko sense: before creating a pool the engine lists what
//! `zpool import` can see, and a pool of the planned name on exactly the planned partitions
//! (left by an install that crashed) is imported instead of created. Anything else on those
//! partitions was erased by the wipe step, with the site's consent, before we get here.

pub mod parse;

use crate::plan::{DiskRoleKind, PoolPlan};
use parse::PoolStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tappaas_site::Layout;

/// `zpool create` for a planned pool, mounted below `altroot` so nothing lands on the live
/// system, with no cache file (the installed system imports by scanning, as Proxmox does).
///
/// No `-f`: the wipe step has cleared old labels, so ZFS's own in-use check stays armed as a
/// second guard against writing a disk we did not mean to.
pub fn create_args(p: &PoolPlan, altroot: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec!["create".into()];
    for (k, v) in &p.properties {
        a.push("-o".into());
        a.push(format!("{k}={v}"));
    }
    a.push("-o".into());
    a.push("cachefile=none".into());
    for (k, v) in &p.fs_properties {
        a.push("-O".into());
        a.push(format!("{k}={v}"));
    }
    if p.role == DiskRoleKind::Boot {
        // Fast while installing, as Proxmox does; `finish_args` restores sync=standard.
        a.push("-O".into());
        a.push("sync=disabled".into());
    }
    a.push("-R".into());
    a.push(altroot.display().to_string());
    a.push(p.name.clone());
    for v in &p.vdevs {
        if v.layout != Layout::Single {
            a.push(v.layout.as_str().into());
        }
        a.extend(v.members.iter().cloned());
    }
    a
}

/// `zfs create` calls for the pool's datasets, in order. The root dataset of rpool gets `/`
/// and `var-lib-vz` gets `/var/lib/vz`, as Proxmox's installer sets them.
pub fn dataset_args(p: &PoolPlan) -> Vec<Vec<String>> {
    p.datasets
        .iter()
        .map(|d| {
            let mut a = vec!["create".to_string()];
            let leaf = d.rsplit('/').next().unwrap_or(d);
            let mountpoint = match (leaf, d.ends_with("ROOT/pve-1")) {
                (_, true) => Some("/"),
                ("var-lib-vz", _) => Some("/var/lib/vz"),
                ("ROOT", _) => Some("none"),
                _ => None,
            };
            if let Some(m) = mountpoint {
                a.push("-o".into());
                a.push(format!("mountpoint={m}"));
            }
            a.push(d.clone());
            a
        })
        .collect()
}

/// The last settings before export: `sync=standard` on rpool and its `bootfs`.
pub fn finish_args(p: &PoolPlan) -> Vec<Vec<String>> {
    if p.role != DiskRoleKind::Boot {
        return Vec::new();
    }
    let root = p
        .datasets
        .iter()
        .find(|d| d.ends_with("ROOT/pve-1"))
        .cloned()
        .unwrap_or_else(|| format!("{}/ROOT/pve-1", p.name));
    vec![
        vec![
            "zfs".into(),
            "set".into(),
            "sync=standard".into(),
            p.name.clone(),
        ],
        vec![
            "zpool".into(),
            "set".into(),
            format!("bootfs={root}"),
            p.name.clone(),
        ],
    ]
}

/// What to do about a planned pool, given what ZFS can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolAction {
    /// Nothing of it exists: create it.
    Create,
    /// An earlier, interrupted run created it: import it (by numeric id, never by a name that
    /// could be ambiguous).
    Import {
        /// The pool GUID from `zpool import`.
        id: String,
    },
    /// It is imported already (a rerun in the same live session).
    AlreadyImported,
    /// Something else is there; the install stops with this explanation.
    Conflict(String),
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The pool's shape as (vdev kind, sorted member basenames), comparable between a plan and
/// what `zpool status`/`zpool import` show (which may print full paths or basenames).
fn shape_of_plan(p: &PoolPlan) -> Vec<(String, BTreeSet<String>)> {
    p.vdevs
        .iter()
        .map(|v| {
            (
                match v.layout {
                    Layout::Single => "disk".to_string(),
                    l => l.as_str().to_string(),
                },
                v.members.iter().map(|m| basename(m).to_string()).collect(),
            )
        })
        .collect()
}

fn shape_of_status(s: &PoolStatus) -> Vec<(String, BTreeSet<String>)> {
    s.vdevs
        .iter()
        .map(|v| {
            (
                v.kind.clone(),
                v.members.iter().map(|m| basename(m).to_string()).collect(),
            )
        })
        .collect()
}

fn describe_shape(shape: &[(String, BTreeSet<String>)]) -> String {
    shape
        .iter()
        .map(|(k, m)| format!("{k}({})", m.iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Decides between create, import and stop, from `zpool status -P` of imported pools and the
/// `zpool import -d /dev/disk/by-id` listing.
pub fn decide(p: &PoolPlan, imported: &[PoolStatus], importable: &[PoolStatus]) -> PoolAction {
    let want = shape_of_plan(p);
    if let Some(s) = imported.iter().find(|s| s.name == p.name) {
        let have = shape_of_status(s);
        return if have == want {
            PoolAction::AlreadyImported
        } else {
            PoolAction::Conflict(format!(
                "a pool named {} is already imported with vdevs {}, but the plan wants {}; \
                 export it (zpool export {}) or rename the pool in the site file",
                p.name,
                describe_shape(&have),
                describe_shape(&want),
                p.name
            ))
        };
    }
    let ours: BTreeSet<String> = want.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
    for s in importable {
        let have = shape_of_status(s);
        let theirs: BTreeSet<String> = have.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
        if s.name == p.name && have == want {
            if let Some(id) = &s.id {
                return PoolAction::Import { id: id.clone() };
            }
        }
        if !ours.is_disjoint(&theirs) {
            return PoolAction::Conflict(format!(
                "the planned partitions of {} still carry pool {} (vdevs {}); the wipe step \
                 should have cleared it: rerun the install from the start",
                p.name,
                s.name,
                describe_shape(&have)
            ));
        }
    }
    PoolAction::Create
}

/// Compares a created pool with the plan: layout and members, properties, datasets. Returns
/// every difference, in words.
pub fn verify(
    p: &PoolPlan,
    status: &PoolStatus,
    props: &BTreeMap<(String, String), String>,
    datasets: &[String],
) -> Vec<String> {
    let mut diffs = Vec::new();
    let (want, have) = (shape_of_plan(p), shape_of_status(status));
    if want != have {
        diffs.push(format!(
            "pool {} has vdevs {}, the plan wants {}",
            p.name,
            describe_shape(&have),
            describe_shape(&want)
        ));
    }
    if status.state != "ONLINE" {
        diffs.push(format!("pool {} is {}, not ONLINE", p.name, status.state));
    }
    for (k, v) in &p.properties {
        match props.get(&(p.name.clone(), k.clone())) {
            Some(got) if got == v => {}
            Some(got) => diffs.push(format!("pool {} has {k}={got}, the plan wants {v}", p.name)),
            None => diffs.push(format!("pool {} does not report {k}", p.name)),
        }
    }
    for (k, v) in &p.fs_properties {
        match props.get(&(p.name.clone(), k.clone())) {
            Some(got) if got == v => {}
            Some(got) => diffs.push(format!(
                "dataset {} has {k}={got}, the plan wants {v}",
                p.name
            )),
            None => diffs.push(format!("dataset {} does not report {k}", p.name)),
        }
    }
    for d in &p.datasets {
        if !datasets.contains(d) {
            diffs.push(format!("dataset {d} is missing"));
        }
    }
    diffs
}

#[cfg(test)]
mod tests;
