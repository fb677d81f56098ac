//! The host of `install --dry-run`: a [`DryRunHost`] with blank planned disks, a target that
//! holds a complete Proxmox root (every tool the steps look for), and a ZFS that does what it
//! is asked: after `zpool create` the pool "exists" exactly as planned, so the dry run walks
//! every step, including verification, and shows every command a real install would run.
//! What it cannot show: the disks' current content and anything the real tools would refuse.

use super::InstallContext;
use crate::exec::{Cmd, CmdError, DryRunHost, Output};
use crate::inventory::FirmwareMode;
use crate::plan::{Plan, PoolPlan};
use crate::zfs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tappaas_site::Layout;

/// Paths (relative to the target) a dry run takes as present: a Proxmox root's tools and the
/// directories the steps would otherwise create.
pub const DRY_RUN_ASSUMED: [&str; 13] = [
    "usr/bin/dpkg",
    "usr/sbin/chpasswd",
    "usr/bin/ssh-keygen",
    "usr/bin/create_pmxcfs_db",
    "usr/sbin/update-initramfs",
    "usr/sbin/proxmox-boot-tool",
    "proc",
    "sys",
    "dev",
    "run",
    "var/log",
    "var/lib/pve-cluster",
    "etc/systemd/system/multi-user.target.wants",
];

/// The dry-run host for installing `plan` with `ctx` (see the module documentation).
pub fn dry_run_host(plan: &Plan, ctx: &InstallContext) -> DryRunHost {
    let mut paths: Vec<PathBuf> = DRY_RUN_ASSUMED.iter().map(|p| ctx.target.join(p)).collect();
    if plan.machine.firmware == FirmwareMode::Uefi {
        paths.push(PathBuf::from("/sys/firmware/efi/efivars"));
    }
    let sim = SimulatedZfs::new(plan, &ctx.target);
    DryRunHost::for_plan(plan)
        .with_paths(paths)
        .respond_with(move |cmd| sim.answer(cmd))
}

/// ZFS as a dry run imagines it: every planned pool exists exactly as planned. Answers the
/// queries the install makes (`zpool status -P POOL`, `zpool get`, `zfs get`, `zfs list`);
/// every other command gets the default answer (success, no output).
#[derive(Debug, Clone)]
pub struct SimulatedZfs {
    pools: Vec<PoolPlan>,
    target: PathBuf,
}

fn ok(text: String) -> Option<Result<Output, CmdError>> {
    Some(Ok(Output {
        code: 0,
        stdout: text.into_bytes(),
        stderr: Vec::new(),
    }))
}

impl SimulatedZfs {
    /// The simulation of `plan`'s pools, mounted below `target`.
    pub fn new(plan: &Plan, target: &Path) -> SimulatedZfs {
        SimulatedZfs {
            pools: plan.pools.clone(),
            target: target.to_path_buf(),
        }
    }

    /// The answer to `cmd`, or `None` for the default one.
    pub fn answer(&self, cmd: &Cmd) -> Option<Result<Output, CmdError>> {
        let program = cmd.program().to_str()?;
        let args: Vec<&str> = cmd.get_args().iter().filter_map(|a| a.to_str()).collect();
        let pool = |name: &&str| self.pools.iter().find(|p| p.name == *name);
        match (program, args.as_slice()) {
            ("zpool", ["status", "-P", name]) => ok(status(pool(name)?)),
            ("zpool", ["get", "-Hp", "-o", _, _, name]) => {
                ok(rows(&pool(name)?.name, &pool(name)?.properties))
            }
            ("zfs", ["get", "-Hp", "-o", _, _, name]) => {
                ok(rows(&pool(name)?.name, &pool(name)?.fs_properties))
            }
            ("zfs", ["list", "-Hp", "-o", "name", "-r", name]) => {
                let p = pool(name)?;
                let mut out = format!("{}\n", p.name);
                for d in &p.datasets {
                    out.push_str(&format!("{d}\n"));
                }
                ok(out)
            }
            ("zfs", ["list", "-H", "-o", _, "-t", "filesystem", "-r", name]) => {
                ok(self.filesystems(pool(name)?))
            }
            _ => None,
        }
    }

    /// `name mountpoint canmount mounted` rows: the pool's root mounted (as `zpool create`
    /// leaves it), the datasets not (they are created with `-u`).
    fn filesystems(&self, p: &PoolPlan) -> String {
        let mut mp: BTreeMap<String, String> = BTreeMap::new();
        mp.insert(
            p.name.clone(),
            p.fs_properties
                .get("mountpoint")
                .cloned()
                .unwrap_or_else(|| format!("/{}", p.name)),
        );
        let mut out = String::new();
        let shown = |m: &str| match m.strip_prefix('/') {
            Some(rel) if !rel.is_empty() => self.target.join(rel).display().to_string(),
            Some(_) => self.target.display().to_string(),
            None => m.to_string(),
        };
        out.push_str(&format!("{}\t{}\ton\tyes\n", p.name, shown(&mp[&p.name])));
        for args in zfs::dataset_args(p) {
            let Some(ds) = args.last() else { continue };
            let explicit = args
                .iter()
                .find_map(|a| a.strip_prefix("mountpoint="))
                .map(str::to_string);
            let (parent, leaf) = ds.rsplit_once('/').unwrap_or((&p.name, ds));
            let inherited = match mp.get(parent).map(String::as_str) {
                Some("none") | None => "none".to_string(),
                Some(pm) => Path::new(pm).join(leaf).display().to_string(),
            };
            let m = explicit.unwrap_or(inherited);
            out.push_str(&format!("{ds}\t{}\ton\tno\n", shown(&m)));
            mp.insert(ds.clone(), m);
        }
        out
    }
}

fn rows(object: &str, props: &BTreeMap<String, String>) -> String {
    props
        .iter()
        .map(|(k, v)| format!("{object}\t{k}\t{v}\n"))
        .collect()
}

/// `zpool status -P` of the planned pool, ONLINE.
fn status(p: &PoolPlan) -> String {
    let mut out = format!(
        "  pool: {}\n state: ONLINE\nconfig:\n\n\tNAME\tSTATE\tREAD WRITE CKSUM\n\t{}\tONLINE\t0 0 0\n",
        p.name, p.name
    );
    for (i, v) in p.vdevs.iter().enumerate() {
        if v.layout == Layout::Single {
            for m in &v.members {
                out.push_str(&format!("\t  {m}\tONLINE\t0 0 0\n"));
            }
        } else {
            out.push_str(&format!("\t  {}-{i}\tONLINE\t0 0 0\n", v.layout.as_str()));
            for m in &v.members {
                out.push_str(&format!("\t    {m}\tONLINE\t0 0 0\n"));
            }
        }
    }
    out.push_str("\nerrors: No known data errors\n");
    out
}
