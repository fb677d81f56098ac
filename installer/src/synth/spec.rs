//! The machine description a fixture is generated from (`hardware-profiles/fixtures/<id>.machine.toml`).

use crate::profile::{PortRole, SlotRole};
use serde::{Deserialize, Serialize};

/// A whole machine as the live installer would see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MachineSpec {
    /// The hardware profile this machine is an example of (informational).
    #[serde(default)]
    pub profile: Option<String>,
    /// What the machine is, for humans.
    #[serde(default)]
    pub description: String,
    /// `/sys/class/dmi/id`.
    pub dmi: DmiSpec,
    /// `/proc/cpuinfo`.
    pub cpu: CpuSpec,
    /// `/proc/meminfo`.
    pub memory: MemorySpec,
    /// `/sys/firmware/efi`, `/sys/class/iommu`.
    pub firmware: FirmwareSpec,
    /// The live system: ISO label, command line, mounts.
    #[serde(default)]
    pub live: LiveSpec,
    /// Block devices (the USB stick included), in kernel probe order.
    #[serde(rename = "disk", default)]
    pub disks: Vec<DiskSpec>,
    /// Network interfaces besides `lo`, in ifindex order.
    #[serde(rename = "nic", default)]
    pub nics: Vec<NicSpec>,
}

/// DMI strings; `None` means the file does not exist (firmware without that SMBIOS table).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DmiSpec {
    /// `sys_vendor`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `product_version`.
    #[serde(default)]
    pub product_version: String,
    /// `product_serial`.
    #[serde(default)]
    pub product_serial: String,
    /// `product_family`.
    #[serde(default)]
    pub product_family: Option<String>,
    /// `board_vendor`.
    #[serde(default)]
    pub board_vendor: Option<String>,
    /// `board_name`.
    #[serde(default)]
    pub board_name: Option<String>,
    /// `bios_vendor`.
    #[serde(default)]
    pub bios_vendor: Option<String>,
    /// `bios_version`.
    pub bios_version: String,
    /// `bios_date`.
    #[serde(default)]
    pub bios_date: Option<String>,
    /// `chassis_type` (SMBIOS code: 3 desktop, 35 mini PC, 23 rack mount, 1 other).
    #[serde(default)]
    pub chassis_type: Option<String>,
}

/// The processor; `/proc/cpuinfo` gets one block per logical CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CpuSpec {
    /// `model name`.
    pub model_name: String,
    /// `vendor_id`: `GenuineIntel` or `AuthenticAMD`.
    pub vendor_id: String,
    /// `cpu family`.
    pub family: u32,
    /// `model`.
    pub model: u32,
    /// `stepping`.
    pub stepping: u32,
    /// `microcode`.
    pub microcode: String,
    /// `cpu MHz`, as printed.
    pub mhz: String,
    /// `cache size` in KB.
    pub cache_kb: u32,
    /// Physical cores.
    pub cores: u32,
    /// Cores with two threads (all of them without hybrid designs; the P-cores with).
    pub smt_cores: u32,
    /// `core id` of each core (default 0..cores); hybrid Intel parts have gaps.
    #[serde(default)]
    pub core_ids: Option<Vec<u32>>,
    /// `cpuid level`.
    pub cpuid_level: u32,
    /// `flags`, space-separated.
    pub flags: String,
    /// `vmx flags` (Intel with VT-x).
    #[serde(default)]
    pub vmx_flags: Option<String>,
    /// `bugs`.
    #[serde(default)]
    pub bugs: String,
    /// `bogomips`, as printed.
    pub bogomips: String,
    /// `address sizes`.
    pub address_sizes: String,
    /// `TLB size` (AMD only), e.g. `3584 4K pages`.
    #[serde(default)]
    pub tlb_size: Option<String>,
    /// Sibling threads are numbered next to each other (0,1 = core 0), as on Intel hybrid
    /// parts; otherwise the second threads follow all first threads (0..n, then n..2n).
    #[serde(default)]
    pub smt_adjacent: bool,
    /// `power management`.
    #[serde(default)]
    pub power_management: String,
}

impl CpuSpec {
    /// Logical CPUs.
    pub fn threads(&self) -> u32 {
        self.cores + self.smt_cores.min(self.cores)
    }
}

/// Memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemorySpec {
    /// `MemTotal` in kB (installed RAM minus firmware and kernel reservations).
    pub total_kb: u64,
}

/// Firmware mode and IOMMU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirmwareSpec {
    /// Booted through UEFI.
    pub uefi: bool,
    /// Secure Boot state (UEFI only).
    #[serde(default)]
    pub secure_boot: bool,
    /// IOMMU units: `dmar0`, `dmar1` (Intel VT-d), `ivhd0` (AMD-Vi). Empty when off.
    #[serde(default)]
    pub iommu: Vec<String>,
}

/// The live system booted from the USB stick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LiveSpec {
    /// ISO 9660 volume label (`root=LABEL=` on the command line).
    pub label: String,
    /// ISO 9660 "UUID" (its creation time, `YYYY-MM-DD-hh-mm-ss-cc`).
    pub iso_uuid: String,
    /// Size of the ISO image in bytes (the stick's first partition).
    pub iso_bytes: u64,
    /// Size of `nix-store.squashfs` (loop0) in bytes.
    pub squashfs_bytes: u64,
    /// Appended to the standard command line (e.g. `console=ttyS0,115200`).
    pub cmdline_extra: String,
}

impl Default for LiveSpec {
    fn default() -> Self {
        LiveSpec {
            label: "TAPPAAS_INSTALLER".into(),
            iso_uuid: "2026-11-20-12-00-00-00".into(),
            iso_bytes: 4_831_838_208,
            squashfs_bytes: 4_294_250_496,
            cmdline_extra: String::new(),
        }
    }
}

/// How a disk is attached; decides the sysfs and udev shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bus {
    /// NVMe namespace 1 of a PCIe controller.
    Nvme,
    /// SATA disk on an AHCI port.
    Sata,
    /// USB mass storage (usb-storage, SCSI disk).
    Usb,
    /// virtio-blk.
    Virtio,
    /// eMMC (including its `bootN` hardware partitions, named `mmcblkNbootM`).
    Mmc,
}

/// One block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiskSpec {
    /// Kernel name: `nvme0n1`, `sda`, `vda`, `mmcblk0`, `mmcblk0boot0`.
    pub name: String,
    /// Attachment.
    pub bus: Bus,
    /// Model as the device reports it (NVMe/ATA model, SCSI product for USB, eMMC name).
    #[serde(default)]
    pub model: String,
    /// Vendor (USB sticks: the SCSI vendor, e.g. `SanDisk`).
    #[serde(default)]
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: String,
    /// Size in bytes (a multiple of 512).
    pub size_bytes: u64,
    /// Logical sector size.
    #[serde(default = "default_block")]
    pub logical_block: u32,
    /// Physical sector size.
    #[serde(default = "default_block")]
    pub physical_block: u32,
    /// Spinning (and what virtio and USB sticks report).
    #[serde(default)]
    pub rotational: bool,
    /// Removable-media flag.
    #[serde(default)]
    pub removable: bool,
    /// Read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Firmware revision.
    #[serde(default)]
    pub firmware: Option<String>,
    /// WWN: `0x5002538f...` for SATA, `eui.` / `nvme.` form for NVMe.
    #[serde(default)]
    pub wwn: Option<String>,
    /// PCI address of the controller (NVMe, AHCI, xHCI, virtio-blk function, SDHCI).
    pub controller: String,
    /// ATA port number (SATA) or USB port path such as `0:1:1.0` (USB).
    #[serde(default)]
    pub port: Option<String>,
    /// USB `vendor:product` ids.
    #[serde(default)]
    pub usb_ids: Option<String>,
    /// What the disk holds.
    #[serde(default)]
    pub holds: Holds,
    /// The role the fixture's author meant this disk for (informational: golden site files
    /// name disks by it; nothing is rendered from it).
    #[serde(default)]
    pub role: Option<SlotRole>,
}

fn default_block() -> u32 {
    512
}

/// What a disk holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum Holds {
    /// Nothing: no partition table, no signature.
    #[default]
    Blank,
    /// The installer ISO written to the stick (hybrid MBR, iso9660 partition 1 mounted at /iso,
    /// EFI boot image as partition 2).
    LiveIso,
    /// A disk given whole to `zpool create` by an earlier install: GPT, partition 1
    /// `zfs_member` with the pool name as label, partition 9 reserved.
    ZfsWholeDisk {
        /// Pool name.
        pool: String,
        /// Pool GUID (decimal, as blkid prints it).
        pool_guid: String,
        /// Vdev GUID (decimal).
        vdev_guid: String,
    },
    /// Explicit partitions.
    Partitions {
        /// `gpt` or `dos`.
        table: String,
        /// The partitions.
        #[serde(rename = "partition")]
        partitions: Vec<PartSpec>,
    },
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PartSpec {
    /// Partition number.
    pub number: u32,
    /// Start in 512-byte sectors.
    pub start: u64,
    /// Size in 512-byte sectors.
    pub size: u64,
    /// GPT type GUID or MBR type (`0xef`).
    pub part_type: String,
    /// GPT partition name.
    #[serde(default)]
    pub part_name: Option<String>,
    /// Filesystem type (`vfat`, `ext4`, `zfs_member`, ...).
    #[serde(default)]
    pub fs_type: Option<String>,
    /// Filesystem label.
    #[serde(default)]
    pub fs_label: Option<String>,
    /// Filesystem UUID.
    #[serde(default)]
    pub fs_uuid: Option<String>,
    /// Where the live system has it mounted.
    #[serde(default)]
    pub mount: Option<String>,
}

/// How a NIC is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicBus {
    /// A PCI(e) function.
    Pci,
    /// A virtio device under a virtio-pci function.
    Virtio,
    /// A USB interface under an xHCI controller.
    Usb,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NicSpec {
    /// Kernel name after udev renaming.
    pub name: String,
    /// MAC address (permanent: `addr_assign_type` 0).
    pub mac: String,
    /// Attachment.
    pub bus: NicBus,
    /// PCI function (the virtio-pci function for virtio, the xHCI controller for USB).
    pub pci: String,
    /// PCI bridges between the root bus and `pci`, e.g. `["0000:00:1c.0"]`.
    #[serde(default)]
    pub bridges: Vec<String>,
    /// Kernel driver of the netdev's device.
    pub driver: String,
    /// Vendor id, `0x8086` (PCI) or `0bda` (USB).
    pub vendor_id: String,
    /// Device id, `0x125c` (PCI) or `8156` (USB).
    pub device_id: String,
    /// hwdb vendor name.
    pub vendor_db: String,
    /// hwdb model name (absent when hwdb does not know the chip yet).
    #[serde(default)]
    pub model_db: Option<String>,
    /// `ID_NET_NAME_PATH` (default: `name`).
    #[serde(default)]
    pub path_name: Option<String>,
    /// `ID_NET_NAME_ONBOARD` (firmware onboard index, e.g. `eno1`).
    #[serde(default)]
    pub onboard_name: Option<String>,
    /// `phys_port_name` (i40e: `p0`).
    #[serde(default)]
    pub phys_port_name: Option<String>,
    /// virtio device index (virtio bus only).
    #[serde(default)]
    pub virtio_index: Option<u32>,
    /// USB device path such as `2-2` (USB bus only).
    #[serde(default)]
    pub usb_port: Option<String>,
    /// Cable plugged in and link up.
    #[serde(default)]
    pub carrier: bool,
    /// Negotiated speed in Mbit/s when the link is up (`-1` is written otherwise).
    #[serde(default)]
    pub speed: Option<u32>,
    /// Wireless LAN interface.
    #[serde(default)]
    pub wireless: bool,
    /// The role the fixture's author meant this port for (informational).
    #[serde(default)]
    pub role: Option<PortRole>,
}
