//! Block devices: `/sys/block`, the udev database, `/dev/disk/by-id`, mountinfo.

use super::boot::{self, BootFacts};
use super::parse::{
    attr, attr_u64, basename, impossible, read_udev, sectors_attr, Mount, UdevRecord,
};
use super::root::SysRoot;
use crate::inventory::{Content, Disk, Partition, Transport};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};

/// Major number of the `ram*` devices, which `lsblk` hides by default.
const RAM_MAJOR: &str = "1";

/// Every block device `lsblk` lists, sorted by kernel name, with boot media marked.
pub(crate) fn probe_disks(
    root: &dyn SysRoot,
    mounts: &[Mount],
    cmdline: &str,
) -> anyhow::Result<Vec<Disk>> {
    let swaps = swap_devices(&root.read_to_string("proc/swaps").unwrap_or_default());
    let names = root
        .read_dir("sys/block")
        .with_context(|| format!("listing {}", root.display_path("sys/block")))?;
    let by_id = by_id_links(root);
    let mut disks = Vec::new();
    let mut facts = BootFacts::default();
    for name in names {
        let base = format!("sys/block/{name}");
        let devno = attr(root, &format!("{base}/dev")).unwrap_or_default();
        if devno.split(':').next() == Some(RAM_MAJOR) || name.starts_with("ram") {
            continue;
        }
        // NVMe multipath paths (nvme0c0n1) are hidden behind their head device; lsblk skips
        // them and so does every tool that could write to them.
        if attr(root, &format!("{base}/hidden")).as_deref() == Some("1") {
            continue;
        }
        let backing = if name.starts_with("loop") {
            match attr(root, &format!("{base}/loop/backing_file")) {
                // lsblk hides loop devices with nothing attached.
                None => continue,
                Some(b) => Some(b.trim_end_matches(" (deleted)").to_string()),
            }
        } else {
            None
        };
        let disk = probe_disk(
            root,
            &name,
            devno,
            &by_id,
            mounts,
            &swaps,
            &mut facts.devnos,
        )?;
        facts.devnos.insert(name.clone(), disk.devno.clone());
        if let Some(b) = backing {
            facts.loop_backing.insert(name.clone(), b);
        }
        if let Ok(slaves) = root.read_dir(&format!("{base}/slaves")) {
            facts.slaves.insert(name.clone(), slaves);
        }
        disks.push(disk);
    }
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    boot::mark_boot_media(&mut disks, &facts, mounts, cmdline);
    Ok(disks)
}

/// `/dev/disk/by-id` link names by the kernel name they point at.
fn by_id_links(root: &dyn SysRoot) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for link in root.read_dir("dev/disk/by-id").unwrap_or_default() {
        if let Ok(text) = root.read_link(&format!("dev/disk/by-id/{link}")) {
            map.entry(basename(&text).to_string())
                .or_default()
                .push(link);
        }
    }
    map
}

fn probe_disk(
    root: &dyn SysRoot,
    name: &str,
    devno: String,
    by_id: &BTreeMap<String, Vec<String>>,
    mounts: &[Mount],
    swaps: &BTreeSet<String>,
    devnos: &mut BTreeMap<String, String>,
) -> anyhow::Result<Disk> {
    let base = format!("sys/block/{name}");
    let udev = read_udev(root, &format!("b{devno}"));
    let sys_link = root.read_link(&base).unwrap_or_default();
    let transport = transport(name, &udev, &sys_link);
    let flag = |file: &str| attr(root, &format!("{base}/{file}")).as_deref() == Some("1");
    let text = |file: &str| attr(root, &format!("{base}/{file}"));

    let mut links: Vec<String> = by_id.get(name).cloned().unwrap_or_default();
    links.extend(
        udev.links
            .iter()
            .filter_map(|l| l.strip_prefix("disk/by-id/"))
            .map(str::to_string),
    );
    links.sort_by(|a, b| (!a.starts_with("wwn-"), a).cmp(&(!b.starts_with("wwn-"), b)));
    links.dedup();

    let sector_size = |file: &str| -> anyhow::Result<u32> {
        let path = format!("{base}/queue/{file}");
        match attr_u64(root, &path) {
            None => Ok(512),
            Some(v) => u32::try_from(v)
                .ok()
                .filter(|v| v.is_power_of_two())
                .ok_or_else(|| {
                    impossible(root, &path, &format!("a sector size of {v}"), "no disk")
                }),
        }
    };
    let size_bytes = sectors_attr(root, &format!("{base}/size"))?;
    let logical_sector_size = sector_size("logical_block_size")?;
    let physical_sector_size = sector_size("physical_block_size")?;
    let partitions = partitions(root, name, mounts, swaps, devnos)?;

    Ok(Disk {
        name: name.to_string(),
        by_id: links,
        // Virtio-blk has `serial` on the block device itself, SCSI/NVMe under `device/`.
        serial: udev
            .get("ID_SERIAL_SHORT")
            .map(str::to_string)
            .or_else(|| text("device/serial"))
            .or_else(|| text("serial")),
        wwn: udev
            .get("ID_WWN")
            .map(str::to_string)
            .or_else(|| text("device/wwid"))
            .or_else(|| text("wwid")),
        // As lsblk does: the udev string is the full ATA model, where sysfs has SCSI INQUIRY's
        // 16-byte truncation ("Samsung SSD 870 " for "Samsung SSD 870 EVO 1TB").
        model: udev
            .decoded("ID_MODEL_ENC")
            .or_else(|| text("device/model"))
            .or_else(|| udev.get("ID_MODEL").map(|m| m.replace('_', " ")))
            // SD/eMMC: the card's product name.
            .or_else(|| udev.get("ID_NAME").map(str::to_string))
            .or_else(|| text("device/name")),
        vendor: udev
            .decoded("ID_VENDOR_ENC")
            .or_else(|| text("device/vendor"))
            .or_else(|| udev.get("ID_VENDOR").map(|m| m.replace('_', " "))),
        size_bytes,
        logical_sector_size,
        physical_sector_size,
        rotational: attr(root, &format!("{base}/queue/rotational")).as_deref() == Some("1"),
        removable: flag("removable") || transport == Transport::Usb,
        read_only: flag("ro"),
        transport,
        content: content(&udev, false, mounts, &devno),
        partitions,
        mountpoints: mountpoints(mounts, &devno),
        holders: holders(root, &base),
        swap: swaps.contains(name),
        boot_medium: false,
        boot_medium_reason: None,
        udev: udev.props,
        devno,
    })
}

fn partitions(
    root: &dyn SysRoot,
    disk: &str,
    mounts: &[Mount],
    swaps: &BTreeSet<String>,
    devnos: &mut BTreeMap<String, String>,
) -> anyhow::Result<Vec<Partition>> {
    let base = format!("sys/block/{disk}");
    let mut parts = Vec::new();
    for entry in root.read_dir(&base).unwrap_or_default() {
        // Partitions are named after their disk (sda1, nvme0n1p1, mmcblk0p1); skip the dozens
        // of other attributes without a lookup.
        if !entry.starts_with(disk) {
            continue;
        }
        let dir = format!("{base}/{entry}");
        let Some(number) = attr_u64(root, &format!("{dir}/partition")) else {
            continue;
        };
        let devno = attr(root, &format!("{dir}/dev")).unwrap_or_default();
        let udev = read_udev(root, &format!("b{devno}"));
        let number = u32::try_from(number).map_err(|_| {
            impossible(
                root,
                &format!("{dir}/partition"),
                &format!("partition number {number}"),
                "no partition table",
            )
        })?;
        parts.push(Partition {
            number,
            start_bytes: sectors_attr(root, &format!("{dir}/start"))?,
            size_bytes: sectors_attr(root, &format!("{dir}/size"))?,
            part_type: udev.get("ID_PART_ENTRY_TYPE").map(str::to_lowercase),
            part_label: udev.decoded("ID_PART_ENTRY_NAME"),
            content: content(&udev, true, mounts, &devno),
            mountpoints: mountpoints(mounts, &devno),
            holders: holders(root, &dir),
            swap: swaps.contains(&entry),
            name: entry.clone(),
        });
        devnos.insert(entry, devno);
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

/// What blkid (through udev) found on a device; without a udev database (fixtures, minimal
/// systems) a mounted device at least shows the mounted filesystem's type, so it never looks
/// empty.
fn content(udev: &UdevRecord, is_partition: bool, mounts: &[Mount], devno: &str) -> Content {
    let table = udev.get("ID_PART_TABLE_TYPE").map(str::to_string);
    // udev copies the parent's table type into each partition's record; a partition only has a
    // table of its own when it differs from the scheme it is an entry of.
    let table = if is_partition && table.as_deref() == udev.get("ID_PART_ENTRY_SCHEME") {
        None
    } else {
        table
    };
    Content {
        partition_table: table,
        fs_type: udev.get("ID_FS_TYPE").map(str::to_string).or_else(|| {
            mounts
                .iter()
                .find(|m| !devno.is_empty() && m.devno == devno)
                .map(|m| m.fstype.clone())
        }),
        fs_label: udev.get_enc("ID_FS_LABEL"),
        fs_uuid: udev.get("ID_FS_UUID").map(str::to_string),
    }
}

/// Devices stacked on a disk or partition (`holders/` lists dm-0, md127, ...).
fn holders(root: &dyn SysRoot, dir: &str) -> Vec<String> {
    let mut h = root.read_dir(&format!("{dir}/holders")).unwrap_or_default();
    h.sort();
    h
}

/// Kernel names of active swap devices, from `proc/swaps` (swap files are not devices).
pub(crate) fn swap_devices(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|dev| dev.strip_prefix("/dev/"))
        .map(|d| d.rsplit('/').next().unwrap_or(d).to_string())
        .collect()
}

fn mountpoints(mounts: &[Mount], devno: &str) -> Vec<String> {
    let mut mps: Vec<String> = mounts
        .iter()
        .filter(|m| !devno.is_empty() && m.devno == devno)
        .map(|m| m.mountpoint.clone())
        .collect();
    mps.sort();
    mps.dedup();
    mps
}

/// How the device is attached: the name for bus-specific drivers, then udev, then the sysfs
/// path (fixtures and systems without udev).
fn transport(name: &str, udev: &UdevRecord, sys_link: &str) -> Transport {
    let prefixes = [
        ("loop", Transport::Loop),
        ("nvme", Transport::Nvme),
        ("vd", Transport::Virtio),
        ("mmcblk", Transport::Mmc),
        ("sr", Transport::Optical),
    ];
    if let Some((_, t)) = prefixes.iter().find(|(p, _)| name.starts_with(p)) {
        return *t;
    }
    let bus = udev.get("ID_BUS").unwrap_or_default();
    let path = udev.get("ID_PATH").unwrap_or_default();
    let segs: Vec<&str> = sys_link.split('/').collect();
    let seg = |prefix: &str| {
        segs.iter().any(|s| {
            s.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if udev.get("ID_CDROM") == Some("1") {
        Transport::Optical
    } else if bus == "usb" || path.contains("usb") || seg("usb") {
        Transport::Usb
    } else if path.contains("-sas-") || segs.iter().any(|s| s.starts_with("end_device-")) {
        Transport::Sas
    } else if bus == "ata" || path.contains("-ata-") || seg("ata") {
        Transport::Sata
    } else if bus == "scsi" || name.starts_with("sd") {
        Transport::Scsi
    } else {
        Transport::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::parse::parse_udev;

    #[test]
    fn transports() {
        let none = UdevRecord::default();
        let sata_link =
            "../devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sda";
        let usb_link =
            "../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host3/target3:0:0/3:0:0:0/block/sdb";
        assert_eq!(transport("sda", &none, sata_link), Transport::Sata);
        assert_eq!(transport("sdb", &none, usb_link), Transport::Usb);
        assert_eq!(
            transport("sdc", &none, "../devices/virtual/x/sdc"),
            Transport::Scsi
        );
        assert_eq!(transport("nvme0n1", &none, ""), Transport::Nvme);
        assert_eq!(transport("zram0", &none, ""), Transport::Other);
        let usb = parse_udev("E:ID_BUS=usb\n");
        assert_eq!(transport("sda", &usb, sata_link), Transport::Usb);
    }

    #[test]
    fn partition_does_not_inherit_parent_table() {
        let rec = parse_udev("E:ID_PART_TABLE_TYPE=gpt\nE:ID_PART_ENTRY_SCHEME=gpt\n");
        assert_eq!(content(&rec, true, &[], "8:1").partition_table, None);
        assert_eq!(
            content(&rec, false, &[], "8:0").partition_table.as_deref(),
            Some("gpt")
        );
    }

    #[test]
    fn a_size_no_disk_can_have_is_an_error_naming_the_file() {
        let mut root = crate::probe::MemRoot::new("t");
        root.insert_file("sys/block/sda/dev", "8:0\n");
        // 2^55 + 1 sectors: their bytes wrap to 512 in 64 bits.
        root.insert_file("sys/block/sda/size", format!("{}\n", (1u64 << 55) + 1));
        let e = format!("{:#}", crate::probe::probe(&root).unwrap_err());
        assert!(
            e.contains("sys/block/sda/size") && e.contains("sectors"),
            "{e}"
        );
        root.insert_file("sys/block/sda/size", "1000\n");
        root.insert_file("sys/block/sda/queue/logical_block_size", "3\n");
        let e = format!("{:#}", crate::probe::probe(&root).unwrap_err());
        assert!(e.contains("logical_block_size"), "{e}");
        root.insert_file("sys/block/sda/queue/logical_block_size", "4096\n");
        let inv = crate::probe::probe(&root).expect("probe");
        assert_eq!(inv.disks[0].size_bytes, 512_000);
    }
}

#[cfg(test)]
mod swap_tests {
    use super::swap_devices;

    #[test]
    fn swap_devices_are_kernel_names_and_files_are_ignored() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/sda2                               partition\t8388604\t\t0\t\t-2\n\
                    /dev/mapper/../dm-1                     partition\t1048572\t\t0\t\t-3\n\
                    /swapfile                               file\t\t1048572\t\t0\t\t-4\n";
        let s: Vec<String> = swap_devices(text).into_iter().collect();
        assert_eq!(s, vec!["dm-1", "sda2"]);
    }
}
