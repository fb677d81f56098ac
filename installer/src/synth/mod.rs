//! Synthetic machines: a [`MachineSpec`] (TOML) becomes a root directory that looks like that
//! machine's sysfs, procfs, udev database and `/dev/disk/by-id` while the TAPPaaS live ISO runs,
//! limited to what `probe` reads. `probe --root DIR` then sees the machine.
//!
//! The committed fixtures under `hardware-profiles/fixtures/<id>/` are generated from
//! `hardware-profiles/fixtures/<id>.machine.toml`; a test regenerates them and fails on any
//! drift (`UPDATE_FIXTURES=1` rewrites them). Benchmarks and tests build large machines with
//! [`large_machine`].
//!
//! Everything is deterministic: UUIDs and other made-up identifiers derive from the spec, so the
//! same spec always gives the same bytes.

mod content;
mod disk;
mod net;
pub mod spec;
mod system;
mod tree;
mod udev;

pub use disk::sd_name;
pub use spec::*;
pub use tree::{Node, Tree};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a machine could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The spec is inconsistent.
    #[error("machine spec: {0}")]
    Spec(String),
    /// The spec file is not valid TOML for a [`MachineSpec`].
    #[error("{path}: {source}")]
    Parse {
        /// The spec file.
        path: PathBuf,
        /// Parser error with line and column.
        source: Box<toml::de::Error>,
    },
    /// Reading or writing files failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done ("writing", "reading").
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A block device mounted by the live system.
#[derive(Debug, Clone)]
struct Mount {
    devno: String,
    target: String,
    fs_type: String,
    source: String,
}

/// Rendering state: the tree being built and the kernel's running counters.
struct Ctx {
    tree: Tree,
    mounts: Vec<Mount>,
    diskseq: u64,
    nvme_minor: u32,
    mmc_index: u32,
    udev_entries: u64,
}

impl Ctx {
    fn next_diskseq(&mut self) -> u64 {
        self.diskseq += 1;
        self.diskseq
    }
    fn next_nvme_minor(&mut self) -> u32 {
        self.nvme_minor += 1;
        self.nvme_minor - 1
    }
    fn next_mmc_index(&mut self) -> u32 {
        self.mmc_index += 1;
        self.mmc_index - 1
    }
    /// Header lines shared by every udev db entry: watch handle (block only) and the
    /// initialisation time in microseconds.
    fn udev_header(&mut self, watch: bool) -> String {
        self.udev_entries += 1;
        let n = self.udev_entries;
        let mut s = String::new();
        if watch {
            s.push_str(&format!("W:{}\n", n + 3));
        }
        s.push_str(&format!("I:{}\n", 4_217_000 + n * 1_337));
        s
    }
    fn udev_block(&mut self, devno: &str, links: &[String], props: &[(String, String)]) {
        let mut s: String = links.iter().map(|l| format!("S:{l}\n")).collect();
        s.push_str(&self.udev_header(true));
        s.push_str(&udev_tail(props));
        self.tree.file(format!("run/udev/data/b{devno}"), s);
    }
    fn udev_net(&mut self, ifindex: u32, props: &[(String, String)]) {
        let mut s = self.udev_header(false);
        s.push_str(&udev_tail(props));
        self.tree.file(format!("run/udev/data/n{ifindex}"), s);
    }
}

fn udev_tail(props: &[(String, String)]) -> String {
    let mut s: String = props.iter().map(|(k, v)| format!("E:{k}={v}\n")).collect();
    s.push_str("G:systemd\nQ:systemd\nV:1\n");
    s
}

/// FNV-1a, for deterministic made-up identifiers.
fn fnv(seed: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `n` lower-case hex digits derived from `seed`.
fn fake_hex(seed: &str, n: usize) -> String {
    let mut s = String::new();
    let mut salt = 0;
    while s.len() < n {
        s.push_str(&format!("{:016x}", fnv(seed, salt)));
        salt += 1;
    }
    s.truncate(n);
    s
}

/// A version-4-shaped UUID derived from `seed`.
fn fake_uuid(seed: &str) -> String {
    let h = fake_hex(seed, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl MachineSpec {
    /// Parses a spec; `path` only names the file in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<MachineSpec, SynthError> {
        toml::from_str(text).map_err(|e| SynthError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Reads and parses a spec file.
    pub fn load(path: &Path) -> Result<MachineSpec, SynthError> {
        let text = std::fs::read_to_string(path).map_err(|e| SynthError::Io {
            what: "reading",
            path: path.to_path_buf(),
            source: e,
        })?;
        MachineSpec::from_toml(path, &text)
    }

    /// The disks meant for `role`, in spec order.
    pub fn disks_for(&self, role: crate::profile::SlotRole) -> Vec<&DiskSpec> {
        self.disks.iter().filter(|d| d.role == Some(role)).collect()
    }

    /// The NIC meant for `role`.
    pub fn nic_for(&self, role: crate::profile::PortRole) -> Option<&NicSpec> {
        self.nics.iter().find(|n| n.role == Some(role))
    }

    fn check(&self) -> Result<(), SynthError> {
        let mut names = BTreeSet::new();
        for d in &self.disks {
            if !names.insert(d.name.as_str()) {
                return Err(SynthError::Spec(format!("disk {} appears twice", d.name)));
            }
        }
        let live = self
            .disks
            .iter()
            .filter(|d| d.holds == Holds::LiveIso)
            .count();
        if live != 1 {
            return Err(SynthError::Spec(format!(
                "{live} disks hold the live ISO; the live system boots from exactly one"
            )));
        }
        let mut nics = BTreeSet::new();
        for n in &self.nics {
            if n.name == "lo" || !nics.insert(n.name.as_str()) {
                return Err(SynthError::Spec(format!("NIC {} appears twice", n.name)));
            }
        }
        let mut macs = BTreeSet::new();
        for n in &self.nics {
            if !macs.insert(n.mac.as_str()) {
                return Err(SynthError::Spec(format!("MAC {} appears twice", n.mac)));
            }
        }
        Ok(())
    }
}

/// Builds the root directory tree of a machine in memory.
pub fn render(spec: &MachineSpec) -> Result<Tree, SynthError> {
    spec.check()?;
    let mut ctx = Ctx {
        tree: Tree::default(),
        mounts: Vec::new(),
        diskseq: 0,
        nvme_minor: 0,
        mmc_index: 0,
        udev_entries: 0,
    };
    system::render_dmi(&mut ctx, spec);
    system::render_firmware(&mut ctx, spec);
    disk::render_loops(&mut ctx, &spec.live);
    for d in &spec.disks {
        disk::render(&mut ctx, d, &spec.live)?;
    }
    net::render_lo(&mut ctx);
    for (i, n) in spec.nics.iter().enumerate() {
        let ifindex = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(2);
        net::render(&mut ctx, n, ifindex)?;
    }
    // /iso first, then the store it carries, as the live system mounts them.
    ctx.mounts.sort_by_key(|m| m.target != "/iso");
    let t = &mut ctx.tree;
    t.file("proc/cpuinfo", system::cpuinfo(&spec.cpu));
    t.file("proc/meminfo", system::meminfo(spec.memory.total_kb));
    t.attr("proc/cmdline", system::cmdline(spec));
    t.file(
        "proc/self/mountinfo",
        system::mountinfo(spec.firmware.uefi, &ctx.mounts),
    );
    Ok(ctx.tree)
}

/// Writes the machine's root directory to `dir`, which must not exist or be empty.
pub fn write_root(spec: &MachineSpec, dir: &Path) -> Result<(), SynthError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { what, path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io("reading", dir))?;
        if entries.next().is_some() {
            return Err(SynthError::Spec(format!(
                "{} is not empty; refusing to write a machine over it",
                dir.display()
            )));
        }
    }
    render(spec)?.write_to(dir).map_err(io("writing", dir))
}

/// A storage server with `disks` SATA disks (8 per controller) plus the live USB stick, for
/// benchmarks and tests of large inventories.
pub fn large_machine(disks: u32) -> Result<MachineSpec, SynthError> {
    let path = Path::new("large.machine.toml");
    let mut spec = MachineSpec::from_toml(path, include_str!("large.machine.toml"))?;
    let disk = |name: String, bus, model: &str, serial: String, size_bytes| DiskSpec {
        name,
        bus,
        model: model.into(),
        vendor: None,
        serial,
        size_bytes,
        logical_block: 512,
        physical_block: 512,
        rotational: true,
        removable: false,
        read_only: false,
        firmware: None,
        wwn: None,
        controller: String::new(),
        port: None,
        usb_ids: None,
        holds: Holds::Blank,
        role: None,
    };
    for i in 0..disks {
        let mut d = disk(
            sd_name("sd", i),
            Bus::Sata,
            "ST4000NM000A-2HZ100",
            format!("WJG{i:05}"),
            4_000_787_030_016,
        );
        d.physical_block = 4096;
        d.firmware = Some("SN04".into());
        d.wwn = Some(format!("0x5000c500{i:08x}"));
        // Eight ports per AHCI controller, controllers on buses 1, 2, ...
        d.controller = format!("0000:{:02x}:00.0", i / 8 + 1);
        d.port = Some((i % 8 + 1).to_string());
        spec.disks.push(d);
    }
    let mut stick = disk(
        sd_name("sd", disks),
        Bus::Usb,
        "Ultra Fit",
        "4C530000000000000099".into(),
        30_752_636_928,
    );
    stick.vendor = Some("SanDisk".into());
    stick.removable = true;
    stick.firmware = Some("1.00".into());
    stick.usb_ids = Some("0781:5583".into());
    stick.controller = "0000:00:14.0".into();
    stick.port = Some("0:1:1.0".into());
    stick.holds = Holds::LiveIso;
    spec.disks.push(stick);
    Ok(spec)
}
