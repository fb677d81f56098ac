//! Probe of a synthetic 64-disk, 8-NIC machine, written to a temporary directory the way sysfs,
//! the udev database and /dev/disk/by-id lay it out. Budget: well under 100 ms.
// A benchmark is test code: failing loudly on a broken setup is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::Criterion;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};
use tappaas_installer::probe::probe_root;

const DISKS: usize = 64;
const NICS: usize = 8;
const BUDGET: Duration = Duration::from_millis(100);

fn write(root: &Path, rel: &str, text: &str) -> io::Result<()> {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("relative paths have a parent"))?;
    fs::write(path, format!("{text}\n"))
}

fn link(root: &Path, rel: &str, target: &str) -> io::Result<()> {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("relative paths have a parent"))?;
    symlink(target, path)
}

/// A SATA disk per host port, each with a GPT and two partitions, plus Intel NICs.
fn build(root: &Path) -> io::Result<()> {
    let mut mountinfo = String::from("1 0 0:30 / / rw - tmpfs tmpfs rw\n");
    for i in 0..DISKS {
        let name = format!(
            "sd{}{}",
            char::from(b'a' + (i / 26) as u8),
            char::from(b'a' + (i % 26) as u8)
        );
        let major = 8 + 57 * (i / 16); // sd majors: 8, 65, 66, ... (any distinct value does)
        let minor = (i % 16) * 16;
        let dev = format!(
            "sys/devices/pci0000:00/0000:00:17.0/ata{n}/host{i}/target{i}:0:0/{i}:0:0:0",
            n = i + 1
        );
        let blk = format!("{dev}/block/{name}");
        link(
            root,
            &format!("sys/block/{name}"),
            &format!("../{}", &blk[4..]),
        )?;
        for (f, v) in [
            ("dev", format!("{major}:{minor}")),
            ("size", "3907029168".into()),
            ("removable", "0".into()),
            ("ro", "0".into()),
            ("queue/logical_block_size", "512".into()),
            ("queue/physical_block_size", "4096".into()),
            ("queue/rotational", "1".into()),
        ] {
            write(root, &format!("{blk}/{f}"), &v)?;
        }
        for f in [
            "stat",
            "uevent",
            "inflight",
            "capability",
            "ext_range",
            "range",
            "hidden",
        ] {
            write(root, &format!("{blk}/{f}"), "0")?;
        }
        link(
            root,
            &format!("{blk}/device"),
            &format!("../../../{i}:0:0:0"),
        )?;
        write(root, &format!("{dev}/model"), "WDC WD20EFRX-68E")?;
        write(root, &format!("{dev}/vendor"), "ATA     ")?;
        let serial = format!("WD-WCC4M{i:07}");
        let model = "WDC_WD20EFRX-68EUZN0";
        write(
            root,
            &format!("run/udev/data/b{major}:{minor}"),
            &format!(
                "S:disk/by-id/ata-{model}_{serial}\nS:disk/by-id/wwn-0x50014ee2{i:08x}\n\
                 E:ID_BUS=ata\nE:ID_MODEL={model}\nE:ID_MODEL_ENC=WDC\\x20WD20EFRX-68EUZN0\n\
                 E:ID_SERIAL_SHORT={serial}\nE:ID_WWN=0x50014ee2{i:08x}\n\
                 E:ID_PATH=pci-0000:00:17.0-ata-{n}\nE:ID_PART_TABLE_TYPE=gpt",
                n = i + 1
            ),
        )?;
        link(
            root,
            &format!("dev/disk/by-id/ata-{model}_{serial}"),
            &format!("../../{name}"),
        )?;
        link(
            root,
            &format!("dev/disk/by-id/wwn-0x50014ee2{i:08x}"),
            &format!("../../{name}"),
        )?;
        for p in 1..=2 {
            let part = format!("{blk}/{name}{p}");
            let pminor = minor + p;
            write(root, &format!("{part}/partition"), &p.to_string())?;
            write(
                root,
                &format!("{part}/start"),
                if p == 1 { "2048" } else { "1050624" },
            )?;
            write(root, &format!("{part}/size"), "1048576")?;
            write(root, &format!("{part}/dev"), &format!("{major}:{pminor}"))?;
            write(
                root,
                &format!("run/udev/data/b{major}:{pminor}"),
                "E:ID_PART_TABLE_TYPE=gpt\nE:ID_PART_ENTRY_SCHEME=gpt\nE:ID_FS_TYPE=zfs_member\n\
                 E:ID_FS_LABEL=tank\nE:ID_PART_ENTRY_TYPE=6a898cc3-1dd2-11b2-99a6-080020736631",
            )?;
            mountinfo.push_str(&format!(
                "{} 1 {major}:{pminor} / /mnt/{name}{p} rw - ext4 /dev/x rw\n",
                100 + i * 2 + p
            ));
        }
    }
    for i in 0..NICS {
        let name = format!("enp{}s0", i + 1);
        let pci = format!("0000:{:02x}:00.0", i + 1);
        let dir = format!("sys/devices/pci0000:00/0000:00:1c.{i}/{pci}/net/{name}");
        link(
            root,
            &format!("sys/class/net/{name}"),
            &format!("../../{}", &dir[4..]),
        )?;
        for (f, v) in [
            ("address", format!("00:e0:67:00:00:{i:02x}")),
            ("addr_assign_type", "0".into()),
            ("ifindex", (i + 2).to_string()),
            ("carrier", (i % 2).to_string()),
            ("operstate", if i % 2 == 1 { "up" } else { "down" }.into()),
            ("flags", "0x1003".into()),
            ("speed", "2500".into()),
        ] {
            write(root, &format!("{dir}/{f}"), &v)?;
        }
        link(root, &format!("{dir}/device"), &format!("../../../{pci}"))?;
        link(
            root,
            &format!("sys/devices/pci0000:00/0000:00:1c.{i}/{pci}/driver"),
            "../../../../bus/pci/drivers/igc",
        )?;
        write(
            root,
            &format!("run/udev/data/n{}", i + 2),
            &format!("E:ID_NET_NAME_PATH={name}"),
        )?;
    }
    link(root, "sys/class/net/lo", "../../devices/virtual/net/lo")?;
    write(
        root,
        "sys/devices/virtual/net/lo/address",
        "00:00:00:00:00:00",
    )?;
    write(root, "proc/self/mountinfo", mountinfo.trim_end())?;
    write(root, "proc/cmdline", "root=LABEL=nixos quiet")?;
    write(root, "proc/meminfo", "MemTotal:       65536000 kB")?;
    let mut cpuinfo = String::new();
    for n in 0..16 {
        cpuinfo.push_str(&format!(
            "processor\t: {n}\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: 0\ncore id\t: {}\n\
             flags\t: fpu vmx sse\n\n",
            n / 2
        ));
    }
    write(root, "proc/cpuinfo", &cpuinfo)?;
    write(root, "sys/class/dmi/id/sys_vendor", "Synthetic")?;
    Ok(())
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    build(tmp.path()).expect("building the synthetic machine");
    let inv = probe_root(tmp.path()).expect("probing");
    assert_eq!(inv.disks.len(), DISKS);
    assert!(inv
        .disks
        .iter()
        .all(|d| d.partitions.len() == 2 && d.by_id.len() == 2));
    assert_eq!(inv.nics.len(), NICS + 1);

    // The best of a few runs: the probe's own cost, without a cold page cache's noise.
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = probe_root(tmp.path()).expect("probing");
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    // The budget is for the optimized build (`cargo bench`); `cargo test --all-targets` runs
    // this unoptimized, several times slower, so it only guards against gross regressions.
    let budget = if cfg!(debug_assertions) {
        BUDGET * 3
    } else {
        BUDGET
    };
    println!(
        "probe of a {DISKS}-disk, {NICS}-NIC machine: {:.2} ms (budget {} ms{})",
        best.as_secs_f64() * 1000.0,
        budget.as_millis(),
        if cfg!(debug_assertions) {
            ", unoptimized"
        } else {
            ""
        }
    );
    // Only the optimized `cargo bench` run holds the budget: under `cargo test --all-targets`
    // (unoptimized, on a CI machine shared with other jobs) a time limit would be a flaky
    // timed test, so there the figure is printed only.
    if !cfg!(debug_assertions) {
        assert!(best < budget, "probe took {best:?}, budget {budget:?}");
    }

    c.bench_function("probe_64_disks_8_nics", |b| {
        b.iter(|| probe_root(tmp.path()).expect("probing"))
    });
}

fn main() {
    // What criterion_main! expands to, minus the undocumented function it generates.
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
