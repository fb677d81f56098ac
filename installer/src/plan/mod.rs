//! `plan(inventory, site, node) -> Plan`: the pure, deterministic heart of the installer.
//!
//! Everything destructive is decided here and shown before anything happens: which disk gets
//! which partitions, which pools are made of what, which disks are left alone and why. No I/O:
//! the same inputs give the same plan, byte for byte, which is what the golden tests pin.

mod disks;
mod holdings;
mod layout;
mod nics;
mod node;
mod render;
mod step;
#[cfg(test)]
mod tests;

pub(crate) use holdings::holdings;
pub use holdings::{interrupted_install, marked_label, MARKER_SEPARATOR};
pub use layout::{PartKind, GPT_TYPE_BIOS_BOOT, GPT_TYPE_ESP, GPT_TYPE_ZFS};
pub use node::{select_node, NodeChoice};
pub use render::render_human;
pub use step::{DiskKey, Step, StepId, StepKind, UnknownStep};

use crate::inventory::{Disk, FirmwareMode, Inventory};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use tappaas_site::{DiskFilter, Layout, NicSelector, Pos, Role, Site};

/// Version of the JSON form of a plan (`plan --json`).
pub const PLAN_SCHEMA: u32 = 1;

/// What the hardware profile (if any) contributes: defaults for NIC and disk roles, minimums
/// and quirks. Built by the caller from `profile::HardwareProfile`, so the planner stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// The profile's id, shown in the plan.
    pub profile: Option<String>,
    /// Port labels printed on the case, each with the selector that finds that port.
    pub ports: Vec<(String, NicSelector)>,
    /// Default WAN port (a label from `ports`).
    pub wan_port: Option<String>,
    /// Default LAN port (a label from `ports`).
    pub lan_port: Option<String>,
    /// Default disk filters per role, used when a role lists no disks.
    pub disks: Vec<(DiskRoleKind, DiskFilter)>,
    /// Minimum RAM in bytes.
    pub min_ram_bytes: Option<u64>,
    /// Smallest acceptable boot disk in bytes.
    pub min_boot_disk_bytes: Option<u64>,
    /// Quirks to show in the plan (already phrased for a human).
    pub quirks: Vec<String>,
}

/// The three disk roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskRoleKind {
    /// Proxmox root: BIOS boot + ESP + rpool partition.
    Boot,
    /// Redundant VM pool.
    Tank1,
    /// Bulk/backup pool.
    Tank2,
}

impl DiskRoleKind {
    /// Site-file section name (`boot`, `tank1`, `tank2`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskRoleKind::Boot => "boot",
            DiskRoleKind::Tank1 => "tank1",
            DiskRoleKind::Tank2 => "tank2",
        }
    }
}

impl fmt::Display for DiskRoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A planned install of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_SCHEMA`].
    pub schema: u32,
    /// The site's name.
    pub site: String,
    /// Which node this is and why.
    pub node: NodePlan,
    /// The "install in progress" marker: until `finish`, every partition this install writes
    /// is named `<label>~<marker>`, so that a rerun after a power cut recognises its own
    /// unfinished work (see `docs/install.md`).
    pub install_marker: String,
    /// The machine as probed.
    pub machine: MachineSummary,
    /// Disks that will be written, in role order.
    pub disks: Vec<DiskPlan>,
    /// Disks that will NOT be touched, and why.
    pub untouched: Vec<Untouched>,
    /// Pools to create.
    pub pools: Vec<PoolPlan>,
    /// Hostname, addresses, bridges, cluster role.
    pub system: SystemPlan,
    /// The ordered steps of the install.
    pub steps: Vec<Step>,
    /// Things the user should know that do not stop the install.
    pub warnings: Vec<String>,
}

/// The node being installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Host name.
    pub name: String,
    /// Node number.
    pub id: u8,
    /// Role in the cluster.
    pub role: Role,
    /// Hardware profile used for defaults.
    pub profile: Option<String>,
    /// How the node was recognised (e.g. "MAC 58:47:ca:00:00:01 on enp1s0").
    pub identified_by: String,
    /// Replaces a failed node of the same name.
    pub replace: bool,
}

/// The probed machine in one glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSummary {
    /// `sys_vendor product_name`.
    pub product: String,
    /// CPU model.
    pub cpu: String,
    /// RAM in bytes.
    pub memory_bytes: u64,
    /// UEFI or BIOS.
    pub firmware: FirmwareMode,
}

/// The identity of a disk, as shown to the user and used by the install engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRef {
    /// Kernel name at planning time (informative only: never used to find the disk).
    pub name: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// WWN when known.
    pub wwn: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Logical sector size.
    pub logical_sector_size: u32,
    /// The stable path the install engine opens: `/dev/disk/by-id/<link>`.
    pub by_id: String,
}

impl DiskRef {
    fn from_disk(d: &Disk, by_id: &str) -> DiskRef {
        DiskRef {
            name: d.name.clone(),
            model: d.model.clone().unwrap_or_else(|| "unknown model".into()),
            serial: d.serial.clone().unwrap_or_else(|| "unknown".into()),
            wwn: d.wwn.clone(),
            size_bytes: d.size_bytes,
            logical_sector_size: d.logical_sector_size,
            by_id: format!("/dev/disk/by-id/{by_id}"),
        }
    }
}

impl fmt::Display for DiskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (serial {}, {})",
            self.model,
            self.serial,
            crate::inventory::human_bytes(self.size_bytes)
        )
    }
}

/// What happens to one disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskPlan {
    /// The disk.
    pub disk: DiskRef,
    /// Its role.
    pub role: DiskRoleKind,
    /// Index within the role (0-based), used in partition labels.
    pub index: usize,
    /// What the disk holds now and will be erased (consent was given); `None` if blank.
    pub erases: Option<String>,
    /// The partitions to write (GPT).
    pub partitions: Vec<PartitionPlan>,
}

/// One GPT partition to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPlan {
    /// Partition number.
    pub number: u32,
    /// What it is for.
    pub kind: PartKind,
    /// First LBA.
    pub start_lba: u64,
    /// Last LBA (inclusive).
    pub end_lba: u64,
    /// Start in bytes.
    pub start_bytes: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// GPT type GUID.
    pub type_guid: String,
    /// GPT partition name, e.g. `tappaas-tank1-0`.
    pub label: String,
    /// The stable path of the partition once written (`...-partN`).
    pub by_id: String,
}

/// A disk that is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Untouched {
    /// The disk (kernel name, model, serial, size).
    pub disk: String,
    /// Why it is not touched.
    pub reason: String,
}

/// One vdev of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vdev {
    /// Layout of this vdev.
    pub layout: Layout,
    /// Members as by-id partition paths.
    pub members: Vec<String>,
}

/// A pool to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPlan {
    /// Pool name.
    pub name: String,
    /// Which role's disks it lives on.
    pub role: DiskRoleKind,
    /// Data vdevs.
    pub vdevs: Vec<Vdev>,
    /// Pool properties (`zpool create -o`).
    pub properties: BTreeMap<String, String>,
    /// Root dataset properties (`zpool create -O`).
    pub fs_properties: BTreeMap<String, String>,
    /// Datasets to create inside, in order.
    pub datasets: Vec<String>,
    /// Usable capacity estimate in bytes.
    pub usable_bytes: u64,
}

/// One Linux bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgePlan {
    /// Bridge name (`lan`, `wan`).
    pub name: String,
    /// The physical port: interface name and MAC.
    pub port: String,
    /// MAC of the port, so the install engine can pin the name.
    pub port_mac: String,
    /// Address with prefix, if the host has one on this bridge.
    pub address: Option<String>,
    /// Gateway, if this bridge carries the default route.
    pub gateway: Option<Ipv4Addr>,
    /// VLAN-aware with bridge-vids 2-4094.
    pub vlan_aware: bool,
}

/// What the node will do in the cluster at first boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPlan {
    /// Cluster name.
    pub name: String,
    /// What first boot does, in words.
    pub action: String,
    /// The primary's management address (the join target).
    pub primary_address: Ipv4Addr,
    /// Corosync link0 address.
    pub link0: Ipv4Addr,
}

/// System settings written into the installed root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPlan {
    /// Short host name.
    pub hostname: String,
    /// Fully qualified name.
    pub fqdn: String,
    /// Management address with prefix.
    pub address: String,
    /// Default gateway (the firewall).
    pub gateway: Ipv4Addr,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Bridges.
    pub bridges: Vec<BridgePlan>,
    /// Cluster membership.
    pub cluster: ClusterPlan,
    /// Time zone.
    pub timezone: String,
    /// Keyboard layout.
    pub keyboard: String,
    /// Number of root SSH keys installed.
    pub ssh_keys: usize,
}

/// One reason the site does not fit the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where in the site file, if the problem comes from a specific entry.
    pub pos: Option<Pos>,
    /// The site-file path, e.g. `node[1].tank1`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

/// Every reason the site does not fit the machine, all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    /// The node being planned, when known.
    pub node: Option<String>,
    /// The problems, in site-file order.
    pub problems: Vec<Problem>,
}

impl PlanError {
    /// Renders every problem as `FILE:LINE:COL: error: PATH: MESSAGE` plus a hint line.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for p in &self.problems {
            let at = match p.pos {
                Some(pos) => format!("{file}:{pos}"),
                None => file.to_string(),
            };
            out.push_str(&format!("{at}: error: {}: {}\n", p.path, p.message));
            if let Some(h) = &p.hint {
                out.push_str(&format!("  hint: {h}\n"));
            }
        }
        out
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("site"))
    }
}

impl std::error::Error for PlanError {}

/// Collects problems while planning, so the user sees all of them at once.
#[derive(Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(
        &mut self,
        pos: Option<Pos>,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.0.push(Problem {
            pos,
            path: path.into(),
            message: message.into(),
            hint,
        });
    }
}

/// Plans the install of `choice` (the node this machine is) onto `inv`.
///
/// Pure: reads only its arguments. Returns every problem at once when the site does not fit
/// the hardware.
pub fn plan(
    inv: &Inventory,
    site: &Site,
    choice: &NodeChoice,
    hints: &Hints,
) -> Result<Plan, PlanError> {
    let node = &site.nodes[choice.index];
    let npath = format!("node[{}]", choice.index);
    let mut problems = Problems::default();
    let mut warnings = Vec::new();

    check_machine(inv, hints, node.pos, &npath, &mut problems, &mut warnings);
    let (picked, install_marker) = disks::assign(
        inv,
        &site.site.name,
        node,
        hints,
        &npath,
        &mut problems,
        &mut warnings,
    );
    let bridges = nics::assign(inv, site, node, hints, &npath, &mut problems);

    if !problems.0.is_empty() {
        return Err(PlanError {
            node: Some(node.name.clone()),
            problems: problems.0,
        });
    }

    let disk_plans = layout::disk_plans(&picked, &mut warnings);
    let pools = layout::pools(site, &picked, &disk_plans);
    let untouched = disks::untouched(inv, &picked);
    let system = system_plan(site, node, bridges);
    let steps = step::steps(&disk_plans, &pools, node.role);
    warnings.extend(hints.quirks.iter().cloned());

    Ok(Plan {
        schema: PLAN_SCHEMA,
        site: site.site.name.clone(),
        node: NodePlan {
            name: node.name.clone(),
            id: node.id,
            role: node.role,
            profile: hints.profile.clone().or_else(|| node.profile.clone()),
            identified_by: choice.reason.clone(),
            replace: node.replace,
        },
        install_marker,
        machine: MachineSummary {
            product: format!("{} {}", inv.dmi.sys_vendor, inv.dmi.product_name)
                .trim()
                .to_string(),
            cpu: inv.cpu.model.clone(),
            memory_bytes: inv.memory.total_bytes,
            firmware: inv.firmware.mode,
        },
        disks: disk_plans,
        untouched,
        pools,
        system,
        steps,
        warnings,
    })
}

/// The smallest RAM a TAPPaaS node runs on when its profile does not say otherwise.
pub const DEFAULT_MIN_RAM: u64 = 8 * 1024 * 1024 * 1024;
/// The smallest boot disk when the profile does not say otherwise: Proxmox's root, swap-less,
/// with room for a few kernels and ISO images.
pub const DEFAULT_MIN_BOOT_DISK: u64 = 32 * 1024 * 1024 * 1024;
/// The smallest disk worth a data pool.
pub const MIN_DATA_DISK: u64 = 1024 * 1024 * 1024;

fn check_machine(
    inv: &Inventory,
    hints: &Hints,
    pos: Pos,
    npath: &str,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) {
    let min = hints.min_ram_bytes.unwrap_or(DEFAULT_MIN_RAM);
    // MemTotal excludes memory reserved by firmware and the kernel, so a 16 GiB box reports
    // ~15.5 GiB; allow 5% below the nominal minimum.
    if inv.memory.total_bytes < min - min / 20 {
        problems.push(
            Some(pos),
            npath,
            format!(
                "this machine has {} of RAM, below the minimum of {}{}",
                gib(inv.memory.total_bytes),
                gib(min),
                hints
                    .profile
                    .as_ref()
                    .map(|p| format!(" for profile {p}"))
                    .unwrap_or_default()
            ),
            Some("add memory, or install this node on a machine that has enough".into()),
        );
    }
    if inv.cpu.virtualization.is_none() {
        warnings.push(format!(
            "CPU {} reports no VT-x/AMD-V: Proxmox can only run VMs without KVM (very slow); \
             enable virtualisation in the firmware setup",
            if inv.cpu.model.is_empty() {
                "(unknown)"
            } else {
                &inv.cpu.model
            }
        ));
    }
    if inv.firmware.mode == FirmwareMode::Bios {
        warnings.push(
            "the machine booted in legacy BIOS mode: the install boots with GRUB from the BIOS \
             boot partition; UEFI is preferred"
                .into(),
        );
    }
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn system_plan(site: &Site, node: &tappaas_site::Node, bridges: Vec<BridgePlan>) -> SystemPlan {
    let primary = site.nodes.iter().find(|n| n.role == Role::Primary);
    let primary_address = primary.map(|p| p.address).unwrap_or(node.address);
    let action = match (node.role, node.replace) {
        (Role::Primary, false) => format!("create cluster {}", site.cluster.name),
        (Role::Primary, true) => format!(
            "rejoin cluster {} through a surviving node (the first other node with an api-fingerprint) as a replacement for the failed {}",
            site.cluster.name, node.name
        ),
        (_, true) => format!(
            "have a surviving member remove the failed {}, then rejoin cluster {} under the same name",
            node.name, site.cluster.name
        ),
        (Role::Member, false) => format!(
            "join cluster {} via {} at {}",
            site.cluster.name,
            primary.map(|p| p.name.as_str()).unwrap_or("the primary"),
            primary_address
        ),
        (Role::Backup, false) => format!(
            "join cluster {} via {} at {}, then run Proxmox Backup Server on {}",
            site.cluster.name,
            primary.map(|p| p.name.as_str()).unwrap_or("the primary"),
            primary_address,
            site.storage.tank2.name
        ),
    };
    SystemPlan {
        hostname: node.name.clone(),
        fqdn: format!("{}.{}", node.name, site.site.internal_domain),
        address: format!("{}/{}", node.address, site.network.management.prefix),
        gateway: site.network.firewall,
        dns: site.network.dns.clone(),
        bridges,
        cluster: ClusterPlan {
            name: site.cluster.name.clone(),
            action,
            primary_address,
            link0: node.address,
        },
        timezone: site.site.timezone.clone(),
        keyboard: site.site.keyboard.clone(),
        ssh_keys: site.credentials.ssh_keys.len(),
    }
}
