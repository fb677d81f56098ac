//! DMI, `/proc` (cpuinfo, meminfo, cmdline, mountinfo), UEFI variables and IOMMU units.

use super::spec::{CpuSpec, MachineSpec};
use super::{Ctx, Mount};
use std::fmt::Write as _;

/// The store path of the live system's NixOS closure (fake hash, valid Nix base32).
const SYSTEM: &str =
    "/nix/store/p4w0d2lxr3bqy9a1mn6f8k7zj5c2s8hi-nixos-system-tappaas-installer-25.11.20261120.0000000";

pub(super) fn render_dmi(ctx: &mut Ctx, m: &MachineSpec) {
    let d = &m.dmi;
    let b = "sys/class/dmi/id";
    let t = &mut ctx.tree;
    for (k, v) in [
        ("sys_vendor", Some(&d.sys_vendor)),
        ("product_name", Some(&d.product_name)),
        ("product_version", Some(&d.product_version)),
        ("product_serial", Some(&d.product_serial)),
        ("product_family", d.product_family.as_ref()),
        ("board_vendor", d.board_vendor.as_ref()),
        ("board_name", d.board_name.as_ref()),
        ("bios_vendor", d.bios_vendor.as_ref()),
        ("bios_version", Some(&d.bios_version)),
        ("bios_date", d.bios_date.as_ref()),
        ("chassis_type", d.chassis_type.as_ref()),
    ] {
        if let Some(v) = v {
            t.attr(format!("{b}/{k}"), v);
        }
    }
}

/// `(processor, core id, apicid)` for every logical CPU, in kernel order.
fn logical_cpus(c: &CpuSpec) -> Vec<(u32, u32)> {
    let ids: Vec<u32> = c.core_ids.clone().unwrap_or_else(|| (0..c.cores).collect());
    let smt = c.smt_cores.min(c.cores) as usize;
    let mut out = Vec::new();
    if c.smt_adjacent {
        for (i, &id) in ids.iter().enumerate() {
            out.push((id, id * 2));
            if i < smt {
                out.push((id, id * 2 + 1));
            }
        }
    } else {
        out.extend(ids.iter().map(|&id| (id, id * 2)));
        out.extend(ids.iter().take(smt).map(|&id| (id, id * 2 + 1)));
    }
    out
}

pub(super) fn cpuinfo(c: &CpuSpec) -> String {
    let cpus = logical_cpus(c);
    let mut s = String::new();
    for (n, (core, apic)) in cpus.iter().enumerate() {
        let _ = write!(
            s,
            "processor\t: {n}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\n\
             model name\t: {}\nstepping\t: {}\nmicrocode\t: {}\ncpu MHz\t\t: {}\n\
             cache size\t: {} KB\nphysical id\t: 0\nsiblings\t: {}\ncore id\t\t: {core}\n\
             cpu cores\t: {}\napicid\t\t: {apic}\ninitial apicid\t: {apic}\nfpu\t\t: yes\n\
             fpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {}\n",
            c.vendor_id,
            c.family,
            c.model,
            c.model_name,
            c.stepping,
            c.microcode,
            c.mhz,
            c.cache_kb,
            cpus.len(),
            c.cores,
            c.cpuid_level,
            c.flags.split_whitespace().collect::<Vec<_>>().join(" "),
        );
        if let Some(v) = &c.vmx_flags {
            let _ = writeln!(
                s,
                "vmx flags\t: {}",
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        let _ = writeln!(s, "bugs\t\t: {}", c.bugs);
        let _ = writeln!(s, "bogomips\t: {}", c.bogomips);
        if let Some(tlb) = &c.tlb_size {
            let _ = writeln!(s, "TLB size\t: {tlb}");
        }
        let pm = if c.power_management.is_empty() {
            String::new()
        } else {
            format!(" {}", c.power_management)
        };
        let _ = write!(
            s,
            "clflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: {}\npower management:{pm}\n\n",
            c.address_sizes
        );
    }
    s
}

pub(super) fn meminfo(total_kb: u64) -> String {
    let free = total_kb / 100 * 93;
    let cached = total_kb / 100 * 3;
    let rows: [(&str, u64); 30] = [
        ("MemTotal", total_kb),
        ("MemFree", free),
        ("MemAvailable", free + cached / 2),
        ("Buffers", 4_212),
        ("Cached", cached),
        ("SwapCached", 0),
        ("Active", cached / 3),
        ("Inactive", cached / 2),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 12),
        ("Writeback", 0),
        ("AnonPages", 121_344),
        ("Mapped", 151_020),
        ("Shmem", cached / 4),
        ("KReclaimable", 41_916),
        ("Slab", 96_532),
        ("SReclaimable", 41_916),
        ("SUnreclaim", 54_616),
        ("KernelStack", 6_336),
        ("PageTables", 4_108),
        ("CommitLimit", total_kb / 2),
        ("Committed_AS", 612_480),
        ("VmallocTotal", 34_359_738_367),
        ("VmallocUsed", 31_204),
        ("Percpu", 3_584),
        ("Hugepagesize", 2_048),
        ("DirectMap4k", 301_056),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{k}:"));
    }
    for k in [
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
    ] {
        let _ = writeln!(s, "{:<16}{:>8}", format!("{k}:"), 0);
    }
    s
}

pub(super) fn cmdline(m: &MachineSpec) -> String {
    let mut s = format!(
        "BOOT_IMAGE=/boot/bzImage init={SYSTEM}/init root=LABEL={} boot.shell_on_fail loglevel=4",
        m.live.label
    );
    if !m.live.cmdline_extra.is_empty() {
        s.push(' ');
        s.push_str(&m.live.cmdline_extra);
    }
    s
}

/// The live NixOS ISO's mounts: tmpfs root, the ISO at /iso, the squashfs store on loop0 under
/// an overlay at /nix/store (remounted read-only by a second mount on top), plus the API
/// filesystems systemd mounts.
pub(super) fn mountinfo(uefi: bool, block: &[Mount]) -> String {
    // (parent target, major:minor, target, mount options, fs type, source, super options)
    let store =
        "rw,lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store,workdir=/nix/.rw-store/work";
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut add =
        |p: &str, dev: &str, target: &str, opts: &str, fs: &str, src: &str, sopts: &str| {
            rows.push([p, dev, target, opts, fs, src, sopts].map(str::to_string));
        };
    let api = "rw,nosuid,nodev,noexec,relatime";
    add(
        "",
        "0:19",
        "/",
        "rw,relatime",
        "tmpfs",
        "tmpfs",
        "rw,mode=755",
    );
    add(
        "/",
        "0:5",
        "/dev",
        "rw,nosuid",
        "devtmpfs",
        "devtmpfs",
        "rw,size=4096k,nr_inodes=1048576,mode=755",
    );
    add(
        "/dev",
        "0:21",
        "/dev/pts",
        "rw,nosuid,noexec,relatime",
        "devpts",
        "devpts",
        "rw,gid=3,mode=620,ptmxmode=666",
    );
    add(
        "/dev",
        "0:22",
        "/dev/shm",
        "rw,nosuid,nodev",
        "tmpfs",
        "tmpfs",
        "rw",
    );
    add("/", "0:23", "/proc", api, "proc", "proc", "rw");
    add(
        "/",
        "0:24",
        "/run",
        "rw,nosuid,nodev",
        "tmpfs",
        "tmpfs",
        "rw,mode=755",
    );
    add(
        "/run",
        "0:25",
        "/run/keys",
        "rw,nosuid,nodev,relatime",
        "ramfs",
        "none",
        "rw,mode=750",
    );
    add(
        "/run",
        "0:26",
        "/run/wrappers",
        "rw,nodev,relatime",
        "tmpfs",
        "tmpfs",
        "rw,mode=755",
    );
    add("/", "0:27", "/sys", api, "sysfs", "sysfs", "rw");
    add(
        "/sys",
        "0:6",
        "/sys/kernel/security",
        api,
        "securityfs",
        "securityfs",
        "rw",
    );
    add(
        "/sys",
        "0:28",
        "/sys/fs/cgroup",
        api,
        "cgroup2",
        "cgroup2",
        "rw,nsdelegate,memory_recursiveprot",
    );
    add(
        "/sys",
        "0:29",
        "/sys/fs/pstore",
        api,
        "pstore",
        "pstore",
        "rw",
    );
    if uefi {
        add(
            "/sys",
            "0:30",
            "/sys/firmware/efi/efivars",
            api,
            "efivarfs",
            "efivarfs",
            "rw",
        );
    }
    add(
        "/sys",
        "0:31",
        "/sys/fs/bpf",
        api,
        "bpf",
        "bpf",
        "rw,mode=700",
    );
    for m in block {
        let (opts, sopts) = match m.fs_type.as_str() {
            "iso9660" => (
                "ro,relatime",
                "ro,nojoliet,check=s,map=n,blocksize=2048,iocharset=utf8",
            ),
            "squashfs" => ("ro,relatime", "ro,errors=continue"),
            _ => ("rw,relatime", "rw"),
        };
        add("/", &m.devno, &m.target, opts, &m.fs_type, &m.source, sopts);
    }
    add(
        "/",
        "0:32",
        "/nix/.rw-store",
        "rw,relatime",
        "tmpfs",
        "tmpfs",
        "rw,mode=755",
    );
    add(
        "/",
        "0:33",
        "/nix/store",
        "rw,relatime",
        "overlay",
        "overlay",
        store,
    );
    add(
        "/nix/store",
        "0:33",
        "/nix/store",
        "ro,relatime",
        "overlay",
        "overlay",
        store,
    );
    add(
        "/dev",
        "0:34",
        "/dev/hugepages",
        "rw,nosuid,nodev,relatime",
        "hugetlbfs",
        "hugetlbfs",
        "rw,pagesize=2M",
    );
    add("/dev", "0:20", "/dev/mqueue", api, "mqueue", "mqueue", "rw");
    add(
        "/run",
        "0:35",
        "/run/user/0",
        "rw,nosuid,nodev,relatime",
        "tmpfs",
        "tmpfs",
        "rw,size=1611644k,nr_inodes=402911,mode=700",
    );
    let mut s = String::new();
    for (i, [parent, dev, target, opts, fs, src, sopts]) in rows.iter().enumerate() {
        let id = 22 + i;
        // The parent is the most recent earlier mount on the parent's path; "/" hangs off 1.
        let parent_id = rows[..i]
            .iter()
            .rposition(|r| &r[2] == parent)
            .map_or(1, |j| 22 + j);
        let _ = writeln!(
            s,
            "{id} {parent_id} {dev} / {target} {opts} shared:{} - {fs} {src} {sopts}",
            i + 1
        );
    }
    s
}

/// `/sys/firmware/efi` with the Secure Boot and Setup Mode variables, and the IOMMU units.
pub(super) fn render_firmware(ctx: &mut Ctx, m: &MachineSpec) {
    const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
    let t = &mut ctx.tree;
    if m.firmware.uefi {
        t.attr("sys/firmware/efi/fw_platform_size", 64);
        // An efivarfs file is the 4-byte attribute mask, then the value. SecureBoot and
        // SetupMode are BOOTSERVICE_ACCESS | RUNTIME_ACCESS (0x06), one byte each.
        t.file(
            format!("sys/firmware/efi/efivars/SecureBoot-{GLOBAL}"),
            vec![0x06, 0, 0, 0, u8::from(m.firmware.secure_boot)],
        );
        t.file(
            format!("sys/firmware/efi/efivars/SetupMode-{GLOBAL}"),
            vec![0x06, 0, 0, 0, 0],
        );
    }
    for unit in &m.firmware.iommu {
        if unit.starts_with("ivhd") {
            let dev = format!("devices/pci0000:00/0000:00:00.2/iommu/{unit}");
            t.link(format!("sys/class/iommu/{unit}"), format!("../../{dev}"));
            t.attr(format!("sys/{dev}/amd-iommu/cap"), "0x00190000");
        } else {
            let dev = format!("devices/virtual/iommu/{unit}");
            t.link(format!("sys/class/iommu/{unit}"), format!("../../{dev}"));
            t.attr(format!("sys/{dev}/intel-iommu/version"), "1:0");
        }
    }
}
