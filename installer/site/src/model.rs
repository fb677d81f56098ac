//! The validated site model: what a site file means once parsed, checked and defaulted.
//!
//! Everything here is plain data. Values that depend on hardware (which disk a filter picks,
//! which NIC is the WAN port when the site leaves it to the profile) are resolved later by the
//! planner; everything that depends only on the site file is resolved here, so two front ends
//! (site file, TUI) produce the same `Site`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// A position in the site file, 1-based, for pointing errors found later (for example by the
/// planner) back at the line that caused them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord,
)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A whole site: every node the same USB stick installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Site-file format version; only 1 exists.
    pub version: u32,
    /// Names and locale.
    pub site: SiteInfo,
    /// Root password hash and SSH keys.
    pub credentials: Credentials,
    /// Management network, firewall, upstream.
    pub network: Network,
    /// Cluster-wide settings.
    pub cluster: Cluster,
    /// Pool names and properties.
    pub storage: Storage,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
}

impl Site {
    /// The site with every position cleared: two sites that differ only in where their
    /// values stood in a file compare equal.
    pub fn without_positions(&self) -> Site {
        let mut s = self.clone();
        for n in &mut s.nodes {
            n.pos = Pos::default();
            n.boot.pos = Pos::default();
            if let Some(t) = &mut n.tank1 {
                t.pos = Pos::default();
            }
            if let Some(t) = &mut n.tank2 {
                t.pos = Pos::default();
            }
        }
        s
    }
}

/// `[site]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// Short machine-friendly site name (`[a-z0-9-]`).
    pub name: String,
    /// Public DNS domain of the organisation.
    pub domain: String,
    /// Internal domain of the management network (default `mgmt.internal`).
    pub internal_domain: String,
    /// Where Proxmox sends mail for root.
    pub admin_email: String,
    /// IANA time zone, e.g. `Europe/Copenhagen` (default `UTC`).
    pub timezone: String,
    /// Console keyboard layout, e.g. `us`, `dk`, `de` (default `us`).
    pub keyboard: String,
    /// Two-letter country code (default derived from nothing: `us`).
    pub country: String,
}

/// `[credentials]`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// crypt(3) hash of the root password (`$6$...`, `$y$...`). Never a clear-text password.
    pub root_password_hash: String,
    /// SSH public keys for root, one per entry (OpenSSH format).
    pub ssh_keys: Vec<String>,
}

impl fmt::Debug for Credentials {
    // The hash is not the password, but it is still offline-crackable: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("root_password_hash", &"<redacted>")
            .field("ssh_keys", &self.ssh_keys)
            .finish()
    }
}

/// An IPv4 network in CIDR notation, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv4Net {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix);
        (u32::from(ip) & mask) == (u32::from(self.addr) & mask)
    }
    /// The network's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !prefix_mask(self.prefix))
    }
    /// The address `network + offset` (for TAPPaaS numbering such as .1 and .(9+N)).
    pub fn nth(&self, offset: u32) -> Option<Ipv4Addr> {
        let base = u32::from(self.addr);
        let ip = base.checked_add(offset)?;
        let ip = Ipv4Addr::from(ip);
        self.contains(ip).then_some(ip)
    }
}

/// The netmask for a prefix length.
pub fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An address with its prefix length (an interface address), e.g. `192.168.1.50/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv4If {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix: u8,
}

impl fmt::Display for Ipv4If {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `[network]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Management network, untagged on the `lan` bridge (default 10.0.0.0/24).
    pub management: Ipv4Net,
    /// The OPNsense firewall's LAN address and the nodes' gateway (default .1 of management).
    pub firewall: Ipv4Addr,
    /// DNS servers the nodes use (default: the firewall).
    pub dns: Vec<Ipv4Addr>,
    /// Name of the VLAN-aware LAN bridge (default `lan`).
    pub lan_bridge: String,
    /// Name of the WAN bridge (default `wan`).
    pub wan_bridge: String,
    /// How the firewall's WAN side reaches the internet.
    pub upstream: Upstream,
}

/// `[network.upstream]`: how the site reaches the internet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Upstream {
    /// The upstream router hands out an address by DHCP (default).
    Dhcp,
    /// A fixed address on the upstream network.
    Static {
        /// Address with prefix.
        address: Ipv4If,
        /// Upstream gateway.
        gateway: Ipv4Addr,
        /// Upstream DNS servers.
        dns: Vec<Ipv4Addr>,
    },
}

/// `[cluster]`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Proxmox cluster name, at most 15 characters (default `TAPPaaS`).
    pub name: String,
    /// One-time secret the other nodes join with (the primary's root password while they
    /// join). Never logged.
    #[serde(default)]
    pub join_secret: Option<String>,
    /// SHA-256 fingerprint (`AA:BB:...`, upper case) of the primary's API certificate.
    #[serde(default)]
    pub primary_fingerprint: Option<String>,
    /// The primary's API certificate (PEM), made in advance so that its fingerprint is known
    /// before the primary is installed. Given together with `primary_key`.
    #[serde(default)]
    pub primary_certificate: Option<String>,
    /// The private key of `primary_certificate` (PEM). A secret: never logged.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// How long nodes wait for the primary, and the primary for the nodes (default 120).
    #[serde(default = "default_join_wait")]
    pub join_wait_minutes: u32,
}

fn default_join_wait() -> u32 {
    120
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: "TAPPaaS".into(),
            join_secret: None,
            primary_fingerprint: None,
            primary_certificate: None,
            primary_key: None,
            join_wait_minutes: default_join_wait(),
        }
    }
}

impl Cluster {
    /// The fingerprint every joining node pins: `primary_fingerprint` when given, otherwise the
    /// SHA-256 fingerprint of `primary_certificate` (upper-case hex pairs joined by `:`, as
    /// Proxmox shows it). `None` when the site gives neither.
    pub fn pinned_fingerprint(&self) -> Option<String> {
        self.primary_fingerprint.clone().or_else(|| {
            self.primary_certificate
                .as_deref()
                .and_then(crate::pem::certificate_fingerprint)
        })
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field(
                "join_secret",
                &self.join_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("primary_fingerprint", &self.primary_fingerprint)
            .field(
                "primary_certificate",
                &self.primary_certificate.as_ref().map(|_| "<PEM>"),
            )
            .field(
                "primary_key",
                &self.primary_key.as_ref().map(|_| "<redacted>"),
            )
            .field("join_wait_minutes", &self.join_wait_minutes)
            .finish()
    }
}

/// `[storage]`: pool names and properties shared by every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    /// The Proxmox root pool on the boot disk(s) (default name `rpool`).
    pub rpool: PoolSettings,
    /// Redundant VM pool (default name `tank1`).
    pub tank1: PoolSettings,
    /// Bulk / backup pool without redundancy (default name `tank2`).
    pub tank2: PoolSettings,
}

/// Pool name and the properties it is created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSettings {
    /// Pool name.
    pub name: String,
    /// `ashift` (default 12).
    pub ashift: u8,
    /// `compression` (default `lz4`).
    pub compression: String,
    /// `atime` (default off).
    pub atime: bool,
    /// `xattr` (default `sa`).
    pub xattr: String,
    /// `autotrim` (default on).
    pub autotrim: bool,
    /// `compatibility` feature set, so Proxmox's ZFS can import it (default `openzfs-2.1-linux`).
    pub compatibility: String,
}

/// The three roles a node can have in a TAPPaaS cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Creates the cluster; runs the firewall and the platform VMs.
    Primary,
    /// Workload node that joins the primary's cluster.
    Member,
    /// Small quorum node that runs Proxmox Backup Server on its tank2.
    Backup,
}

impl Role {
    /// The name used in the site file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Member => "member",
            Role::Backup => "backup",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A MAC address, stored lower-case colon-separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-...` (any case).
    pub fn parse(s: &str) -> Option<Mac> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return None;
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 {
                return None;
            }
            *o = u8::from_str_radix(p, 16).ok()?;
        }
        Some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// `[[node]]`: one machine of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Host name (default `tappaas<id>`), `[a-z0-9-]`, at most 63 characters.
    pub name: String,
    /// Node number 1..=9 (default: position in the file). Drives the default address
    /// (10.0.0.(9+id)) and the corosync node id.
    pub id: u8,
    /// What the node is for.
    pub role: Role,
    /// Hardware profile this node runs on, if known (enables profile defaults for NIC and disk
    /// roles and lets `plan` run against the profile's fixture).
    pub profile: Option<String>,
    /// How the live system recognises that it is this node.
    pub identify: Identify,
    /// Management address (default: the TAPPaaS numbering).
    pub address: Ipv4Addr,
    /// Which NIC is which.
    pub nics: NicRoles,
    /// The boot disk(s): BIOS boot + ESP + rpool partition.
    pub boot: DiskRole,
    /// Disks of the redundant VM pool.
    pub tank1: Option<DiskRole>,
    /// Disks of the bulk/backup pool.
    pub tank2: Option<DiskRole>,
    /// This node replaces a failed node of the same name (it rejoins the cluster).
    pub replace: bool,
    /// SHA-256 fingerprint (`AA:BB:...`, upper case) of this node's API certificate, when
    /// known: a replacement primary joins the cluster through the first other node that has
    /// one, and pins it. Public.
    #[serde(default)]
    pub api_fingerprint: Option<String>,
    /// Where the `[[node]]` header is in the site file.
    pub pos: Pos,
}

/// How a booted machine finds its own `[[node]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identify {
    /// Not given: only `--node NAME` (or the TUI, or `tappaas.node=NAME` on the kernel command
    /// line) selects this node.
    Explicit,
    /// The machine has a NIC with this permanent MAC.
    Mac(Mac),
    /// The DMI system serial number (`/sys/class/dmi/id/product_serial`) equals this.
    DmiSerial(String),
    /// The machine matches this hardware profile, and it is the `index`-th (1-based) node of the
    /// site with that profile; the index comes from `tappaas.index=N` on the kernel command line
    /// when several nodes share a profile.
    Profile {
        /// Profile id.
        profile: String,
        /// 1-based index among the site's nodes with this profile.
        index: u32,
    },
}

/// `[node.nics]`: NIC roles. Missing roles come from the hardware profile's hints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NicRoles {
    /// The port to the upstream router (the firewall's WAN).
    pub wan: Option<NicSelector>,
    /// The port to the switch between nodes (carries management and VLANs).
    pub lan: Option<NicSelector>,
}

/// Picks one NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicSelector {
    /// By permanent MAC address.
    Mac(Mac),
    /// By kernel interface name (predictable names such as `enp1s0` are stable per model).
    Name(String),
    /// By PCI address, e.g. `0000:01:00.0`.
    Pci(String),
    /// By the profile's port label, e.g. `ETH1` (needs a profile).
    Port(String),
}

/// The layout of a pool's data vdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One disk (or, with several disks, a stripe: refused for tank1).
    Single,
    /// All disks mirror each other (2+ disks).
    Mirror,
    /// RAID-Z1 (3+ disks).
    Raidz1,
    /// RAID-Z2 (4+ disks).
    Raidz2,
}

impl Layout {
    /// The fewest disks this layout accepts.
    pub fn min_disks(self) -> usize {
        match self {
            Layout::Single => 1,
            Layout::Mirror => 2,
            Layout::Raidz1 => 3,
            Layout::Raidz2 => 4,
        }
    }
    /// The name used in the site file and by `zpool create`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Single => "single",
            Layout::Mirror => "mirror",
            Layout::Raidz1 => "raidz1",
            Layout::Raidz2 => "raidz2",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[node.boot]`, `[node.tank1]`, `[node.tank2]`: which disks serve a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRole {
    /// How the disks are combined (default: `single` for one disk, `mirror` for two).
    pub layout: Layout,
    /// The disks, each picked by identity or filter. Empty means "from the profile's hints".
    pub disks: Vec<DiskSelector>,
    /// Consent to erase disks that already hold a partition table, filesystem or ZFS label.
    pub wipe: bool,
    /// Where the role's table is in the site file.
    pub pos: Pos,
}

/// Picks one or more disks, never by `/dev/sdX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskSelector {
    /// A `/dev/disk/by-id/` link name (with or without that prefix, stored without it).
    ById(String),
    /// The disk's serial number, exactly.
    Serial(String),
    /// The disk's WWN, exactly (`0x5002538e...` or `eui.`/`nvme.` forms as udev reports them).
    Wwn(String),
    /// Filters over probed properties; all given filters must hold.
    Filter(DiskFilter),
}

/// Filters over probed disk properties. Globs use `*`, `?` and `[...]`, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiskFilter {
    /// Glob on the model string.
    pub model: Option<String>,
    /// Glob on the serial number.
    pub serial: Option<String>,
    /// Glob on the vendor string.
    pub vendor: Option<String>,
    /// Glob on the transport (`nvme`, `sata`, `sas`, `usb`, `virtio`, `mmc`, `scsi`).
    pub transport: Option<String>,
    /// Smallest acceptable size in bytes.
    pub min_size: Option<u64>,
    /// Largest acceptable size in bytes.
    pub max_size: Option<u64>,
    /// Spinning disk (true) or solid state (false).
    pub rotational: Option<bool>,
    /// How many disks this filter must pick (default 1). More matches than this is an error
    /// ("ambiguous"), never a silent choice.
    pub count: u32,
}
