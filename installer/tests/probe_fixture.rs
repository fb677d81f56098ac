//! The probe against a handmade machine (see `probe_common`): specific values for every
//! kind of device, the boot medium, and identical results from a directory and from memory.
// Helpers outside #[test] functions fail loudly too: this is test code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod probe_common;

use probe_common::{mini_machine, NVME_SECTORS, SATA_SECTORS, USB_SECTORS};
use tappaas_installer::inventory::{FirmwareMode, Inventory, LinkState, Transport};
use tappaas_installer::probe::{probe, probe_root, render_human, DirRoot, MemRoot, SysRoot};

fn mini() -> Inventory {
    probe(&mini_machine()).expect("probing the handmade machine")
}

fn disk<'a>(inv: &'a Inventory, name: &str) -> &'a tappaas_installer::inventory::Disk {
    inv.disks
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no disk {name} in {:?}", names(inv)))
}

fn names(inv: &Inventory) -> Vec<&str> {
    inv.disks.iter().map(|d| d.name.as_str()).collect()
}

#[test]
fn lists_the_disks_lsblk_would() {
    // loop1 has nothing attached, ram0 is major 1, nvme0c0n1 is a hidden multipath node:
    // lsblk lists none of them.
    assert_eq!(names(&mini()), ["loop0", "nvme0n1", "sda", "sdb"]);
}

#[test]
fn nvme() {
    let inv = mini();
    let d = disk(&inv, "nvme0n1");
    assert_eq!(d.devno, "259:0");
    assert_eq!(d.transport, Transport::Nvme);
    assert_eq!(d.size_bytes, NVME_SECTORS * 512);
    assert_eq!(d.size_bytes, 1_000_204_886_016);
    assert_eq!(d.model.as_deref(), Some("Samsung SSD 980 1TB"));
    assert_eq!(d.serial.as_deref(), Some("S649NF0R123456X"));
    assert_eq!(d.wwn.as_deref(), Some("eui.002538b911b2c3d4"));
    // Union of /dev/disk/by-id and the udev S: lines, sorted, deduplicated.
    assert_eq!(
        d.by_id,
        [
            "nvme-Samsung_SSD_980_1TB_S649NF0R123456X",
            "nvme-Samsung_SSD_980_1TB_S649NF0R123456X_1",
            "nvme-eui.002538b911b2c3d4",
        ]
    );
    assert_eq!((d.logical_sector_size, d.physical_sector_size), (512, 512));
    assert!(!d.rotational && !d.removable && !d.read_only);
    assert!(!d.holds_data() && !d.boot_medium && d.boot_medium_reason.is_none());
    assert!(d.partitions.is_empty() && d.mountpoints.is_empty());
    assert_eq!(
        d.udev.get("ID_PATH").map(String::as_str),
        Some("pci-0000:02:00.0-nvme-1")
    );
}

#[test]
fn sata_ssd_with_an_old_zfs_pool() {
    let inv = mini();
    let d = disk(&inv, "sda");
    assert_eq!(d.transport, Transport::Sata);
    assert_eq!(d.size_bytes, SATA_SECTORS * 512);
    // The udev model, not sysfs' 16-byte "Samsung SSD 870 ".
    assert_eq!(d.model.as_deref(), Some("Samsung SSD 870 EVO 500GB"));
    assert_eq!(d.vendor.as_deref(), Some("ATA"));
    assert_eq!(d.serial.as_deref(), Some("S62ANJ0R654321Y"));
    assert_eq!(d.wwn.as_deref(), Some("0x5002538f4123abcd"));
    assert_eq!(
        d.by_id,
        [
            "wwn-0x5002538f4123abcd",
            "ata-Samsung_SSD_870_EVO_500GB_S62ANJ0R654321Y"
        ]
    );
    assert_eq!(d.preferred_by_id(), Some("wwn-0x5002538f4123abcd"));
    assert_eq!(d.physical_sector_size, 4096);
    assert_eq!(d.content.partition_table.as_deref(), Some("gpt"));
    assert_eq!(d.content.fs_type, None);
    assert_eq!(d.partitions.len(), 2);

    let esp = &d.partitions[0];
    assert_eq!((esp.name.as_str(), esp.number), ("sda1", 1));
    assert_eq!(esp.start_bytes, 2048 * 512);
    assert_eq!(esp.size_bytes, 512 * 1024 * 1024);
    assert_eq!(
        esp.part_type.as_deref(),
        Some("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
    );
    assert_eq!(esp.part_label.as_deref(), Some("EFI system partition"));
    assert_eq!(esp.content.fs_type.as_deref(), Some("vfat"));
    assert_eq!(esp.content.fs_uuid.as_deref(), Some("1A2B-3C4D"));
    // The partition's record repeats the disk's table type; the partition has no table.
    assert_eq!(esp.content.partition_table, None);

    let zfs = &d.partitions[1];
    assert_eq!((zfs.name.as_str(), zfs.number), ("sda2", 2));
    assert_eq!(zfs.start_bytes, 1_050_624 * 512);
    assert_eq!(zfs.size_bytes, 975_720_448 * 512);
    assert_eq!(zfs.content.fs_type.as_deref(), Some("zfs_member"));
    assert_eq!(zfs.content.fs_label.as_deref(), Some("oldtank"));
    assert!(d.holds_data() && !d.is_mounted() && !d.boot_medium);
}

#[test]
fn usb_stick_is_the_boot_medium() {
    let inv = mini();
    let d = disk(&inv, "sdb");
    assert_eq!(d.transport, Transport::Usb);
    assert!(d.removable && d.rotational);
    assert_eq!(d.size_bytes, USB_SECTORS * 512);
    assert_eq!(d.model.as_deref(), Some("Cruzer Blade"));
    assert_eq!(d.vendor.as_deref(), Some("SanDisk"));
    assert_eq!(d.serial.as_deref(), Some("4C530001230911117335"));
    assert_eq!(
        d.by_id,
        ["usb-SanDisk_Cruzer_Blade_4C530001230911117335-0:0"]
    );
    assert_eq!(d.mountpoints, ["/iso"]);
    assert_eq!(d.content.fs_type.as_deref(), Some("iso9660"));
    assert_eq!(d.content.fs_label.as_deref(), Some("TAPPAAS_ISO"));
    assert_eq!(d.partitions.len(), 1);
    assert!(d.boot_medium);
    let why = d.boot_medium_reason.as_deref().unwrap_or_default();
    // Four independent reasons, each named.
    for part in [
        "sdb is mounted at /iso",
        "sdb holds an iso9660 filesystem mounted at /iso",
        "root=LABEL=TAPPAAS_ISO",
        "holds /iso/nix-store.squashfs, the backing file of loop0",
    ] {
        assert!(why.contains(part), "reason {why:?} lacks {part:?}");
    }
    // The store's loop device is part of the live system too.
    let l = disk(&inv, "loop0");
    assert_eq!(l.transport, Transport::Loop);
    assert!(l.read_only && l.boot_medium);
    assert_eq!(l.mountpoints, ["/nix/.ro-store"]);
}

#[test]
fn nics() {
    let inv = mini();
    let names: Vec<&str> = inv.nics.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["enp1s0", "enp2s0", "enp3s0", "ens3", "lo"]);
    let up = &inv.nics[0];
    assert_eq!(up.mac, "00:e0:67:2a:10:01");
    assert_eq!(up.permanent_mac.as_deref(), Some("00:e0:67:2a:10:01"));
    assert_eq!(up.driver.as_deref(), Some("igc"));
    assert_eq!(up.pci.as_deref(), Some("0000:01:00.0"));
    assert!(up.physical);
    assert_eq!(up.link, LinkState::Up);
    assert_eq!(up.speed_mbps, Some(2500));
    assert_eq!(
        up.udev.get("ID_NET_NAME_PATH").map(String::as_str),
        Some("enp1s0")
    );

    let no_cable = &inv.nics[1];
    assert_eq!(no_cable.link, LinkState::Down);
    assert_eq!(no_cable.speed_mbps, None);
    assert_eq!(no_cable.pci.as_deref(), Some("0000:02:00.0"));

    let admin_down = &inv.nics[2];
    assert_eq!(admin_down.link, LinkState::Unknown);
    assert_eq!(
        admin_down.permanent_mac, None,
        "addr_assign_type 3: address was set"
    );

    let virtio = &inv.nics[3];
    assert_eq!(virtio.driver.as_deref(), Some("virtio_net"));
    assert_eq!(
        virtio.pci.as_deref(),
        Some("0000:00:03.0"),
        "the function above virtio2"
    );
    assert_eq!(
        (virtio.link, virtio.speed_mbps),
        (LinkState::Up, None),
        "speed -1"
    );

    let lo = &inv.nics[4];
    assert!(!lo.physical && lo.driver.is_none() && lo.pci.is_none());
    assert_eq!(lo.link, LinkState::Up);
}

#[test]
fn system() {
    let inv = mini();
    assert_eq!(inv.schema, tappaas_installer::inventory::INVENTORY_SCHEMA);
    assert_eq!(inv.dmi.sys_vendor, "Qotom");
    assert_eq!(inv.dmi.product_version, "V1.0");
    assert_eq!(inv.dmi.product_serial, "", "unreadable is empty");
    assert_eq!(inv.cpu.model, "Intel(R) N100");
    assert_eq!(inv.cpu.vendor, "GenuineIntel");
    assert_eq!((inv.cpu.cores, inv.cpu.threads), (4, 4));
    assert_eq!(inv.cpu.virtualization.as_deref(), Some("vmx"));
    assert!(inv.cpu.iommu);
    assert_eq!(inv.memory.total_bytes, 16_155_116 * 1024);
    assert_eq!(inv.firmware.mode, FirmwareMode::Uefi);
    assert_eq!(inv.firmware.secure_boot, Some(false));
    assert!(inv.cmdline.contains("tappaas.node=pve1") && !inv.cmdline.ends_with('\n'));
}

#[test]
fn human_report() {
    let text = render_human(&mini());
    for needle in [
        "Machine   Qotom Q20300G9-S10 V1.0",
        "UEFI, Secure Boot off",
        "RAM       16.5 GB",
        "zfs_member \"oldtank\"",
        "BOOT MEDIUM",
        "sdb is the boot medium: sdb is mounted at /iso",
        "2500 Mb/s",
        "virtual: lo",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(!text.contains("no hardware virtualization"));
    let mut no_vmx = mini();
    no_vmx.cpu.virtualization = None;
    assert!(render_human(&no_vmx).contains("no hardware virtualization"));
}

#[test]
fn memroot_and_dirroot_agree() {
    let mem = mini_machine();
    let tmp = tempfile::tempdir().expect("tempdir");
    mem.write_to_dir(tmp.path()).expect("writing the tree");
    let dir = DirRoot::new(tmp.path());
    assert_eq!(probe(&mem).expect("mem"), probe(&dir).expect("dir"));
    assert_eq!(
        probe_root(tmp.path()).expect("root"),
        probe(&mem).expect("mem")
    );
    // Loading the directory back gives the same tree, byte for byte.
    let back = MemRoot::from_dir(tmp.path()).expect("loading");
    assert_eq!(back.to_bundle(), mem.to_bundle());
    assert_eq!(
        MemRoot::from_bundle("again", &mem.to_bundle())
            .expect("bundle")
            .to_bundle(),
        mem.to_bundle()
    );

    // The primitives agree on tricky paths, including links that try to leave the root.
    let mut mem = mem;
    mem.insert_symlink("sys/escape", "../../../../../etc");
    mem.insert_symlink("sys/abs", "/proc/cpuinfo");
    mem.insert_symlink("sys/loop_a", "loop_b");
    mem.insert_symlink("sys/loop_b", "loop_a");
    let tmp2 = tempfile::tempdir().expect("tempdir");
    mem.write_to_dir(tmp2.path()).expect("writing");
    let dir = DirRoot::new(tmp2.path());
    let roots: [&dyn SysRoot; 2] = [&mem, &dir];
    let mut seen = Vec::new();
    for root in roots {
        let cpuinfo = root.read_to_string("proc/cpuinfo").expect("cpuinfo");
        // An absolute link resolves inside the root, never to the host's /proc.
        assert_eq!(root.read_to_string("sys/abs").expect("abs"), cpuinfo);
        assert_eq!(root.read_to_string("/sys/abs").expect("abs"), cpuinfo);
        assert!(!root.exists("sys/escape/passwd"), "escaped the root");
        assert!(root.read("sys/loop_a").is_err());
        seen.push((
            root.read_dir("sys/block").expect("list"),
            root.read_dir("sys/block/sda").expect("list"),
            root.read_link("sys/block/sda").expect("link"),
            root.read_link("sys/class/net/enp1s0/device").expect("link"),
            root.read_to_string("sys/class/net/enp1s0/device/net/enp1s0/../enp1s0/./address")
                .ok(),
            root.read_to_string("sys/block/sda/device/model").ok(),
            root.is_dir("sys/block/sda"),
            root.is_dir("sys/block/sda/size"),
            root.exists("sys/block/nope"),
            root.read_link("sys/block/sda/size").is_err(),
            root.read_dir("sys/block/sda/size").is_err(),
        ));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[0].2,
        "../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
    );
    assert_eq!(seen[0].4.as_deref(), Some("00:e0:67:2a:10:01\n"));
    assert_eq!(seen[0].5.as_deref(), Some("Samsung SSD 870 \n"));
}

#[test]
fn not_a_linux_root_names_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = probe_root(tmp.path()).expect_err("an empty directory is not a Linux root");
    let msg = format!("{err:#}");
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("not a Linux root"), "{msg}");
}

#[test]
fn sparse_root_degrades_to_empty_values() {
    // Just sys/block with one disk and nothing else: no panic, no error.
    let mut r = MemRoot::new("sparse");
    r.insert_symlink("sys/block/vda", "../devices/virtual/block/vda");
    r.insert_file("sys/devices/virtual/block/vda/dev", "254:0\n");
    let inv = probe(&r).expect("probe");
    assert_eq!(inv.disks.len(), 1);
    let d = &inv.disks[0];
    assert_eq!(
        (d.transport, d.size_bytes, d.logical_sector_size),
        (Transport::Virtio, 0, 512)
    );
    assert!(d.serial.is_none() && d.model.is_none() && d.by_id.is_empty());
    assert!(inv.nics.is_empty() && inv.cmdline.is_empty());
    assert_eq!(inv.firmware.mode, FirmwareMode::Bios);
    assert_eq!(inv.cpu.threads, 0);
}
