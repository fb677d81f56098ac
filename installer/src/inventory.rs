//! The hardware inventory: everything `probe` learns about a machine, frozen into plain data.
//!
//! The planner relies only on these fields. The JSON form (`probe --json`) is versioned by
//! [`Inventory::schema`] and documented in `docs/probe-json.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON form of the inventory.
pub const INVENTORY_SCHEMA: u32 = 1;

/// A machine as `probe` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Inventory {
    /// [`INVENTORY_SCHEMA`].
    pub schema: u32,
    /// DMI / SMBIOS identity.
    pub dmi: Dmi,
    /// Processor.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// UEFI or BIOS, Secure Boot.
    pub firmware: Firmware,
    /// Block devices, sorted by kernel name (the same set `lsblk` lists).
    pub disks: Vec<Disk>,
    /// Network interfaces, sorted by name (the same set `ip link` lists).
    pub nics: Vec<Nic>,
    /// Kernel command line (`/proc/cmdline`), for `tappaas.node=` / `tappaas.index=`.
    pub cmdline: String,
}

/// DMI identity from `/sys/class/dmi/id`. Empty strings where firmware left the field blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dmi {
    /// `sys_vendor`, e.g. `Qotom`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `product_version`.
    pub product_version: String,
    /// `product_serial` (root-only on a real system).
    pub product_serial: String,
    /// `board_vendor`.
    pub board_vendor: String,
    /// `board_name`.
    pub board_name: String,
    /// `bios_version`.
    pub bios_version: String,
}

/// Processor summary from `/proc/cpuinfo` and sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cpu {
    /// `model name`.
    pub model: String,
    /// `GenuineIntel`, `AuthenticAMD`, ...
    pub vendor: String,
    /// Physical cores.
    pub cores: u32,
    /// Logical CPUs (threads).
    pub threads: u32,
    /// `vmx` (Intel VT-x) or `svm` (AMD-V) present.
    pub virtualization: Option<String>,
    /// An IOMMU is active (`/sys/class/iommu` has entries).
    pub iommu: bool,
}

/// Memory from `/proc/meminfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Memory {
    /// `MemTotal` in bytes.
    pub total_bytes: u64,
}

/// Firmware mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareMode {
    /// UEFI (`/sys/firmware/efi` exists).
    Uefi,
    /// Legacy BIOS.
    #[default]
    Bios,
}

/// Firmware facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Firmware {
    /// UEFI or BIOS.
    pub mode: FirmwareMode,
    /// Secure Boot enabled; `None` when unknown or on BIOS.
    pub secure_boot: Option<bool>,
}

/// How a block device is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// NVMe.
    Nvme,
    /// SATA / ATA.
    Sata,
    /// SAS.
    Sas,
    /// USB mass storage.
    Usb,
    /// virtio-blk.
    Virtio,
    /// SD / eMMC.
    Mmc,
    /// Other SCSI (including virtio-scsi).
    Scsi,
    /// Loop device.
    Loop,
    /// Optical drive.
    Optical,
    /// Anything else (zram, md, dm, ...).
    #[default]
    Other,
}

impl Transport {
    /// Lower-case name, as used in site-file filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Nvme => "nvme",
            Transport::Sata => "sata",
            Transport::Sas => "sas",
            Transport::Usb => "usb",
            Transport::Virtio => "virtio",
            Transport::Mmc => "mmc",
            Transport::Scsi => "scsi",
            Transport::Loop => "loop",
            Transport::Optical => "optical",
            Transport::Other => "other",
        }
    }
}

/// What a disk or partition already holds, as far as the udev database (blkid) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Content {
    /// `gpt` or `dos` when a partition table exists.
    pub partition_table: Option<String>,
    /// Filesystem / signature type (`ext4`, `vfat`, `zfs_member`, `LVM2_member`, `iso9660`, ...).
    pub fs_type: Option<String>,
    /// Filesystem label; for `zfs_member` this is the pool name.
    pub fs_label: Option<String>,
    /// Filesystem UUID.
    pub fs_uuid: Option<String>,
}

impl Content {
    /// Holds something an installer must not destroy without consent.
    pub fn holds_data(&self) -> bool {
        self.partition_table.is_some() || self.fs_type.is_some()
    }
}

/// A partition of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Partition {
    /// Kernel name, e.g. `nvme0n1p1`.
    pub name: String,
    /// Partition number.
    pub number: u32,
    /// Start in bytes.
    pub start_bytes: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// GPT partition type GUID or MBR type, lower-case.
    pub part_type: Option<String>,
    /// GPT partition name.
    pub part_label: Option<String>,
    /// What it holds.
    pub content: Content,
    /// Where it is mounted on the running system (from mountinfo).
    pub mountpoints: Vec<String>,
    /// Devices stacked on it (device-mapper, md RAID, bcache: `sys/block/*/holders`).
    #[serde(default)]
    pub holders: Vec<String>,
    /// Active swap (listed in `/proc/swaps`).
    #[serde(default)]
    pub swap: bool,
}

/// A whole block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Disk {
    /// Kernel name, e.g. `sda`, `nvme0n1`, `vda`.
    pub name: String,
    /// `major:minor`.
    pub devno: String,
    /// Every `/dev/disk/by-id/` link name pointing at the whole disk, sorted (wwn- first).
    pub by_id: Vec<String>,
    /// Serial number (udev `ID_SERIAL_SHORT`, else sysfs).
    pub serial: Option<String>,
    /// WWN / EUI (udev `ID_WWN`, else sysfs `wwid`).
    pub wwn: Option<String>,
    /// Model string.
    pub model: Option<String>,
    /// Vendor string.
    pub vendor: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Logical sector size.
    pub logical_sector_size: u32,
    /// Physical sector size.
    pub physical_sector_size: u32,
    /// Spinning disk.
    pub rotational: bool,
    /// Attachment.
    pub transport: Transport,
    /// Removable medium flag (or hot-pluggable USB).
    pub removable: bool,
    /// Read-only.
    pub read_only: bool,
    /// What the whole-disk device holds.
    pub content: Content,
    /// Existing partitions, by number.
    pub partitions: Vec<Partition>,
    /// Where the whole disk is mounted (rare: iso9660 sticks).
    pub mountpoints: Vec<String>,
    /// Devices stacked on the whole disk (device-mapper, md RAID).
    #[serde(default)]
    pub holders: Vec<String>,
    /// The whole disk is active swap.
    #[serde(default)]
    pub swap: bool,
    /// The live system was booted from this disk: never a candidate for any role.
    pub boot_medium: bool,
    /// Why it is considered the boot medium, if it is.
    pub boot_medium_reason: Option<String>,
    /// Raw udev properties of the disk (for filters and bug reports).
    pub udev: BTreeMap<String, String>,
}

impl Disk {
    /// The preferred stable path: `wwn-` link, else the first other by-id link.
    pub fn preferred_by_id(&self) -> Option<&str> {
        self.by_id
            .iter()
            .find(|l| l.starts_with("wwn-"))
            .or_else(|| self.by_id.first())
            .map(String::as_str)
    }

    /// Holds data anywhere: a table, a signature, or partitions with content.
    pub fn holds_data(&self) -> bool {
        self.content.holds_data()
            || !self.partitions.is_empty()
            || self.partitions.iter().any(|p| p.content.holds_data())
    }

    /// The disk or one of its partitions is mounted.
    pub fn is_mounted(&self) -> bool {
        !self.mountpoints.is_empty() || self.partitions.iter().any(|p| !p.mountpoints.is_empty())
    }

    /// What uses the disk or its partitions besides mounts: swap and stacked devices (md,
    /// device-mapper), in words; empty when nothing does.
    pub fn in_use(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.swap {
            out.push(format!("{} is active swap", self.name));
        }
        for h in &self.holders {
            out.push(format!(
                "{} is held by {h} (device-mapper or md)",
                self.name
            ));
        }
        for p in &self.partitions {
            if p.swap {
                out.push(format!("{} is active swap", p.name));
            }
            for h in &p.holders {
                out.push(format!("{} is held by {h} (device-mapper or md)", p.name));
            }
        }
        out
    }

    /// One-line human description: model, serial, size.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (serial {}, {})",
            self.name,
            self.model.as_deref().unwrap_or("unknown model"),
            self.serial.as_deref().unwrap_or("unknown"),
            human_bytes(self.size_bytes)
        )
    }
}

/// Link state of a NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// Carrier present.
    Up,
    /// No carrier (cable unplugged or interface down).
    Down,
    /// Interface down, so carrier cannot be read.
    #[default]
    Unknown,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Nic {
    /// Kernel name, e.g. `enp1s0`.
    pub name: String,
    /// Current MAC.
    pub mac: String,
    /// Permanent (burnt-in) MAC when known.
    pub permanent_mac: Option<String>,
    /// Kernel driver, e.g. `igc`, `r8169`.
    pub driver: Option<String>,
    /// PCI address, e.g. `0000:01:00.0`.
    pub pci: Option<String>,
    /// Backed by hardware (has a `device`), as opposed to lo, bridges, veth, ...
    pub physical: bool,
    /// Carrier.
    pub link: LinkState,
    /// Speed in Mbit/s when the link is up.
    pub speed_mbps: Option<u32>,
    /// udev `ID_NET_NAME_PATH` etc., for bug reports.
    pub udev: BTreeMap<String, String>,
}

/// `1.0 TB`-style decimal size (what disk vendors print on the box).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
