//! A handmade machine for the probe tests: the files a real NixOS live system on a mini-PC
//! would show, written out literally (sectors, udev records, link texts), so the probe's
//! parsing is checked against the kernel's formats rather than against another builder.
// Helpers outside #[test] functions fail loudly too: this is test code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
#![allow(dead_code)]

use tappaas_installer::probe::MemRoot;

/// sysfs `size` of the NVMe, in 512-byte sectors (a "1 TB" drive).
pub const NVME_SECTORS: u64 = 1_953_525_168;
/// sysfs `size` of the SATA SSD.
pub const SATA_SECTORS: u64 = 976_773_168;
/// sysfs `size` of the USB stick.
pub const USB_SECTORS: u64 = 60_063_744;

const NVME: &str = "sys/devices/pci0000:00/0000:00:1d.0/0000:02:00.0/nvme/nvme0";
const SATA: &str = "sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";
const USB: &str = "sys/devices/pci0000:00/0000:00:14.0/usb2/2-3/2-3:1.0/host1/target1:0:0/1:0:0:0";

fn files(root: &mut MemRoot, dir: &str, entries: &[(&str, &str)]) {
    for (name, value) in entries {
        root.insert_file(&format!("{dir}/{name}"), format!("{value}\n"));
    }
}

fn queue(root: &mut MemRoot, dir: &str, logical: u32, physical: u32, rotational: u32) {
    files(
        root,
        &format!("{dir}/queue"),
        &[
            ("logical_block_size", &logical.to_string()),
            ("physical_block_size", &physical.to_string()),
            ("rotational", &rotational.to_string()),
        ],
    );
}

/// The handmade machine: a Qotom box booted from a NixOS USB stick.
///
/// - `nvme0n1`: Samsung 980, blank.
/// - `sda`: SATA Samsung 870 EVO with a GPT, an ESP and a `zfs_member` of pool `oldtank`.
/// - `sdb`: SanDisk USB stick, iso9660 `TAPPAAS_ISO`, mounted at `/iso` (the boot medium).
/// - `loop0`: the NixOS store squashfs, backed by `/iso/nix-store.squashfs`.
/// - `loop1` (nothing attached), `ram0` and the NVMe multipath node `nvme0c0n1`: left out,
///   as lsblk leaves them out.
/// - NICs: `enp1s0` with carrier at 2500 Mb/s, `enp2s0` without carrier, `enp3s0`
///   administratively down, `ens3` (virtio, no speed), `lo`.
pub fn mini_machine() -> MemRoot {
    let mut r = MemRoot::new("mini");
    r.insert_file(
        "proc/cmdline",
        "BOOT_IMAGE=/boot/bzImage init=/nix/store/abc-nixos-system/init root=LABEL=TAPPAAS_ISO \
         tappaas.node=pve1 loglevel=4\n",
    );
    r.insert_symlink("proc/self", "4242");
    r.insert_file(
        "proc/4242/mountinfo",
        "1 0 0:30 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755\n\
         22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n\
         23 1 0:22 / /sys rw,nosuid shared:2 - sysfs sysfs rw\n\
         30 1 8:16 / /iso ro,relatime shared:10 - iso9660 /dev/sdb ro,nojoliet,check=s\n\
         31 1 7:0 / /nix/.ro-store ro,relatime shared:11 - squashfs /dev/loop0 ro\n\
         32 1 0:33 / /nix/store rw,relatime shared:13 - overlay overlay rw,lowerdir=/nix/.ro-store\n",
    );
    let mut cpuinfo = String::new();
    for n in 0..4 {
        cpuinfo.push_str(&format!(
            "processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
             model name\t: Intel(R) N100\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: {n}\n\
             cpu cores\t: 4\nflags\t\t: fpu vme de pse tsc msr pae vmx ssse3 sse4_1\n\n"
        ));
    }
    r.insert_file("proc/cpuinfo", cpuinfo);
    r.insert_file(
        "proc/meminfo",
        "MemTotal:       16155116 kB\nMemFree:        15000000 kB\n",
    );
    files(
        &mut r,
        "sys/devices/virtual/dmi/id",
        &[
            ("sys_vendor", "Qotom"),
            ("product_name", "Q20300G9-S10"),
            ("product_version", "V1.0  "),
            ("board_vendor", "Qotom"),
            ("board_name", "Q20300G9"),
            ("bios_version", "QT20300G9 V1.05"),
        ],
    );
    r.insert_symlink("sys/class/dmi/id", "../../devices/virtual/dmi/id");
    r.insert_file(
        "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        vec![6u8, 0, 0, 0, 0],
    );
    r.insert_symlink("sys/class/iommu/dmar0", "../../devices/virtual/iommu/dmar0");

    disks(&mut r);
    nics(&mut r);
    r
}

fn disks(r: &mut MemRoot) {
    // NVMe: model and serial on the controller, wwid on the namespace.
    let ns = format!("{NVME}/nvme0n1");
    r.insert_symlink("sys/block/nvme0n1", &format!("../{}", &ns[4..]));
    files(
        r,
        &ns,
        &[
            ("dev", "259:0"),
            ("size", &NVME_SECTORS.to_string()),
            ("removable", "0"),
            ("ro", "0"),
            ("wwid", "eui.002538b911b2c3d4"),
        ],
    );
    queue(r, &ns, 512, 512, 0);
    r.insert_symlink(&format!("{ns}/device"), "../../nvme0");
    files(
        r,
        NVME,
        &[
            ("model", "Samsung SSD 980 1TB                     "),
            ("serial", "S649NF0R123456X     "),
        ],
    );
    // A multipath path device of the same namespace: hidden, no device number.
    let path_dev = format!("{NVME}/nvme0c0n1");
    r.insert_symlink("sys/block/nvme0c0n1", &format!("../{}", &path_dev[4..]));
    files(
        r,
        &path_dev,
        &[("hidden", "1"), ("size", &NVME_SECTORS.to_string())],
    );
    r.insert_file(
        "run/udev/data/b259:0",
        "S:disk/by-id/nvme-Samsung_SSD_980_1TB_S649NF0R123456X\n\
         S:disk/by-id/nvme-eui.002538b911b2c3d4\n\
         S:disk/by-id/nvme-Samsung_SSD_980_1TB_S649NF0R123456X_1\n\
         W:4\nI:7340000\n\
         E:ID_SERIAL=Samsung SSD 980 1TB_S649NF0R123456X\n\
         E:ID_SERIAL_SHORT=S649NF0R123456X\n\
         E:ID_WWN=eui.002538b911b2c3d4\n\
         E:ID_MODEL=Samsung SSD 980 1TB\n\
         E:ID_PATH=pci-0000:02:00.0-nvme-1\n",
    );

    // SATA SSD: sysfs model truncated by SCSI INQUIRY, the full one in udev.
    let sda = format!("{SATA}/block/sda");
    r.insert_symlink("sys/block/sda", &format!("../{}", &sda[4..]));
    files(
        r,
        &sda,
        &[
            ("dev", "8:0"),
            ("size", &SATA_SECTORS.to_string()),
            ("removable", "0"),
            ("ro", "0"),
        ],
    );
    queue(r, &sda, 512, 4096, 0);
    r.insert_symlink(&format!("{sda}/device"), "../../../0:0:0:0");
    files(
        r,
        SATA,
        &[
            ("model", "Samsung SSD 870 "),
            ("vendor", "ATA     "),
            ("wwid", "naa.5002538f4123abcd"),
        ],
    );
    files(
        r,
        &format!("{sda}/sda1"),
        &[
            ("partition", "1"),
            ("start", "2048"),
            ("size", "1048576"),
            ("dev", "8:1"),
        ],
    );
    files(
        r,
        &format!("{sda}/sda2"),
        &[
            ("partition", "2"),
            ("start", "1050624"),
            ("size", "975720448"),
            ("dev", "8:2"),
        ],
    );
    r.insert_file(
        "run/udev/data/b8:0",
        "S:disk/by-id/ata-Samsung_SSD_870_EVO_500GB_S62ANJ0R654321Y\n\
         S:disk/by-id/wwn-0x5002538f4123abcd\n\
         S:disk/by-path/pci-0000:00:17.0-ata-1\n\
         E:ID_ATA=1\nE:ID_TYPE=disk\nE:ID_BUS=ata\n\
         E:ID_MODEL=Samsung_SSD_870_EVO_500GB\n\
         E:ID_MODEL_ENC=Samsung\\x20SSD\\x20870\\x20EVO\\x20500GB\\x20\\x20\\x20\\x20\\x20\\x20\n\
         E:ID_SERIAL=Samsung_SSD_870_EVO_500GB_S62ANJ0R654321Y\n\
         E:ID_SERIAL_SHORT=S62ANJ0R654321Y\n\
         E:ID_WWN=0x5002538f4123abcd\n\
         E:ID_PATH=pci-0000:00:17.0-ata-1\n\
         E:ID_PART_TABLE_TYPE=gpt\n\
         E:ID_PART_TABLE_UUID=9b2d1f0e-7c1a-4b4e-8d2f-0a1b2c3d4e5f\n",
    );
    r.insert_file(
        "run/udev/data/b8:1",
        "E:ID_PART_TABLE_TYPE=gpt\nE:ID_PART_ENTRY_SCHEME=gpt\n\
         E:ID_PART_ENTRY_NAME=EFI\\x20system\\x20partition\n\
         E:ID_PART_ENTRY_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
         E:ID_PART_ENTRY_NUMBER=1\nE:ID_FS_TYPE=vfat\nE:ID_FS_UUID=1A2B-3C4D\n",
    );
    r.insert_file(
        "run/udev/data/b8:2",
        "E:ID_PART_TABLE_TYPE=gpt\nE:ID_PART_ENTRY_SCHEME=gpt\n\
         E:ID_PART_ENTRY_NAME=zfs-0d9f8a2b7c6e5d4c\n\
         E:ID_PART_ENTRY_TYPE=6a898cc3-1dd2-11b2-99a6-080020736631\n\
         E:ID_PART_ENTRY_NUMBER=2\nE:ID_FS_TYPE=zfs_member\nE:ID_FS_LABEL=oldtank\n\
         E:ID_FS_LABEL_ENC=oldtank\nE:ID_FS_UUID=12345678901234567890\n\
         E:ID_FS_VERSION=5000\n",
    );
    for (link, target) in [
        ("ata-Samsung_SSD_870_EVO_500GB_S62ANJ0R654321Y", "sda"),
        ("wwn-0x5002538f4123abcd", "sda"),
        (
            "ata-Samsung_SSD_870_EVO_500GB_S62ANJ0R654321Y-part1",
            "sda1",
        ),
        ("wwn-0x5002538f4123abcd-part2", "sda2"),
        ("nvme-Samsung_SSD_980_1TB_S649NF0R123456X", "nvme0n1"),
        ("nvme-eui.002538b911b2c3d4", "nvme0n1"),
    ] {
        r.insert_symlink(
            &format!("dev/disk/by-id/{link}"),
            &format!("../../{target}"),
        );
    }

    // USB stick with the live ISO: whole-disk iso9660 (hybrid image), mounted at /iso.
    let sdb = format!("{USB}/block/sdb");
    r.insert_symlink("sys/block/sdb", &format!("../{}", &sdb[4..]));
    files(
        r,
        &sdb,
        &[
            ("dev", "8:16"),
            ("size", &USB_SECTORS.to_string()),
            ("removable", "1"),
            ("ro", "0"),
        ],
    );
    queue(r, &sdb, 512, 512, 1);
    r.insert_symlink(&format!("{sdb}/device"), "../../../1:0:0:0");
    files(
        r,
        USB,
        &[("model", "Cruzer Blade    "), ("vendor", "SanDisk ")],
    );
    files(
        r,
        &format!("{sdb}/sdb1"),
        &[
            ("partition", "1"),
            ("start", "0"),
            ("size", "2097152"),
            ("dev", "8:17"),
        ],
    );
    r.insert_file(
        "run/udev/data/b8:16",
        "S:disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001230911117335-0:0\n\
         E:ID_BUS=usb\nE:ID_USB_DRIVER=usb-storage\n\
         E:ID_MODEL=Cruzer_Blade\nE:ID_MODEL_ENC=Cruzer\\x20Blade\\x20\\x20\\x20\\x20\n\
         E:ID_VENDOR=SanDisk\nE:ID_VENDOR_ENC=SanDisk\\x20\n\
         E:ID_SERIAL_SHORT=4C530001230911117335\n\
         E:ID_PATH=pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0\n\
         E:ID_FS_TYPE=iso9660\nE:ID_FS_LABEL=TAPPAAS_ISO\nE:ID_FS_LABEL_ENC=TAPPAAS_ISO\n\
         E:ID_FS_UUID=2026-11-20-10-00-00-00\nE:ID_PART_TABLE_TYPE=dos\n",
    );
    r.insert_file(
        "run/udev/data/b8:17",
        "E:ID_PART_TABLE_TYPE=dos\nE:ID_PART_ENTRY_SCHEME=dos\nE:ID_PART_ENTRY_TYPE=0x0\n\
         E:ID_FS_TYPE=iso9660\nE:ID_FS_LABEL=TAPPAAS_ISO\n",
    );

    // Loop devices: loop0 carries the store, loop1 is idle; ram0 is a RAM disk.
    for (name, devno, size, backing) in [
        ("loop0", "7:0", "2000000", Some("/iso/nix-store.squashfs")),
        ("loop1", "7:1", "0", None),
        ("ram0", "1:0", "131072", None),
    ] {
        let dir = format!("sys/devices/virtual/block/{name}");
        r.insert_symlink(
            &format!("sys/block/{name}"),
            &format!("../devices/virtual/block/{name}"),
        );
        files(
            r,
            &dir,
            &[
                ("dev", devno),
                ("size", size),
                ("removable", "0"),
                ("ro", "1"),
            ],
        );
        queue(r, &dir, 512, 512, 0);
        if let Some(b) = backing {
            files(r, &format!("{dir}/loop"), &[("backing_file", b)]);
        }
    }
}

fn nics(r: &mut MemRoot) {
    struct N<'a> {
        name: &'a str,
        pci: &'a str,
        mac: &'a str,
        assign: &'a str,
        ifindex: u32,
        carrier: Option<&'a str>,
        operstate: &'a str,
        flags: &'a str,
        speed: &'a str,
    }
    let list = [
        N {
            name: "enp1s0",
            pci: "0000:01:00.0",
            mac: "00:e0:67:2a:10:01",
            assign: "0",
            ifindex: 2,
            carrier: Some("1"),
            operstate: "up",
            flags: "0x1003",
            speed: "2500",
        },
        N {
            name: "enp2s0",
            pci: "0000:02:00.0",
            mac: "00:e0:67:2a:10:02",
            assign: "0",
            ifindex: 3,
            carrier: Some("0"),
            operstate: "down",
            flags: "0x1003",
            speed: "-1",
        },
        // Administratively down: the kernel refuses to read `carrier` and `speed`.
        N {
            name: "enp3s0",
            pci: "0000:03:00.0",
            mac: "02:11:22:33:44:55",
            assign: "3",
            ifindex: 4,
            carrier: None,
            operstate: "down",
            flags: "0x1002",
            speed: "",
        },
    ];
    for n in list {
        let dir = format!(
            "sys/devices/pci0000:00/0000:00:1c.0/{}/net/{}",
            n.pci, n.name
        );
        r.insert_symlink(
            &format!("sys/class/net/{}", n.name),
            &format!("../../{}", &dir[4..]),
        );
        files(
            r,
            &dir,
            &[
                ("address", n.mac),
                ("addr_assign_type", n.assign),
                ("ifindex", &n.ifindex.to_string()),
                ("operstate", n.operstate),
                ("flags", n.flags),
            ],
        );
        if let Some(c) = n.carrier {
            files(r, &dir, &[("carrier", c), ("speed", n.speed)]);
        }
        r.insert_symlink(&format!("{dir}/device"), &format!("../../../{}", n.pci));
        r.insert_symlink(
            &format!("sys/devices/pci0000:00/0000:00:1c.0/{}/driver", n.pci),
            "../../../../bus/pci/drivers/igc",
        );
        r.insert_file(
            &format!("run/udev/data/n{}", n.ifindex),
            format!(
                "I:1000\nE:ID_NET_NAMING_SCHEME=v255\nE:ID_NET_NAME_MAC=enx{}\n\
                 E:ID_NET_NAME_PATH={}\nE:ID_NET_DRIVER=igc\n",
                n.mac.replace(':', ""),
                n.name
            ),
        );
    }
    // virtio-net as on real sysfs: `device` is the virtio child of the PCI function.
    let ens3 = "sys/devices/pci0000:00/0000:00:03.0/virtio2/net/ens3";
    r.insert_symlink("sys/class/net/ens3", &format!("../../{}", &ens3[4..]));
    files(
        r,
        ens3,
        &[
            ("address", "52:54:00:12:34:56"),
            ("addr_assign_type", "0"),
            ("ifindex", "5"),
            ("operstate", "up"),
            ("flags", "0x1003"),
            ("carrier", "1"),
            ("speed", "-1"),
        ],
    );
    r.insert_symlink(&format!("{ens3}/device"), "../../../virtio2");
    r.insert_symlink(
        "sys/devices/pci0000:00/0000:00:03.0/virtio2/driver",
        "../../../../bus/virtio/drivers/virtio_net",
    );

    let lo = "sys/devices/virtual/net/lo";
    r.insert_symlink("sys/class/net/lo", "../../devices/virtual/net/lo");
    files(
        r,
        lo,
        &[
            ("address", "00:00:00:00:00:00"),
            ("addr_assign_type", "0"),
            ("ifindex", "1"),
            ("operstate", "unknown"),
            ("flags", "0x9"),
            ("carrier", "1"),
        ],
    );
}
