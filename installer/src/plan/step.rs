//! The install's steps: which the planner orders, and the ids they travel by.
//!
//! A step id is a [`StepKind`] (what the install engine dispatches on) carried with its stable
//! string form (`preflight`, `wipe:boot-0`, `pool:tank1`), which is what the plan JSON, the
//! journal and the progress events hold. The string is made from the kind in one place
//! ([`StepKind`]'s `Display`) and read back in one place ([`StepId::from_str`]), so no
//! consumer takes a step id apart with `strip_prefix` or builds one with `format!`.

use super::{DiskPlan, DiskRoleKind, PoolPlan};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tappaas_site::Role;

/// A planned disk as step ids name it: its role and its index within the role (`tank1-0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiskKey {
    /// The disk's role.
    pub role: DiskRoleKind,
    /// Its index within the role (0-based).
    pub index: usize,
}

impl DiskKey {
    /// The key of a planned disk.
    pub fn of(d: &DiskPlan) -> DiskKey {
        DiskKey {
            role: d.role,
            index: d.index,
        }
    }

    /// Whether `d` is the disk this key names.
    pub fn names(&self, d: &DiskPlan) -> bool {
        DiskKey::of(d) == *self
    }
}

impl fmt::Display for DiskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.role, self.index)
    }
}

impl FromStr for DiskKey {
    type Err = ();

    fn from_str(s: &str) -> Result<DiskKey, ()> {
        let (role, index) = s.rsplit_once('-').ok_or(())?;
        let role = [DiskRoleKind::Boot, DiskRoleKind::Tank1, DiskRoleKind::Tank2]
            .into_iter()
            .find(|r| r.as_str() == role)
            .ok_or(())?;
        // Only the plain decimal form the planner writes, so every key has one spelling.
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let index = index.parse().map_err(|_| ())?;
        let key = DiskKey { role, index };
        if key.to_string() != s {
            return Err(());
        }
        Ok(key)
    }
}

/// What a step does. The install engine runs each kind; the order is the plan's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Check every planned disk, the payload and the live system before any write.
    Preflight,
    /// Clear one planned disk's old tables and labels.
    Wipe(DiskKey),
    /// Write and verify one planned disk's GPT.
    Partition(DiskKey),
    /// Create (or import again) the planned pool of this name.
    Pool(String),
    /// Format the EFI system partitions.
    Esp,
    /// Extract the root image.
    Root,
    /// Unpack and configure the packages in the new root.
    Packages,
    /// Write the installed system's configuration files.
    Configure,
    /// Install TAPPaaS's own files and the first-boot agent.
    Tappaas,
    /// Install the boot entries.
    Bootloader,
    /// Final properties, provenance, the log, export.
    Finish,
}

/// The kinds without a parameter, each spelled as its [`StepKind::name`] alone.
const PLAIN: [StepKind; 8] = [
    StepKind::Preflight,
    StepKind::Esp,
    StepKind::Root,
    StepKind::Packages,
    StepKind::Configure,
    StepKind::Tappaas,
    StepKind::Bootloader,
    StepKind::Finish,
];

/// Every form of step id, for the error about one this installer does not know.
const KNOWN: &str = "preflight, wipe:ROLE-N, partition:ROLE-N, pool:NAME, esp, root, packages, \
                     configure, tappaas, bootloader, finish";

impl StepKind {
    /// The id's name: the whole id of a plain step, the part before `:` of the others.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::Wipe(_) => "wipe",
            StepKind::Partition(_) => "partition",
            StepKind::Pool(_) => "pool",
            StepKind::Esp => "esp",
            StepKind::Root => "root",
            StepKind::Packages => "packages",
            StepKind::Configure => "configure",
            StepKind::Tappaas => "tappaas",
            StepKind::Bootloader => "bootloader",
            StepKind::Finish => "finish",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            StepKind::Wipe(key) | StepKind::Partition(key) => write!(f, "{name}:{key}"),
            StepKind::Pool(pool) => write!(f, "{name}:{pool}"),
            _ => f.write_str(name),
        }
    }
}

/// A step id this installer does not know (a plan or journal written by another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the plan has a step this installer does not know: {id:?} (it knows {KNOWN}); plan again \
     with this installer"
)]
pub struct UnknownStep {
    /// The id as written.
    pub id: String,
}

/// A step's stable id (journal key, progress events): its kind and the string it travels as.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepId {
    kind: StepKind,
    text: String,
}

impl StepId {
    /// What the step does.
    pub fn kind(&self) -> &StepKind {
        &self.kind
    }

    /// The stable string form, e.g. `partition:boot-0`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<StepKind> for StepId {
    fn from(kind: StepKind) -> StepId {
        let text = kind.to_string();
        StepId { kind, text }
    }
}

impl FromStr for StepId {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<StepId, UnknownStep> {
        let unknown = || UnknownStep { id: s.to_string() };
        let kind = match s.split_once(':') {
            Some(("wipe", key)) => StepKind::Wipe(key.parse().map_err(|()| unknown())?),
            Some(("partition", key)) => StepKind::Partition(key.parse().map_err(|()| unknown())?),
            Some(("pool", name)) if !name.is_empty() => StepKind::Pool(name.to_string()),
            Some(_) => return Err(unknown()),
            None => PLAIN
                .into_iter()
                .find(|k| k.name() == s)
                .ok_or_else(unknown)?,
        };
        Ok(StepId::from(kind))
    }
}

impl TryFrom<String> for StepId {
    type Error = UnknownStep;

    fn try_from(s: String) -> Result<StepId, UnknownStep> {
        s.parse()
    }
}

impl From<StepId> for String {
    fn from(id: StepId) -> String {
        id.text
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<str> for StepId {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl PartialEq<String> for StepId {
    fn eq(&self, other: &String) -> bool {
        self.text == *other
    }
}

/// One step of the install, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Stable id (journal key), e.g. `partition:boot-0`.
    pub id: StepId,
    /// What it does, in words.
    pub description: String,
    /// Destroys data (shown in red by front ends, with a text marker too).
    pub destructive: bool,
}

impl Step {
    fn new(kind: StepKind, description: impl Into<String>, destructive: bool) -> Step {
        Step {
            id: kind.into(),
            description: description.into(),
            destructive,
        }
    }
}

/// The plan's steps in order: check, the disks, the pools, then the system on them.
pub(super) fn steps(disks: &[DiskPlan], pools: &[PoolPlan], role: Role) -> Vec<Step> {
    let mut s = vec![Step::new(
        StepKind::Preflight,
        "check every planned disk, the payloads and the machine before any write",
        false,
    )];
    s.extend(disks.iter().flat_map(disk_steps));
    s.extend(pools.iter().map(pool_step));
    s.extend(system_steps(role));
    s
}

/// Wipe, then partition, one disk.
fn disk_steps(d: &DiskPlan) -> [Step; 2] {
    let key = DiskKey::of(d);
    let wipe = match &d.erases {
        Some(what) => format!("erase {} ({what})", d.disk),
        None => format!("clear stale signatures on {}", d.disk),
    };
    let labels: Vec<&str> = d.partitions.iter().map(|p| p.label.as_str()).collect();
    [
        Step::new(StepKind::Wipe(key), wipe, true),
        Step::new(
            StepKind::Partition(key),
            format!("write GPT on {}: {}", d.disk, labels.join(", ")),
            true,
        ),
    ]
}

fn pool_step(p: &PoolPlan) -> Step {
    let members: usize = p.vdevs.iter().map(|v| v.members.len()).sum();
    Step::new(
        StepKind::Pool(p.name.clone()),
        format!(
            "create pool {} ({}, {} disk{})",
            p.name,
            p.vdevs
                .first()
                .map(|v| v.layout.as_str())
                .unwrap_or("single"),
            members,
            if members == 1 { "" } else { "s" }
        ),
        true,
    )
}

/// The steps after the pools: the root file system, its configuration, booting, finishing.
fn system_steps(role: Role) -> [Step; 7] {
    [
        Step::new(
            StepKind::Esp,
            "format the EFI system partitions (FAT32)",
            true,
        ),
        Step::new(
            StepKind::Root,
            "extract the Proxmox VE root image onto rpool/ROOT/pve-1",
            false,
        ),
        Step::new(
            StepKind::Packages,
            "unpack and configure the Proxmox VE packages in the new root",
            false,
        ),
        Step::new(
            StepKind::Configure,
            "write hostname, hosts, network interfaces, resolv.conf, timezone, keyboard, \
             machine-id, hostid, root password hash and SSH keys",
            false,
        ),
        Step::new(
            StepKind::Tappaas,
            format!(
                "install /etc/tappaas (node manifest, site file, first-boot secrets, 0600) and \
                 enable the first-boot agent ({role})"
            ),
            false,
        ),
        Step::new(
            StepKind::Bootloader,
            "install boot entries on every ESP (last, so a partial install never boots)",
            false,
        ),
        Step::new(
            StepKind::Finish,
            "set sync=standard, mountpoints and bootfs; write provenance; copy the log; export \
             pools",
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: DiskRoleKind, index: usize) -> DiskKey {
        DiskKey { role, index }
    }

    /// Every kind and the string the plan JSON, the journal and the progress events have
    /// always carried for it.
    fn every_kind() -> Vec<(StepKind, &'static str)> {
        vec![
            (StepKind::Preflight, "preflight"),
            (StepKind::Wipe(key(DiskRoleKind::Boot, 0)), "wipe:boot-0"),
            (StepKind::Wipe(key(DiskRoleKind::Tank2, 3)), "wipe:tank2-3"),
            (
                StepKind::Partition(key(DiskRoleKind::Tank1, 1)),
                "partition:tank1-1",
            ),
            (
                StepKind::Partition(key(DiskRoleKind::Boot, 12)),
                "partition:boot-12",
            ),
            (StepKind::Pool("rpool".into()), "pool:rpool"),
            (StepKind::Pool("tank1".into()), "pool:tank1"),
            (StepKind::Pool("backup-pool".into()), "pool:backup-pool"),
            (StepKind::Esp, "esp"),
            (StepKind::Root, "root"),
            (StepKind::Packages, "packages"),
            (StepKind::Configure, "configure"),
            (StepKind::Tappaas, "tappaas"),
            (StepKind::Bootloader, "bootloader"),
            (StepKind::Finish, "finish"),
        ]
    }

    #[test]
    fn every_kind_is_written_as_the_old_string_and_read_back() {
        for (kind, text) in every_kind() {
            let id = StepId::from(kind.clone());
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
            assert_eq!(id, *text);
            assert_eq!(id.kind(), &kind);
            assert_eq!(text.parse::<StepId>(), Ok(id.clone()), "{text}");
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<StepId>(&json).unwrap(), id);
        }
        // Every plain kind is in the table the parser reads.
        for k in PLAIN {
            assert!(every_kind().iter().any(|(e, _)| *e == k), "{k}");
        }
    }

    #[test]
    fn an_unknown_step_id_is_refused_with_what_this_installer_knows() {
        for bad in [
            "reboot",
            "",
            "Preflight",
            "preflight:x",
            "wipe",
            "wipe:",
            "wipe:boot",
            "wipe:boot-",
            "wipe:boot-x",
            "wipe:boot-01",
            "wipe:boot-+1",
            "wipe:floppy-0",
            "partition:tank3-0",
            "pool:",
            "pool",
            "format:esp",
        ] {
            let e = bad.parse::<StepId>().unwrap_err();
            assert_eq!(e.id, bad);
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "the plan has a step this installer does not know: {bad:?}"
                )) && msg.contains("wipe:ROLE-N")
                    && msg.ends_with("plan again with this installer"),
                "{msg}"
            );
        }
        let e = serde_json::from_str::<Step>(
            r#"{"id":"reboot","description":"reboot","destructive":false}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("the plan has a step this installer does not know: \"reboot\""),
            "{e}"
        );
    }
}
