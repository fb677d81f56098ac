//! Hardware profiles: what we know about each supported mini-PC model.
//!
//! One TOML file per model lives in `hardware-profiles/<id>.toml`; every file is embedded in the
//! binary with `include_str!`, so the installer on the USB stick needs no repository. A profile
//! says how to recognise the model from DMI, which network port printed on the case is which
//! kernel interface (and which is the WAN and which the LAN by default), which disk slots exist
//! and what they are for, the minimums a TAPPaaS node needs on it, and its quirks.
//!
//! Profiles are hints, never orders: the site file overrides every default, and the planner
//! refuses ambiguous guesses instead of picking one.

use crate::inventory::{Dmi, Transport};
use crate::plan::{DiskRoleKind, Hints};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use tappaas_site::{DiskFilter, NicSelector};

mod doc;
mod glob;

pub use doc::markdown_table;
pub use glob::glob_match;

/// The embedded profile files, as `(file name, text)`. A test checks this list against the
/// directory so a new file cannot be forgotten here.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "intel-nuc13-pro.toml",
        include_str!("../../hardware-profiles/intel-nuc13-pro.toml"),
    ),
    (
        "lenovo-m720q.toml",
        include_str!("../../hardware-profiles/lenovo-m720q.toml"),
    ),
    (
        "minisforum-ms-01.toml",
        include_str!("../../hardware-profiles/minisforum-ms-01.toml"),
    ),
    (
        "minisforum-ms-s1-max.toml",
        include_str!("../../hardware-profiles/minisforum-ms-s1-max.toml"),
    ),
    (
        "protectli-vp2420.toml",
        include_str!("../../hardware-profiles/protectli-vp2420.toml"),
    ),
    (
        "qemu-lab.toml",
        include_str!("../../hardware-profiles/qemu-lab.toml"),
    ),
    (
        "qotom-q20300g9.toml",
        include_str!("../../hardware-profiles/qotom-q20300g9.toml"),
    ),
];

/// A known hardware model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HardwareProfile {
    /// Stable id, `[a-z0-9-]`, equal to the file name without `.toml`.
    pub id: String,
    /// Human name, e.g. `Lenovo ThinkCentre M720q / M920q Tiny`.
    pub name: String,
    /// Maker.
    pub vendor: String,
    /// Maker's product page.
    #[serde(default)]
    pub url: Option<String>,
    /// CPU(s) the model ships with, for humans.
    pub cpu: String,
    /// Free-form notes for humans.
    #[serde(default)]
    pub notes: String,
    /// Where the facts in this file come from.
    pub provenance: Provenance,
    /// DMI rules; the profile matches a machine when any rule matches.
    #[serde(rename = "match")]
    pub rules: Vec<DmiRule>,
    /// What a TAPPaaS node needs on this model.
    pub minimums: Minimums,
    /// Network ports, in the order printed on the case.
    #[serde(rename = "nic", default)]
    pub nics: Vec<NicPort>,
    /// Disk slots.
    #[serde(rename = "disk", default)]
    pub disks: Vec<DiskSlot>,
    /// Known quirks and what the installer does about them.
    #[serde(rename = "quirk", default)]
    pub quirks: Vec<Quirk>,
}

/// Where the facts come from, so a reader can judge them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Provenance {
    /// The documents the facts were taken from.
    #[serde(rename = "source")]
    pub sources: Vec<Source>,
    /// Someone ran `probe --capture` on a real unit and checked this file against it.
    pub verified_on_hardware: bool,
    /// What is known to be uncertain.
    #[serde(default)]
    pub notes: String,
}

/// One source document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Source {
    /// What it is, e.g. `Lenovo PSREF, ThinkCentre M720q Tiny`.
    pub title: String,
    /// Where it is, when it has an address.
    #[serde(default)]
    pub url: Option<String>,
    /// Which facts it supports.
    pub used_for: String,
}

/// A DMI match rule: every given field must match its glob (`*`, `?`, `[...]`, ASCII
/// case-insensitive, on the value with surrounding white space removed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DmiRule {
    /// Glob on `sys_vendor`.
    #[serde(default)]
    pub sys_vendor: Option<String>,
    /// Glob on `product_name`.
    #[serde(default)]
    pub product_name: Option<String>,
    /// Glob on `product_version`.
    #[serde(default)]
    pub product_version: Option<String>,
    /// Glob on `board_vendor`.
    #[serde(default)]
    pub board_vendor: Option<String>,
    /// Glob on `board_name`.
    #[serde(default)]
    pub board_name: Option<String>,
}

impl DmiRule {
    fn fields<'a>(&'a self, dmi: &'a Dmi) -> [(Option<&'a str>, &'a str); 5] {
        [
            (self.sys_vendor.as_deref(), dmi.sys_vendor.as_str()),
            (self.product_name.as_deref(), dmi.product_name.as_str()),
            (
                self.product_version.as_deref(),
                dmi.product_version.as_str(),
            ),
            (self.board_vendor.as_deref(), dmi.board_vendor.as_str()),
            (self.board_name.as_deref(), dmi.board_name.as_str()),
        ]
    }

    /// Whether every field of the rule matches (a rule without fields matches nothing).
    pub fn matches(&self, dmi: &Dmi) -> bool {
        let fields = self.fields(dmi);
        fields.iter().any(|(p, _)| p.is_some())
            && fields
                .iter()
                .all(|(p, v)| p.is_none_or(|p| glob_match(p, v.trim())))
    }

    /// How specific the rule is: the number of fields it constrains, then the number of
    /// literal (non-wildcard) characters. Higher wins.
    pub fn specificity(&self) -> (usize, usize) {
        let empty = Dmi::default();
        let pats: Vec<&str> = self.fields(&empty).iter().filter_map(|(p, _)| *p).collect();
        let literal = pats
            .iter()
            .map(|p| p.chars().filter(|c| !matches!(c, '*' | '?')).count())
            .sum();
        (pats.len(), literal)
    }
}

/// What a node needs on this model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Minimums {
    /// Installed RAM in bytes (the kernel's `MemTotal` is a few percent lower).
    pub ram_bytes: u64,
    /// Disks (besides the USB stick): boot plus at least one data disk.
    pub disks: u32,
    /// Smallest boot disk in bytes.
    pub boot_disk_bytes: u64,
    /// The CPU must offer VT-x / AMD-V for Proxmox to run VMs with KVM.
    pub virtualization: bool,
}

/// The default job of a network port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortRole {
    /// To the upstream router (the firewall VM's WAN).
    Wan,
    /// To the switch between the nodes (management and VLANs).
    Lan,
}

/// A network port printed on the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NicPort {
    /// The label on the case (or our name for it when the case has none), e.g. `ETH1`.
    pub label: String,
    /// Kernel names seen for this port, most common first (they depend on firmware tables).
    pub names: Vec<String>,
    /// PCI address, when it is fixed for the model; the planner then selects by it.
    #[serde(default)]
    pub pci: Option<String>,
    /// Kernel driver, e.g. `igc`.
    pub driver: String,
    /// Controller, e.g. `Intel I226-V`.
    pub chip: String,
    /// PCI or USB `vendor:device` id, e.g. `8086:125c`.
    pub ids: String,
    /// Connector: `rj45`, `sfp+`, `usb`, `virtual`.
    pub connector: String,
    /// Fastest link speed in Mbit/s.
    pub speed_mbps: u32,
    /// Default role, if any.
    #[serde(default)]
    pub role: Option<PortRole>,
    /// Present only on some variants or with an add-on (riser card, expansion module).
    #[serde(default)]
    pub optional: bool,
    /// Notes for humans.
    #[serde(default)]
    pub notes: String,
}

impl NicPort {
    /// The selector that finds this port on a probed machine: the PCI address when the model
    /// fixes it, else the most common kernel name.
    pub fn selector(&self) -> Option<NicSelector> {
        match (&self.pci, self.names.first()) {
            (Some(pci), _) => Some(NicSelector::Pci(pci.clone())),
            (None, Some(name)) => Some(NicSelector::Name(name.clone())),
            (None, None) => None,
        }
    }
}

/// The default job of a disk slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotRole {
    /// Proxmox root pool.
    Boot,
    /// Redundant VM pool.
    Tank1,
    /// Bulk / backup pool.
    Tank2,
}

impl SlotRole {
    /// `boot`, `tank1`, `tank2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotRole::Boot => "boot",
            SlotRole::Tank1 => "tank1",
            SlotRole::Tank2 => "tank2",
        }
    }
}

/// A disk slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiskSlot {
    /// Our name for the slot, e.g. `M.2 2280 NVMe slot`.
    pub label: String,
    /// How a disk in it attaches.
    pub transport: Transport,
    /// Form factor, e.g. `M.2 2280`, `2.5in`, `mSATA`, `soldered`.
    pub form_factor: String,
    /// Default role, if any.
    #[serde(default)]
    pub role: Option<SlotRole>,
    /// Glob on the disk serial that identifies the slot (only where we control serials: the lab).
    #[serde(default)]
    pub serial: Option<String>,
    /// Present only on some variants.
    #[serde(default)]
    pub optional: bool,
    /// Notes for humans (bus speed, limits).
    #[serde(default)]
    pub notes: String,
}

/// A known quirk of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Quirk {
    /// Stable id, `[a-z0-9-]`.
    pub id: String,
    /// What is odd.
    pub description: String,
    /// What the installer (or the operator) must do about it.
    pub action: String,
}

/// Why a profile file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not valid TOML for a profile.
    #[error("{file}: {source}")]
    Parse {
        /// File name.
        file: String,
        /// Parser error (with line and column).
        source: Box<toml::de::Error>,
    },
    /// Parsed, but inconsistent.
    #[error("{file}: {}", problems.join("; "))]
    Invalid {
        /// File name.
        file: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// Parses and validates one profile file; `file` names it in errors and must be `<id>.toml`.
pub fn parse(file: &str, text: &str) -> Result<HardwareProfile, ProfileError> {
    let p: HardwareProfile = toml::from_str(text).map_err(|e| ProfileError::Parse {
        file: file.to_string(),
        source: Box::new(e),
    })?;
    let mut problems = p.problems();
    if file.strip_suffix(".toml") != Some(p.id.as_str()) {
        problems.push(format!("id {:?} differs from the file name", p.id));
    }
    if problems.is_empty() {
        Ok(p)
    } else {
        Err(ProfileError::Invalid {
            file: file.to_string(),
            problems,
        })
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl HardwareProfile {
    /// Everything inconsistent in the profile (empty when it is fine).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !is_id(&self.id) {
            out.push(format!("id {:?} is not [a-z0-9-]+", self.id));
        }
        if self.provenance.sources.is_empty() {
            out.push("provenance names no source".into());
        }
        if self.rules.is_empty() {
            out.push("no [[match]] rule".into());
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.specificity().0 == 0 {
                out.push(format!("[[match]] #{} constrains no field", i + 1));
            }
        }
        let mut labels = BTreeSet::new();
        for n in &self.nics {
            if !labels.insert(n.label.as_str()) {
                out.push(format!("port label {:?} appears twice", n.label));
            }
            if n.selector().is_none() {
                out.push(format!("port {:?} has neither pci nor names", n.label));
            }
        }
        for role in [PortRole::Wan, PortRole::Lan] {
            if self.nics.iter().filter(|n| n.role == Some(role)).count() > 1 {
                out.push(format!("more than one port has role {role:?}"));
            }
        }
        let mut slots = BTreeSet::new();
        for d in &self.disks {
            if !slots.insert(d.label.as_str()) {
                out.push(format!("disk slot {:?} appears twice", d.label));
            }
        }
        let mut quirks = BTreeSet::new();
        for q in &self.quirks {
            if !is_id(&q.id) || !quirks.insert(q.id.as_str()) {
                out.push(format!("quirk id {:?} is not a unique [a-z0-9-]+ id", q.id));
            }
        }
        let m = &self.minimums;
        if !(1 << 30..=1 << 40).contains(&m.ram_bytes) {
            out.push(format!(
                "minimums.ram-bytes {} is not 1 GiB..1 TiB",
                m.ram_bytes
            ));
        }
        if m.disks == 0 || m.disks as usize > self.disks.len() {
            out.push(format!(
                "minimums.disks {} is not 1..={} (the slot count)",
                m.disks,
                self.disks.len()
            ));
        }
        if m.boot_disk_bytes < 8_000_000_000 {
            out.push("minimums.boot-disk-bytes is below 8 GB".into());
        }
        out
    }

    /// The port with this label.
    pub fn port(&self, label: &str) -> Option<&NicPort> {
        self.nics.iter().find(|n| n.label == label)
    }

    /// The port whose default role is `role`.
    pub fn port_for(&self, role: PortRole) -> Option<&NicPort> {
        self.nics.iter().find(|n| n.role == Some(role))
    }

    /// Every port label with the selector that finds it (for `NicSelector::Port`).
    pub fn port_selectors(&self) -> Vec<(String, NicSelector)> {
        self.nics
            .iter()
            .filter_map(|n| n.selector().map(|s| (n.label.clone(), s)))
            .collect()
    }

    /// The label of the default port for `role`, only when that port is always present (a
    /// default that points at an optional add-on would fail on every machine without it).
    pub fn default_port(&self, role: PortRole) -> Option<&str> {
        self.port_for(role)
            .filter(|n| !n.optional)
            .map(|n| n.label.as_str())
    }

    /// Default disk filters per role, only where the slots tell roles apart: a role gets a
    /// filter (transport, plus the slot serial glob if any, `count` = its slots) only when no
    /// slot of another role could match the same filter. The planner refuses a filter that
    /// matches more disks than `count`, so a wrong guess never picks silently.
    pub fn disk_hints(&self) -> Vec<(SlotRole, DiskFilter)> {
        let mut groups: Vec<(SlotRole, Transport, Option<&str>, u32)> = Vec::new();
        for d in self.disks.iter().filter(|d| !d.optional) {
            let Some(role) = d.role else { continue };
            let key = (role, d.transport, d.serial.as_deref());
            match groups.iter_mut().find(|g| (g.0, g.1, g.2) == key) {
                Some(g) => g.3 += 1,
                None => groups.push((key.0, key.1, key.2, 1)),
            }
        }
        let clash = |a: &(SlotRole, Transport, Option<&str>, u32)| {
            self.disks.iter().any(|d| {
                d.role.is_some_and(|r| r != a.0)
                    && d.transport == a.1
                    && match (a.2, d.serial.as_deref()) {
                        (Some(x), Some(y)) => x == y,
                        _ => true,
                    }
            })
        };
        let mut out: Vec<(SlotRole, DiskFilter)> = groups
            .iter()
            .filter(|g| !clash(g))
            .map(|&(role, t, serial, count)| {
                (
                    role,
                    DiskFilter {
                        transport: Some(t.as_str().to_string()),
                        serial: serial.map(str::to_string),
                        count,
                        ..DiskFilter::default()
                    },
                )
            })
            .collect();
        out.sort_by_key(|(r, _)| *r);
        out
    }

    /// Quirks phrased for a plan's warnings: `id: description Action: action`.
    pub fn quirk_lines(&self) -> Vec<String> {
        self.quirks
            .iter()
            .map(|q| format!("{}: {} Action: {}", q.id, q.description, q.action))
            .collect()
    }

    /// What this profile tells the planner: its port labels and default ports, the disk
    /// filters of its slots, its minimums and quirks.
    pub fn hints(&self) -> Hints {
        Hints {
            profile: Some(self.id.clone()),
            ports: self.port_selectors(),
            wan_port: self.default_port(PortRole::Wan).map(str::to_string),
            lan_port: self.default_port(PortRole::Lan).map(str::to_string),
            disks: self
                .disk_hints()
                .into_iter()
                .map(|(role, f)| (role.into(), f))
                .collect(),
            min_ram_bytes: Some(self.minimums.ram_bytes),
            min_boot_disk_bytes: Some(self.minimums.boot_disk_bytes),
            quirks: self.quirk_lines(),
        }
    }
}

impl From<SlotRole> for DiskRoleKind {
    fn from(r: SlotRole) -> DiskRoleKind {
        match r {
            SlotRole::Boot => DiskRoleKind::Boot,
            SlotRole::Tank1 => DiskRoleKind::Tank1,
            SlotRole::Tank2 => DiskRoleKind::Tank2,
        }
    }
}

/// The hints of the profile `id` (none: no hints, the planner decides from the site alone).
pub fn hints_for(id: Option<&str>) -> Hints {
    id.and_then(find)
        .map(HardwareProfile::hints)
        .unwrap_or_default()
}

struct Loaded {
    profiles: Vec<HardwareProfile>,
    errors: Vec<String>,
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let mut profiles = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in EMBEDDED {
            match parse(file, text) {
                Ok(p) => profiles.push(p),
                // A broken embedded file drops only that profile; tests keep this list empty.
                Err(e) => errors.push(e.to_string()),
            }
        }
        profiles.sort_by(|a, b| a.id.cmp(&b.id));
        Loaded { profiles, errors }
    })
}

/// Every embedded profile, sorted by id.
pub fn profiles() -> &'static [HardwareProfile] {
    &loaded().profiles
}

/// Errors met while loading the embedded profiles (empty in a correct build).
pub fn load_errors() -> &'static [String] {
    &loaded().errors
}

/// Every profile id, sorted.
pub fn ids() -> Vec<&'static str> {
    profiles().iter().map(|p| p.id.as_str()).collect()
}

/// The profile with this id.
pub fn find(id: &str) -> Option<&'static HardwareProfile> {
    profiles().iter().find(|p| p.id == id)
}

/// The embedded profile that matches this machine; see [`match_dmi_in`].
pub fn match_dmi(dmi: &Dmi) -> Option<&'static HardwareProfile> {
    match_dmi_in(profiles(), dmi)
}

/// The profile whose most specific matching rule is the most specific of all (see
/// [`DmiRule::specificity`]); on a tie the profile listed first wins, so the answer is
/// deterministic for a given list.
pub fn match_dmi_in<'a>(list: &'a [HardwareProfile], dmi: &Dmi) -> Option<&'a HardwareProfile> {
    let mut best: Option<((usize, usize), &HardwareProfile)> = None;
    for p in list {
        let score = p
            .rules
            .iter()
            .filter(|r| r.matches(dmi))
            .map(DmiRule::specificity)
            .max();
        if let Some(s) = score {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, p));
            }
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specificity_counts_fields_then_literals() {
        let a = DmiRule {
            sys_vendor: Some("LENOVO".into()),
            product_name: Some("10T7*".into()),
            ..DmiRule::default()
        };
        let b = DmiRule {
            sys_vendor: Some("LENOVO".into()),
            ..DmiRule::default()
        };
        assert_eq!(a.specificity(), (2, 10));
        assert!(a.specificity() > b.specificity());
        assert!(!DmiRule::default().matches(&Dmi::default()));
    }
}
