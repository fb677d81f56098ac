//! Partition and pool layout: the same shapes Proxmox's own installer makes (BIOS boot + ESP +
//! ZFS on the boot disk), plus one ZFS partition per data disk. All arithmetic in LBAs of the
//! disk's logical sector size, aligned to 1 MiB.

use super::disks::Picked;
use super::{DiskPlan, DiskRoleKind, PartitionPlan, PoolPlan, Vdev};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tappaas_site::{Layout, PoolSettings, Site};

/// GPT type GUID of a BIOS boot partition (sgdisk EF02).
pub const GPT_TYPE_BIOS_BOOT: &str = "21686148-6449-6e6f-744e-656564454649";
/// GPT type GUID of an EFI system partition (sgdisk EF00).
pub const GPT_TYPE_ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// GPT type GUID Proxmox and OpenZFS use for ZFS partitions (sgdisk BF01).
pub const GPT_TYPE_ZFS: &str = "6a898cc3-1dd2-11b2-99a6-080020736631";

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Proxmox gives the ESP 1 GiB on disks over 100 GiB, else 512 MiB.
const ESP_LARGE_DISK: u64 = 100 * GIB;

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    /// GRUB's core image on BIOS machines.
    BiosBoot,
    /// EFI system partition (FAT32, kernels via proxmox-boot-tool).
    Esp,
    /// ZFS vdev member.
    Zfs,
}

impl PartKind {
    /// Human name.
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::BiosBoot => "BIOS boot",
            PartKind::Esp => "EFI system",
            PartKind::Zfs => "ZFS",
        }
    }
}

/// The GPT geometry of a disk: usable LBA range for a 128-entry table.
struct Geometry {
    lba: u64,
    first_usable: u64,
    last_usable: u64,
}

impl Geometry {
    fn of(size_bytes: u64, lba: u32) -> Geometry {
        let lba = u64::from(lba.max(512));
        let total = size_bytes / lba;
        // 128 entries x 128 bytes.
        let entry_lbas = (128u64 * 128).div_ceil(lba);
        Geometry {
            lba,
            first_usable: 2 + entry_lbas,
            last_usable: total.saturating_sub(2 + entry_lbas),
        }
    }
    fn mib_lbas(&self) -> u64 {
        MIB / self.lba
    }
    /// The last LBA of the last whole MiB before the backup table.
    fn aligned_end(&self) -> u64 {
        let m = self.mib_lbas();
        ((self.last_usable + 1) / m * m).saturating_sub(1)
    }
}

fn part(
    g: &Geometry,
    by_id: &str,
    number: u32,
    kind: PartKind,
    start: u64,
    end: u64,
    label: String,
) -> PartitionPlan {
    PartitionPlan {
        number,
        kind,
        start_lba: start,
        end_lba: end,
        start_bytes: start * g.lba,
        size_bytes: (end + 1 - start) * g.lba,
        type_guid: match kind {
            PartKind::BiosBoot => GPT_TYPE_BIOS_BOOT,
            PartKind::Esp => GPT_TYPE_ESP,
            PartKind::Zfs => GPT_TYPE_ZFS,
        }
        .to_string(),
        label,
        by_id: format!("/dev/disk/by-id/{by_id}-part{number}"),
    }
}

/// The partitions for every picked disk.
pub(crate) fn disk_plans(picked: &[Picked<'_>], warnings: &mut Vec<String>) -> Vec<DiskPlan> {
    let mut out = Vec::new();
    for p in picked {
        let d = p.disk;
        let g = Geometry::of(d.size_bytes, d.logical_sector_size);
        let mib = g.mib_lbas();
        let end = g.aligned_end();
        let mut parts = Vec::new();
        match p.role {
            DiskRoleKind::Boot => {
                // Like Proxmox: BIOS boot in the gap before 1 MiB, skipped on 4Kn disks where
                // the gap is too small for GRUB's core image.
                if g.lba == 512 {
                    parts.push(part(
                        &g,
                        &p.by_id,
                        1,
                        PartKind::BiosBoot,
                        g.first_usable,
                        mib - 1,
                        format!("tappaas-bios-{}", p.index),
                    ));
                } else {
                    warnings.push(format!(
                        "boot disk {} has {}-byte sectors: no BIOS boot partition, UEFI boot only",
                        d.describe(),
                        g.lba
                    ));
                }
                let esp = if d.size_bytes > ESP_LARGE_DISK {
                    GIB
                } else {
                    512 * MIB
                };
                let esp_end = mib + esp / g.lba - 1;
                parts.push(part(
                    &g,
                    &p.by_id,
                    2,
                    PartKind::Esp,
                    mib,
                    esp_end,
                    format!("tappaas-esp-{}", p.index),
                ));
                parts.push(part(
                    &g,
                    &p.by_id,
                    3,
                    PartKind::Zfs,
                    esp_end + 1,
                    end,
                    format!("tappaas-rpool-{}", p.index),
                ));
            }
            DiskRoleKind::Tank1 | DiskRoleKind::Tank2 => {
                parts.push(part(
                    &g,
                    &p.by_id,
                    1,
                    PartKind::Zfs,
                    mib,
                    end,
                    format!("tappaas-{}-{}", p.role, p.index),
                ));
            }
        }
        out.push(DiskPlan {
            disk: super::DiskRef::from_disk(d, &p.by_id),
            role: p.role,
            index: p.index,
            erases: p.erases.clone(),
            partitions: parts,
        });
    }
    out
}

fn settings(site: &Site, role: DiskRoleKind) -> &PoolSettings {
    match role {
        DiskRoleKind::Boot => &site.storage.rpool,
        DiskRoleKind::Tank1 => &site.storage.tank1,
        DiskRoleKind::Tank2 => &site.storage.tank2,
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

/// The pools, one per role that has disks.
pub(crate) fn pools(site: &Site, picked: &[Picked<'_>], disks: &[DiskPlan]) -> Vec<PoolPlan> {
    let mut out = Vec::new();
    for role in [DiskRoleKind::Boot, DiskRoleKind::Tank1, DiskRoleKind::Tank2] {
        let members: Vec<&DiskPlan> = disks.iter().filter(|d| d.role == role).collect();
        if members.is_empty() {
            continue;
        }
        let layout = picked
            .iter()
            .find(|p| p.role == role)
            .map(|p| p.layout)
            .unwrap_or(Layout::Single);
        let zfs_parts: Vec<&super::PartitionPlan> = members
            .iter()
            .filter_map(|d| d.partitions.iter().find(|p| p.kind == PartKind::Zfs))
            .collect();
        let paths: Vec<String> = zfs_parts.iter().map(|p| p.by_id.clone()).collect();
        let smallest = zfs_parts.iter().map(|p| p.size_bytes).min().unwrap_or(0);
        let n = zfs_parts.len() as u64;
        let usable = match layout {
            Layout::Single => zfs_parts.iter().map(|p| p.size_bytes).sum(),
            Layout::Mirror => smallest,
            Layout::Raidz1 => smallest * n.saturating_sub(1),
            Layout::Raidz2 => smallest * n.saturating_sub(2),
        };
        let vdevs = if layout == Layout::Single {
            paths
                .into_iter()
                .map(|p| Vdev {
                    layout: Layout::Single,
                    members: vec![p],
                })
                .collect()
        } else {
            vec![Vdev {
                layout,
                members: paths,
            }]
        };
        let s = settings(site, role);
        let mut properties = BTreeMap::new();
        properties.insert("ashift".to_string(), s.ashift.to_string());
        properties.insert("autotrim".to_string(), on_off(s.autotrim));
        properties.insert("compatibility".to_string(), s.compatibility.clone());
        let mut fs = BTreeMap::new();
        fs.insert("compression".to_string(), s.compression.clone());
        fs.insert("atime".to_string(), on_off(s.atime));
        fs.insert("xattr".to_string(), s.xattr.clone());
        let datasets = if role == DiskRoleKind::Boot {
            // What Proxmox's installer creates and what its storage.cfg expects.
            fs.insert("acltype".to_string(), "posix".to_string());
            ["ROOT", "ROOT/pve-1", "data", "var-lib-vz"]
                .iter()
                .map(|d| format!("{}/{d}", s.name))
                .collect()
        } else {
            Vec::new()
        };
        out.push(PoolPlan {
            name: s.name.clone(),
            role,
            vdevs,
            properties,
            fs_properties: fs,
            datasets,
            usable_bytes: usable,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_512_leaves_room_for_both_tables() {
        let g = Geometry::of(256_060_514_304, 512);
        assert_eq!(g.first_usable, 34);
        assert_eq!(g.last_usable, 256_060_514_304 / 512 - 34);
        let end = g.aligned_end();
        assert_eq!((end + 1) % 2048, 0);
        assert!(end <= g.last_usable);
        assert!(g.last_usable - end < 2048 + 34);
    }

    #[test]
    fn geometry_4kn_uses_fewer_table_sectors() {
        let g = Geometry::of(1_000_204_886_016, 4096);
        assert_eq!(g.first_usable, 6);
        assert_eq!(g.mib_lbas(), 256);
        assert_eq!((g.aligned_end() + 1) % 256, 0);
    }
}
