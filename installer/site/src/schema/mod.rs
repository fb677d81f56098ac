//! The site file's schema as data: every table, key, type, default, doc text and example.
//!
//! One table drives everything: validation and unknown-key detection ([`crate::parse`]),
//! defaults (literal defaults are applied by the walker, computed ones by the builder, which
//! the doc text names), and the generated reference ([`crate::docs`]).

/// What kind of string a field holds, and so how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// Site name: `[a-z0-9-]`, starts with a letter, at most 63 characters.
    SiteName,
    /// A DNS domain such as `example.org`.
    DnsName,
    /// An e-mail address.
    Email,
    /// An IANA time zone (`Area/City`) or `UTC`.
    Timezone,
    /// A console keyboard layout such as `us`, `dk`, `de`, `de-ch`.
    Keyboard,
    /// A two-letter country code.
    Country,
    /// A crypt(3) password hash.
    CryptHash,
    /// An OpenSSH public key line.
    SshKey,
    /// A Proxmox cluster name: `[A-Za-z0-9-]`, at most 15 characters.
    ClusterName,
    /// A host name label: `[a-z0-9-]`, at most 63 characters.
    Hostname,
    /// A Linux interface name: at most 15 characters, no `/`, no blanks.
    IfName,
    /// A hardware profile id (checked against the known profiles when given).
    ProfileId,
    /// A ZFS pool name.
    PoolName,
    /// A ZFS `compression` value.
    Compression,
    /// A ZFS `compatibility` value.
    Compatibility,
    /// A `/dev/disk/by-id/` link name.
    ById,
    /// A disk serial number (exact, or a glob).
    Serial,
    /// A disk WWN.
    Wwn,
    /// A glob pattern.
    Glob,
    /// A disk transport, or a glob over transports.
    Transport,
    /// A PCI address.
    Pci,
    /// A port label of a hardware profile.
    Port,
    /// A DMI system serial number.
    DmiSerial,
    /// A one-time secret: at least 16 printable ASCII characters, no blanks.
    JoinSecret,
    /// A SHA-256 certificate fingerprint: 32 hex pairs separated by `:`.
    Fingerprint,
    /// One PEM `CERTIFICATE` block.
    Certificate,
    /// One unencrypted PEM private key block. A secret: never quoted in a message.
    PrivateKey,
}

impl StrKind {
    /// How the reference names this kind of string.
    pub fn doc_name(self) -> &'static str {
        match self {
            StrKind::SiteName => "name `[a-z0-9-]`",
            StrKind::DnsName => "DNS domain",
            StrKind::Email => "e-mail address",
            StrKind::Timezone => "time zone",
            StrKind::Keyboard => "keyboard layout",
            StrKind::Country => "country code",
            StrKind::CryptHash => "crypt hash",
            StrKind::SshKey => "SSH public key",
            StrKind::ClusterName => "cluster name",
            StrKind::Hostname => "host name",
            StrKind::IfName => "interface name",
            StrKind::ProfileId => "profile id",
            StrKind::PoolName => "ZFS pool name",
            StrKind::Compression => "ZFS compression",
            StrKind::Compatibility => "ZFS compatibility",
            StrKind::ById => "by-id name",
            StrKind::Serial => "serial or glob",
            StrKind::Wwn => "WWN",
            StrKind::Glob => "glob",
            StrKind::Transport => "transport or glob",
            StrKind::Pci => "PCI address",
            StrKind::Port => "port label",
            StrKind::DmiSerial => "DMI serial",
            StrKind::JoinSecret => "one-time secret",
            StrKind::Fingerprint => "SHA-256 fingerprint",
            StrKind::Certificate => "PEM certificate",
            StrKind::PrivateKey => "PEM private key",
        }
    }
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string, checked according to its kind.
    Str(StrKind),
    /// An integer within `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// An IPv4 address, `"10.0.0.1"`.
    Ipv4,
    /// An IPv4 network with host bits zero, `"10.0.0.0/24"`.
    Cidr,
    /// An IPv4 interface address with prefix, `"192.168.1.50/24"`.
    IfAddr,
    /// A size: bytes as an integer, or a string with a unit (see [`crate::size`]).
    Size,
    /// A MAC address, `"aa:bb:cc:dd:ee:ff"`.
    Mac,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// An array of values of one type.
    List(&'static Ty),
    /// A table (a `[section]` or an inline `{ ... }`).
    Table(&'static Table),
    /// An array of tables (`[[node]]`).
    Tables(&'static Table),
}

impl Ty {
    /// How the reference names this type.
    pub fn doc_name(&self) -> String {
        match self {
            Ty::Str(k) => format!("string ({})", k.doc_name()),
            Ty::Int { max, .. } if *max >= 1_000_000 => "integer".into(),
            Ty::Int { min, max } => format!("integer {min}..={max}"),
            Ty::Bool => "boolean".into(),
            Ty::Ipv4 => "IPv4 address".into(),
            Ty::Cidr => "IPv4 network".into(),
            Ty::IfAddr => "IPv4 address/prefix".into(),
            Ty::Size => "size".into(),
            Ty::Mac => "MAC address".into(),
            Ty::Enum(v) => {
                let quoted: Vec<String> = v.iter().map(|s| format!("`\"{s}\"`")).collect();
                quoted.join(" | ")
            }
            Ty::List(t) => format!("array of {}", t.doc_name()),
            Ty::Table(t) => format!("table ({})", t.title),
            Ty::Tables(t) => format!("array of tables ({})", t.title),
        }
    }

    /// The TOML type name the value must have, as TOML parsers name it.
    pub fn toml_name(&self) -> &'static str {
        match self {
            Ty::Str(_) | Ty::Ipv4 | Ty::Cidr | Ty::IfAddr | Ty::Mac | Ty::Enum(_) => "a string",
            Ty::Int { .. } => "an integer",
            Ty::Bool => "a boolean",
            Ty::Size => "a size (an integer or a string such as \"200G\")",
            Ty::List(_) => "an array",
            Ty::Table(_) => "a table",
            Ty::Tables(_) => "an array of tables",
        }
    }
}

/// What happens when a key is absent.
#[derive(Debug, Clone, Copy)]
pub enum Dflt {
    /// The key must be given.
    Required,
    /// This TOML value is used (applied by the walker, so docs and behaviour cannot drift).
    Lit(&'static str),
    /// Computed from other values, as the text says (applied by the builder).
    Computed(&'static str),
    /// The setting is simply absent.
    Optional,
}

/// One key of a table.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The key, kebab-case.
    pub key: &'static str,
    /// The value's type.
    pub ty: Ty,
    /// What happens when it is absent.
    pub default: Dflt,
    /// One or two sentences for the reference.
    pub doc: &'static str,
    /// An example value as TOML text, or empty.
    pub example: &'static str,
}

/// A key that is refused with an explanation rather than "unknown key".
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// The key.
    pub key: &'static str,
    /// Why it is refused.
    pub message: &'static str,
    /// What to write instead.
    pub hint: &'static str,
}

/// A table: a `[section]`, an `[[array]]` entry or an inline table shape.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// How the reference titles it, e.g. `[node.boot]` or `disk selector`.
    pub title: &'static str,
    /// The reference text for the whole table.
    pub doc: &'static str,
    /// Its keys, in reference order.
    pub fields: &'static [Field],
    /// Keys refused with a specific explanation.
    pub refused: &'static [Refused],
}

impl Table {
    /// The field for `key`.
    pub fn field(&self, key: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

mod tables;
pub use tables::*;

/// Fields whose values are secrets: never quoted in a message, nor their source line shown.
pub const SECRET_PATHS: &[&str] = &["cluster.join-secret", "cluster.primary-key"];

/// Why kernel device names are refused; shared by every place that could hold one.
pub const KERNEL_NAME_WHY: &str = "disks are never named by kernel device names such as \
    /dev/sda or nvme0n1: the kernel hands those out in probe order and they change between \
    boots, so the wrong disk could be erased";
/// What to write instead of a kernel device name.
pub const KERNEL_NAME_HINT: &str = "name the disk by { by-id = \"...\" } (see ls -l \
    /dev/disk/by-id), { serial = \"...\" }, { wwn = \"...\" }, or a filter such as \
    { transport = \"nvme\", min-size = \"200G\" }";

/// Layouts accepted for data pools.
pub const DATA_LAYOUTS: &[&str] = &["single", "mirror", "raidz1", "raidz2"];
/// Layouts accepted for the boot disks.
pub const BOOT_LAYOUTS: &[&str] = &["single", "mirror"];
/// Node roles.
pub const ROLES: &[&str] = &["primary", "member", "backup"];
/// Disk transports the probe reports.
pub const TRANSPORTS: &[&str] = &["nvme", "sata", "sas", "usb", "virtio", "mmc", "scsi"];

/// Every table, in reference order, with the path it appears under.
pub fn tables() -> Vec<(&'static str, &'static Table)> {
    vec![
        ("", &ROOT),
        ("site", &SITE),
        ("credentials", &CREDENTIALS),
        ("network", &NETWORK),
        ("network.upstream", &UPSTREAM),
        ("cluster", &CLUSTER),
        ("storage", &STORAGE),
        ("storage.rpool, storage.tank1, storage.tank2", &POOL),
        ("node[N]", &NODE),
        ("node[N].identify", &IDENTIFY),
        ("node[N].nics", &NICS),
        ("node[N].nics.wan, node[N].nics.lan", &NIC),
        ("node[N].boot", &BOOT),
        ("node[N].tank1, node[N].tank2", &DATA),
        ("node[N].boot.disks[M], node[N].tank1.disks[M], ...", &DISK),
    ]
}
