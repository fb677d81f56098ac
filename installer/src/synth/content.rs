//! What disks hold: partition tables, partitions and the signatures blkid reports on them
//! (the live ISO, an old ZFS pool, explicit partitions).

use super::spec::{DiskSpec, Holds, LiveSpec, PartSpec};
use super::udev::udev_enc;
use super::{fake_hex, fake_uuid, SynthError};

/// GPT type of a ZFS data partition (Solaris /usr, as `zpool create` uses it).
const ZFS_DATA: &str = "6a898cc3-1dd2-11b2-99a6-080020736631";
/// GPT type of the 8 MiB partition 9 that `zpool create` reserves on whole disks.
const ZFS_RESERVED: &str = "6a945a3b-1dd2-11b2-99a6-080020736631";

/// What blkid found on a disk or partition.
#[derive(Default)]
pub(super) struct Fs {
    pub(super) props: Vec<(String, String)>,
    pub(super) uuid: Option<String>,
    pub(super) label: Option<String>,
}

pub(super) fn fs_props(
    fs_type: &str,
    label: Option<&str>,
    uuid: Option<&str>,
    sub: Option<&str>,
) -> Fs {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: &str| p.push((k.to_string(), v.to_string()));
    match fs_type {
        "iso9660" => {
            add("ID_FS_BOOT_SYSTEM_ID", "EL\\x20TORITO\\x20SPECIFICATION");
            add("ID_FS_VERSION", "Joliet Extension");
        }
        "zfs_member" => add("ID_FS_VERSION", "5000"),
        "vfat" => add("ID_FS_VERSION", "FAT16"),
        "squashfs" => add("ID_FS_VERSION", "4.0"),
        _ => {}
    }
    if let Some(l) = label {
        add("ID_FS_LABEL", l);
        add("ID_FS_LABEL_ENC", &udev_enc(l));
    }
    if let Some(u) = uuid {
        add("ID_FS_UUID", u);
        add("ID_FS_UUID_ENC", &udev_enc(u));
    }
    if let Some(s) = sub {
        add("ID_FS_UUID_SUB", s);
        add("ID_FS_UUID_SUB_ENC", s);
    }
    add("ID_FS_TYPE", fs_type);
    add("ID_FS_USAGE", "filesystem");
    Fs {
        props: p,
        uuid: uuid.map(str::to_string),
        label: label.map(str::to_string),
    }
}

/// A partition to lay out, with its content already decided.
pub(super) struct Part {
    pub(super) spec: PartSpec,
    pub(super) flags: Option<&'static str>,
    pub(super) uuid_sub: Option<String>,
}

/// What a disk holds, laid out.
pub(super) struct Layout {
    /// `(gpt | dos, table uuid)`.
    pub(super) table: Option<(String, String)>,
    pub(super) parts: Vec<Part>,
    /// A filesystem on the whole disk (the hybrid ISO).
    pub(super) disk_fs: Option<Fs>,
}

pub(super) fn layout(d: &DiskSpec, live: &LiveSpec, seed: &str) -> Result<Layout, SynthError> {
    let sectors = d.size_bytes / 512;
    let p = |number, start, size, part_type: &str| PartSpec {
        number,
        start,
        size,
        part_type: part_type.to_string(),
        part_name: None,
        fs_type: None,
        fs_label: None,
        fs_uuid: None,
        mount: None,
    };
    let (table, parts, disk_fs) = match &d.holds {
        Holds::Blank => (None, Vec::new(), None),
        Holds::LiveIso => {
            let iso = live.iso_bytes / 512;
            if iso + 2048 > sectors {
                return Err(SynthError::Spec(format!(
                    "{}: the ISO ({} bytes) does not fit",
                    d.name, live.iso_bytes
                )));
            }
            let mut p1 = p(1, 0, iso, "0x0");
            p1.fs_type = Some("iso9660".into());
            p1.fs_label = Some(live.label.clone());
            p1.fs_uuid = Some(live.iso_uuid.clone());
            p1.mount = Some("/iso".into());
            // xorriso's -isohybrid-gpt-basdat: partition 2 points at the EFI boot image inside
            // the ISO, so it lies within partition 1.
            let mut p2 = p(2, 1348, 30720, "0xef");
            p2.fs_type = Some("vfat".into());
            p2.fs_label = Some("EFIBOOT".into());
            p2.fs_uuid = Some(fake_hex(&format!("{seed}/efiboot"), 8).to_uppercase());
            if let Some(u) = p2.fs_uuid.as_mut() {
                u.insert(4, '-');
            }
            let disk_fs = fs_props("iso9660", Some(&live.label), Some(&live.iso_uuid), None);
            let parts = vec![
                Part {
                    spec: p1,
                    flags: Some("0x80"),
                    uuid_sub: None,
                },
                Part {
                    spec: p2,
                    flags: None,
                    uuid_sub: None,
                },
            ];
            (
                Some(("dos".into(), fake_hex(&format!("{seed}/pt"), 8))),
                parts,
                Some(disk_fs),
            )
        }
        Holds::ZfsWholeDisk {
            pool,
            pool_guid,
            vdev_guid,
        } => {
            // OpenZFS zpool_label_disk(): data from sector 2048, end aligned down to 1 MiB,
            // then the 8 MiB reserved partition 9.
            let last_usable = sectors.saturating_sub(34);
            let slice = (last_usable + 1).saturating_sub(16384 + 2048) / 2048 * 2048;
            let mut p1 = p(1, 2048, slice, ZFS_DATA);
            p1.part_name = Some(format!("zfs-{}", fake_hex(&format!("{seed}/zfs"), 16)));
            p1.fs_type = Some("zfs_member".into());
            p1.fs_label = Some(pool.clone());
            p1.fs_uuid = Some(pool_guid.clone());
            let p9 = p(9, 2048 + slice, 16384, ZFS_RESERVED);
            let parts = vec![
                Part {
                    spec: p1,
                    flags: None,
                    uuid_sub: Some(vdev_guid.clone()),
                },
                Part {
                    spec: p9,
                    flags: None,
                    uuid_sub: None,
                },
            ];
            (
                Some(("gpt".into(), fake_uuid(&format!("{seed}/pt")))),
                parts,
                None,
            )
        }
        Holds::Partitions { table, partitions } => {
            for q in partitions {
                if q.start + q.size > sectors {
                    return Err(SynthError::Spec(format!(
                        "{}: partition {} ends beyond the disk",
                        d.name, q.number
                    )));
                }
            }
            let id = if table == "dos" {
                fake_hex(&format!("{seed}/pt"), 8)
            } else {
                fake_uuid(&format!("{seed}/pt"))
            };
            let parts = partitions
                .iter()
                .map(|q| Part {
                    spec: q.clone(),
                    flags: None,
                    uuid_sub: None,
                })
                .collect();
            (Some((table.clone(), id)), parts, None)
        }
    };
    Ok(Layout {
        table,
        parts,
        disk_fs,
    })
}
