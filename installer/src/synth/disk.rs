//! Block devices: `sys/block`, the udev database, `dev/disk/by-id`, as the kernel and
//! systemd-udevd (60-persistent-storage.rules, ata_id, usb_id, blkid) lay them out.

use super::content::{fs_props, layout, Fs, Layout};
use super::spec::{Bus, DiskSpec, LiveSpec};
use super::udev::{udev_enc, udev_safe};
use super::{fake_uuid, Ctx, Mount, SynthError};

fn pad(s: &str, n: usize) -> String {
    format!("{s:<n$}").chars().take(n).collect()
}

fn path_tag(p: &str) -> String {
    p.replace([':', '.'], "_")
}

/// `sdX` index: a..z, aa..zz, aaa.. as the sd driver names disks.
pub(super) fn sd_index(name: &str) -> Option<u32> {
    let letters = name
        .strip_prefix("sd")
        .or_else(|| name.strip_prefix("vd"))?;
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut n: u32 = 0;
    for b in letters.bytes() {
        n = n * 26 + u32::from(b - b'a') + 1;
    }
    Some(n - 1)
}

/// The kernel name of the `i`-th sd disk (`sda`, ..., `sdz`, `sdaa`, ...).
pub fn sd_name(prefix: &str, mut i: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)));
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    letters.reverse();
    format!("{prefix}{}", letters.into_iter().collect::<String>())
}

/// sd major/minor: 16 minors per disk across the sd majors 8, 65..71, 128..135.
fn sd_devno(i: u32) -> (u32, u32) {
    const MAJORS: [u32; 16] = [
        8, 65, 66, 67, 68, 69, 70, 71, 128, 129, 130, 131, 132, 133, 134, 135,
    ];
    let major = MAJORS[(i as usize / 16) % 16];
    (major, (i % 16) * 16)
}

fn part_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// Renders one disk (and its partitions) into `ctx`.
pub(super) fn render(ctx: &mut Ctx, d: &DiskSpec, live: &LiveSpec) -> Result<(), SynthError> {
    if !d.size_bytes.is_multiple_of(512) {
        return Err(SynthError::Spec(format!(
            "{}: size is not a multiple of 512",
            d.name
        )));
    }
    let seed = format!("{}/{}", d.name, d.serial);
    let Layout {
        table,
        parts,
        disk_fs,
    } = layout(d, live, &seed)?;
    let (major, minor) = match d.bus {
        Bus::Sata | Bus::Usb => sd_index(&d.name)
            .map(sd_devno)
            .ok_or_else(|| SynthError::Spec(format!("{}: not an sdX name", d.name)))?,
        Bus::Virtio => sd_index(&d.name)
            .map(|i| (253, i * 16))
            .ok_or_else(|| SynthError::Spec(format!("{}: not a vdX name", d.name)))?,
        Bus::Nvme => (259, ctx.next_nvme_minor()),
        Bus::Mmc => (179, ctx.next_mmc_index() * 8),
    };
    let devno = format!("{major}:{minor}");
    let base = format!("sys/block/{}", d.name);
    let seq = ctx.next_diskseq();
    let t = &mut ctx.tree;
    t.attr(format!("{base}/dev"), &devno);
    t.attr(format!("{base}/size"), d.size_bytes / 512);
    t.attr(format!("{base}/removable"), u8::from(d.removable));
    t.attr(format!("{base}/ro"), u8::from(d.read_only));
    t.attr(format!("{base}/diskseq"), seq);
    t.attr(
        format!("{base}/uevent"),
        format!(
            "MAJOR={major}\nMINOR={minor}\nDEVNAME={}\nDEVTYPE=disk\nDISKSEQ={seq}",
            d.name
        ),
    );
    t.attr(format!("{base}/queue/logical_block_size"), d.logical_block);
    t.attr(
        format!("{base}/queue/physical_block_size"),
        d.physical_block,
    );
    t.attr(format!("{base}/queue/hw_sector_size"), d.logical_block);
    t.attr(format!("{base}/queue/minimum_io_size"), d.physical_block);
    t.attr(format!("{base}/queue/optimal_io_size"), 0);
    t.attr(format!("{base}/queue/rotational"), u8::from(d.rotational));
    let dev = format!("{base}/device");
    let fw = d.firmware.clone().unwrap_or_default();
    let model = d.model.trim();
    let (mut links, mut props): (Vec<String>, Vec<(String, String)>) = (Vec::new(), Vec::new());
    let mut prop = |k: &str, v: &str| props.push((k.to_string(), v.to_string()));
    match d.bus {
        Bus::Nvme => {
            // sysfs: the namespace has wwid and nsid; `device` is the controller.
            if let Some(w) = &d.wwn {
                t.attr(format!("{base}/wwid"), w);
            }
            t.attr(format!("{base}/nsid"), 1);
            t.attr(format!("{dev}/model"), model);
            t.attr(format!("{dev}/serial"), &d.serial);
            t.attr(format!("{dev}/firmware_rev"), &fw);
            t.attr(format!("{dev}/address"), &d.controller);
            t.attr(format!("{dev}/transport"), "pcie");
            t.attr(format!("{dev}/state"), "live");
            let serial = format!("{}_{}", udev_safe(model), udev_safe(&d.serial));
            let path = format!("pci-{}-nvme-1", d.controller);
            prop("ID_SERIAL_SHORT", &d.serial);
            if let Some(w) = &d.wwn {
                prop("ID_WWN", w);
            }
            prop("ID_MODEL", model);
            prop("ID_REVISION", &fw);
            prop("ID_NSID", "1");
            prop("ID_SERIAL", &serial);
            prop("ID_PATH", &path);
            prop("ID_PATH_TAG", &path_tag(&path));
            links.push(format!("disk/by-id/nvme-{serial}"));
            links.push(format!("disk/by-id/nvme-{serial}_1"));
            if let Some(w) = &d.wwn {
                links.push(format!("disk/by-id/nvme-{w}"));
            }
            links.push(format!("disk/by-path/{path}"));
        }
        Bus::Sata => {
            t.attr(format!("{dev}/vendor"), pad("ATA", 8));
            t.attr(format!("{dev}/model"), pad(model, 16));
            t.attr(
                format!("{dev}/rev"),
                pad(&fw[fw.len().saturating_sub(4)..], 4),
            );
            t.attr(format!("{dev}/state"), "running");
            t.attr(format!("{dev}/type"), 0);
            // libata's emulated VPD page 0x83: NAA when the drive has a WWN, else T10 vendor id.
            let wwid = match &d.wwn {
                Some(w) => format!("naa.{}", w.trim_start_matches("0x")),
                None => format!("t10.ATA     {}{}", pad(model, 40), pad(&d.serial, 20)),
            };
            t.attr(format!("{dev}/wwid"), wwid);
            let port = d.port.as_deref().unwrap_or("1");
            let serial = format!("{}_{}", udev_safe(model), udev_safe(&d.serial));
            let path = format!("pci-{}-ata-{port}.0", d.controller);
            prop("ID_ATA", "1");
            prop("ID_TYPE", "disk");
            prop("ID_BUS", "ata");
            prop("ID_MODEL", &udev_safe(model));
            prop("ID_MODEL_ENC", &udev_enc(&pad(model, 40)));
            prop("ID_REVISION", &fw);
            prop("ID_SERIAL", &serial);
            prop("ID_SERIAL_SHORT", &d.serial);
            prop("ID_ATA_WRITE_CACHE", "1");
            prop("ID_ATA_WRITE_CACHE_ENABLED", "1");
            prop("ID_ATA_FEATURE_SET_SMART", "1");
            prop("ID_ATA_FEATURE_SET_SMART_ENABLED", "1");
            prop("ID_ATA_SATA", "1");
            prop("ID_ATA_SATA_SIGNAL_RATE_GEN1", "1");
            prop("ID_ATA_SATA_SIGNAL_RATE_GEN2", "1");
            prop(
                "ID_ATA_ROTATION_RATE_RPM",
                if d.rotational { "5400" } else { "0" },
            );
            if let Some(w) = &d.wwn {
                prop("ID_WWN", w);
                prop("ID_WWN_WITH_EXTENSION", w);
            }
            prop("ID_PATH", &path);
            prop("ID_PATH_TAG", &path_tag(&path));
            prop(
                "ID_PATH_ATA_COMPAT",
                &format!("pci-{}-ata-{port}", d.controller),
            );
            links.push(format!("disk/by-id/ata-{serial}"));
            if let Some(w) = &d.wwn {
                links.push(format!("disk/by-id/wwn-{w}"));
            }
            links.push(format!("disk/by-path/{path}"));
            links.push(format!("disk/by-path/pci-{}-ata-{port}", d.controller));
        }
        Bus::Usb => {
            let vendor = d.vendor.clone().unwrap_or_default();
            t.attr(format!("{dev}/vendor"), pad(&vendor, 8));
            t.attr(format!("{dev}/model"), pad(model, 16));
            t.attr(format!("{dev}/rev"), pad(&fw, 4));
            t.attr(format!("{dev}/state"), "running");
            t.attr(format!("{dev}/type"), 0);
            let (vid, pid) = d
                .usb_ids
                .as_deref()
                .and_then(|s| s.split_once(':'))
                .unwrap_or(("0000", "0000"));
            let port = d.port.as_deref().unwrap_or("0:1:1.0");
            let serial = format!(
                "{}_{}_{}-0:0",
                udev_safe(&vendor),
                udev_safe(model),
                udev_safe(&d.serial)
            );
            let path = format!("pci-{}-usb-{port}-scsi-0:0:0:0", d.controller);
            prop("ID_VENDOR", &udev_safe(&vendor));
            prop("ID_VENDOR_ENC", &udev_enc(&pad(&vendor, 8)));
            prop("ID_VENDOR_ID", vid);
            prop("ID_MODEL", &udev_safe(model));
            prop("ID_MODEL_ENC", &udev_enc(&pad(model, 16)));
            prop("ID_MODEL_ID", pid);
            prop("ID_REVISION", &fw);
            prop("ID_SERIAL", &serial);
            prop("ID_SERIAL_SHORT", &d.serial);
            prop("ID_TYPE", "disk");
            prop("ID_INSTANCE", "0:0");
            prop("ID_BUS", "usb");
            prop("ID_USB_INTERFACES", ":080650:");
            prop("ID_USB_INTERFACE_NUM", "00");
            prop("ID_USB_DRIVER", "usb-storage");
            prop("ID_PATH", &path);
            prop("ID_PATH_TAG", &path_tag(&path));
            links.push(format!("disk/by-id/usb-{serial}"));
            links.push(format!("disk/by-path/{path}"));
            links.push(format!(
                "disk/by-path/pci-{}-usbv3-{port}-scsi-0:0:0:0",
                d.controller
            ));
        }
        Bus::Virtio => {
            t.attr(format!("{base}/serial"), &d.serial);
            t.attr(format!("{dev}/vendor"), "0x1af4");
            t.attr(format!("{dev}/device"), "0x0002");
            let path = format!("pci-{}", d.controller);
            prop("ID_SERIAL", &d.serial);
            prop("ID_PATH", &path);
            prop("ID_PATH_TAG", &path_tag(&path));
            links.push(format!("disk/by-id/virtio-{}", d.serial));
            links.push(format!("disk/by-path/{path}"));
            links.push(format!("disk/by-path/virtio-{path}"));
        }
        Bus::Mmc => {
            t.attr(format!("{dev}/name"), model);
            t.attr(format!("{dev}/serial"), &d.serial);
            t.attr(format!("{dev}/type"), "MMC");
            let boot = d.name.split_once("boot").map(|(_, n)| format!("-boot{n}"));
            if boot.is_some() {
                t.attr(format!("{base}/force_ro"), u8::from(d.read_only));
            }
            let boot = boot.unwrap_or_default();
            let path = format!("pci-{}", d.controller);
            prop("ID_NAME", model);
            prop("ID_SERIAL", &d.serial);
            prop("ID_PATH", &path);
            prop("ID_PATH_TAG", &path_tag(&path));
            links.push(format!(
                "disk/by-id/mmc-{}_{}{boot}",
                udev_safe(model),
                d.serial
            ));
            links.push(format!("disk/by-path/{path}{boot}"));
        }
    }
    let inherited: Vec<(String, String)> = props.clone();
    let by_id_links = links.clone();
    let mut disk_links = links.clone();
    disk_links.push(format!("disk/by-diskseq/{seq}"));
    if let Some((kind, id)) = &table {
        props.push(("ID_PART_TABLE_UUID".into(), id.clone()));
        props.push(("ID_PART_TABLE_TYPE".into(), kind.clone()));
    }
    if let Some(fs) = &disk_fs {
        props.extend(fs.props.iter().cloned());
        push_fs_links(&mut disk_links, fs);
    }
    ctx.udev_block(&devno, &disk_links, &props);
    for l in by_id_links.iter().filter(|l| l.starts_with("disk/by-id/")) {
        ctx.tree
            .link(format!("dev/{l}"), format!("../../{}", d.name));
    }

    for part in &parts {
        let q = &part.spec;
        let pname = part_name(&d.name, q.number);
        let (pmaj, pmin) = match d.bus {
            Bus::Nvme => (259, ctx.next_nvme_minor()),
            _ => (major, minor + q.number),
        };
        let pdev = format!("{pmaj}:{pmin}");
        let pbase = format!("{base}/{pname}");
        let t = &mut ctx.tree;
        t.attr(format!("{pbase}/partition"), q.number);
        t.attr(format!("{pbase}/start"), q.start);
        t.attr(format!("{pbase}/size"), q.size);
        t.attr(format!("{pbase}/dev"), &pdev);
        t.attr(format!("{pbase}/ro"), u8::from(d.read_only));
        t.attr(
            format!("{pbase}/uevent"),
            format!(
                "MAJOR={pmaj}\nMINOR={pmin}\nDEVNAME={pname}\nDEVTYPE=partition\nDISKSEQ={seq}\nPARTN={}",
                q.number
            ),
        );
        let (kind, table_id) = table.clone().unwrap_or_default();
        let entry_uuid = if kind == "dos" {
            format!("{table_id}-{:02x}", q.number)
        } else {
            fake_uuid(&format!("{seed}/part{}", q.number))
        };
        let mut pprops = inherited.clone();
        pprops.push(("ID_PART_TABLE_UUID".into(), table_id.clone()));
        pprops.push(("ID_PART_TABLE_TYPE".into(), kind.clone()));
        let mut plinks: Vec<String> = links
            .iter()
            .map(|l| format!("{l}-part{}", q.number))
            .collect();
        plinks.push(format!("disk/by-diskseq/{seq}-part{}", q.number));
        plinks.push(format!("disk/by-partuuid/{entry_uuid}"));
        if let Some(fs_type) = &q.fs_type {
            let fs = fs_props(
                fs_type,
                q.fs_label.as_deref(),
                q.fs_uuid.as_deref(),
                part.uuid_sub.as_deref(),
            );
            pprops.extend(fs.props.iter().cloned());
            push_fs_links(&mut plinks, &fs);
        }
        pprops.push(("ID_PART_ENTRY_SCHEME".into(), kind.clone()));
        if let Some(n) = &q.part_name {
            pprops.push(("ID_PART_ENTRY_NAME".into(), udev_enc(n)));
            plinks.push(format!("disk/by-partlabel/{n}"));
        }
        pprops.push(("ID_PART_ENTRY_UUID".into(), entry_uuid));
        pprops.push(("ID_PART_ENTRY_TYPE".into(), q.part_type.clone()));
        if let Some(f) = part.flags {
            pprops.push(("ID_PART_ENTRY_FLAGS".into(), f.into()));
        }
        pprops.push(("ID_PART_ENTRY_NUMBER".into(), q.number.to_string()));
        pprops.push(("ID_PART_ENTRY_OFFSET".into(), q.start.to_string()));
        pprops.push(("ID_PART_ENTRY_SIZE".into(), q.size.to_string()));
        pprops.push(("ID_PART_ENTRY_DISK".into(), devno.clone()));
        ctx.udev_block(&pdev, &plinks, &pprops);
        for l in by_id_links.iter().filter(|l| l.starts_with("disk/by-id/")) {
            ctx.tree.link(
                format!("dev/{l}-part{}", q.number),
                format!("../../{pname}"),
            );
        }
        if let (Some(target), Some(fs_type)) = (&q.mount, &q.fs_type) {
            ctx.mounts.push(Mount {
                devno: pdev.clone(),
                target: target.clone(),
                fs_type: fs_type.clone(),
                source: format!("/dev/{pname}"),
            });
        }
    }
    Ok(())
}

fn push_fs_links(links: &mut Vec<String>, fs: &Fs) {
    if let Some(u) = &fs.uuid {
        links.push(format!("disk/by-uuid/{}", udev_enc(u)));
    }
    if let Some(l) = &fs.label {
        links.push(format!("disk/by-label/{}", udev_enc(l)));
    }
}

/// The live system's loop devices: loop0 carries `/iso/nix-store.squashfs`, loop1..7 are the
/// idle devices the loop driver creates at load time (size 0, `SYSTEMD_READY=0`).
pub(super) fn render_loops(ctx: &mut Ctx, live: &LiveSpec) {
    for i in 0..8u32 {
        let name = format!("loop{i}");
        let base = format!("sys/block/{name}");
        let devno = format!("7:{i}");
        let seq = ctx.next_diskseq();
        let size = if i == 0 { live.squashfs_bytes / 512 } else { 0 };
        let t = &mut ctx.tree;
        t.attr(format!("{base}/dev"), &devno);
        t.attr(format!("{base}/size"), size);
        t.attr(format!("{base}/removable"), 0);
        t.attr(format!("{base}/ro"), u8::from(i == 0));
        t.attr(format!("{base}/diskseq"), seq);
        t.attr(
            format!("{base}/uevent"),
            format!("MAJOR=7\nMINOR={i}\nDEVNAME={name}\nDEVTYPE=disk\nDISKSEQ={seq}"),
        );
        t.attr(format!("{base}/queue/logical_block_size"), 512);
        t.attr(format!("{base}/queue/physical_block_size"), 512);
        t.attr(format!("{base}/queue/rotational"), 1);
        if i == 0 {
            t.attr(
                format!("{base}/loop/backing_file"),
                "/iso/nix-store.squashfs",
            );
            t.attr(format!("{base}/loop/offset"), 0);
            t.attr(format!("{base}/loop/sizelimit"), 0);
            t.attr(format!("{base}/loop/autoclear"), 1);
            t.attr(format!("{base}/loop/partscan"), 0);
            let fs = fs_props("squashfs", None, None, None);
            ctx.udev_block(&devno, &[format!("disk/by-diskseq/{seq}")], &fs.props);
            ctx.mounts.push(Mount {
                devno,
                target: "/nix/.ro-store".into(),
                fs_type: "squashfs".into(),
                source: "/dev/loop0".into(),
            });
        } else {
            ctx.udev_block(&devno, &[], &[("SYSTEMD_READY".into(), "0".into())]);
        }
    }
}
