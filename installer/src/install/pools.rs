//! The `pool:*` steps: the live system takes the installed system's hostid, then each planned
//! pool is created (or imported again when an earlier run of this plan created it), gets its
//! datasets, has its file systems mounted parent first below the target, and is verified
//! against the plan. Exporting (at the end and in cleanup) is here too.

use super::check::QUERY_TIMEOUT;
use super::{Level, Run, JOURNAL_PATH};
use crate::exec::Cmd;
use crate::plan::PoolPlan;
use crate::system::hostid_bytes;
use crate::zfs::parse::{parse_dataset_names, parse_get, parse_status, parse_tsv, PoolStatus};
use crate::zfs::{self, PoolAction};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `zpool create`/`import` write labels on every member and may wait on udev: minutes.
const POOL_TIMEOUT: Duration = Duration::from_secs(300);
/// `zpool export` syncs everything written (18 s for the lab's small root under TCG).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(600);
const DATASET_TIMEOUT: Duration = Duration::from_secs(120);
/// Where pools are looked for and imported from: the stable names the plan uses.
const BY_ID: &str = "/dev/disk/by-id";

/// `zgenhostid -f <hostid>`: the pools must be last used by the hostid the installed system
/// will have (its `/etc/hostid`), or its initramfs refuses to import rpool without `-f`.
/// Without `zgenhostid` (the lab's busybox initramfs), the same 4 bytes are written to
/// `/etc/hostid` directly: ZFS reads that file whenever it stamps a pool.
fn ensure_hostid(run: &mut Run<'_>) -> Result<()> {
    if run.hostid_set {
        return Ok(());
    }
    let hex = format!("{:08x}", run.ids.hostid);
    if run.host.find_program("zgenhostid").is_some() {
        let cmd = Cmd::new("zgenhostid")
            .args(["-f", &hex])
            .timeout(QUERY_TIMEOUT);
        run.cmd(&cmd)
            .context("giving the live system the installed system's hostid")?;
    } else {
        run.host
            .write_file(
                Path::new("/etc/hostid"),
                &hostid_bytes(run.ids.hostid),
                0o644,
            )
            .context("giving the live system the installed system's hostid (/etc/hostid)")?;
        run.log(
            Level::Info,
            format!("no zgenhostid on the live system: wrote hostid {hex} to /etc/hostid"),
        );
    }
    run.hostid_set = true;
    Ok(())
}

fn pools_in(run: &mut Run<'_>, cmd: Cmd, what: &str) -> Result<Vec<PoolStatus>> {
    let out = run.cmd(&cmd).with_context(|| format!("listing {what}"))?;
    parse_status(&out.stdout_text()).with_context(|| format!("reading the list of {what}"))
}

pub(super) fn pool_step(run: &mut Run<'_>, name: &str, earlier: bool) -> Result<Option<String>> {
    let pool = run
        .plan
        .pools
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| anyhow!("the plan has no pool {name}"))?;
    ensure_hostid(run)?;
    let imported = pools_in(
        run,
        Cmd::new("zpool")
            .args(["status", "-P"])
            .timeout(QUERY_TIMEOUT),
        "imported pools",
    )?;
    // `zpool import` exits 1 when it finds nothing to import.
    let importable = pools_in(
        run,
        Cmd::new("zpool")
            .args(["import", "-d", BY_ID])
            .ok_code(1)
            .timeout(POOL_TIMEOUT),
        "importable pools",
    )?;
    let mut created = false;
    match zfs::decide(&pool, &imported, &importable) {
        PoolAction::Create if earlier => bail!(
            "an earlier run created pool {name} (journal), but ZFS finds it neither imported \
             nor importable on the planned partitions; start again from the beginning: remove \
             {JOURNAL_PATH} and rerun (the disks are wiped again)"
        ),
        PoolAction::Create => {
            let cmd = Cmd::new("zpool")
                .args(zfs::create_args(&pool, &run.ctx.target))
                .timeout(POOL_TIMEOUT);
            run.cmd(&cmd)
                .with_context(|| format!("creating pool {name}"))?;
            created = true;
        }
        PoolAction::Import { id } => {
            // By numeric id (a pool of the same name may sit on a disk the plan leaves alone),
            // without mounting: the file systems are mounted in order below.
            let cmd = Cmd::new("zpool")
                .args(["import", "-d", BY_ID, "-N", "-R"])
                .arg(run.ctx.target.as_os_str())
                .arg(&id)
                .timeout(POOL_TIMEOUT);
            run.cmd(&cmd)
                .with_context(|| format!("importing pool {name} ({id}), left by an earlier run"))?;
        }
        PoolAction::AlreadyImported => {
            run.log(Level::Info, format!("pool {name} is imported already"));
        }
        PoolAction::Conflict(msg) => bail!("pool {name}: {msg}"),
    }
    if !run.imported.iter().any(|p| p == name) {
        run.imported.push(name.to_string());
    }
    datasets(run, &pool, created)?;
    mount_all(run, &pool).with_context(|| format!("mounting the file systems of {name}"))?;
    verify(run, &pool)?;
    Ok(earlier.then(|| "created by an earlier run: imported and verified again".to_string()))
}

/// Creates the planned datasets that do not exist yet, unmounted (`-u`): they are mounted in
/// mountpoint order afterwards, so `rpool/ROOT/pve-1` on the target itself never covers a
/// file system mounted below it before.
fn datasets(run: &mut Run<'_>, pool: &PoolPlan, created: bool) -> Result<()> {
    let existing = if created {
        vec![pool.name.clone()]
    } else {
        let out = run.cmd(
            &Cmd::new("zfs")
                .args(["list", "-H", "-o", "name", "-r", &pool.name])
                .timeout(QUERY_TIMEOUT),
        )?;
        parse_dataset_names(&out.stdout_text())?
    };
    for mut args in zfs::dataset_args(pool) {
        let Some(ds) = args.last().cloned() else {
            continue;
        };
        if existing.contains(&ds) {
            continue;
        }
        args.insert(1, "-u".into());
        let cmd = Cmd::new("zfs").args(args).timeout(DATASET_TIMEOUT);
        run.cmd(&cmd)
            .with_context(|| format!("creating dataset {ds}"))?;
    }
    Ok(())
}

/// One row of `zfs list -H -o name,mountpoint,canmount,mounted -t filesystem -r POOL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fs {
    pub name: String,
    pub mountpoint: PathBuf,
    pub wanted: bool,
    pub mounted: bool,
}

pub(super) fn parse_fs_list(text: &str) -> Result<Vec<Fs>> {
    Ok(parse_tsv("zfs list", text, 4)?
        .into_iter()
        .map(|r| Fs {
            name: r[0].to_string(),
            mountpoint: PathBuf::from(r[1]),
            wanted: r[2] == "on" && r[1].starts_with('/'),
            mounted: r[3] == "yes",
        })
        .collect())
}

/// Mounts the pool's file systems parent first. A mounted file system below one that still
/// has to be mounted (the pool's root at `TARGET/rpool`, mounted by `zpool create`, below
/// `rpool/ROOT/pve-1` at `TARGET`) is unmounted first, or the new mount would hide it.
fn mount_all(run: &mut Run<'_>, pool: &PoolPlan) -> Result<()> {
    let out = run.cmd(
        &Cmd::new("zfs")
            .args([
                "list",
                "-H",
                "-o",
                "name,mountpoint,canmount,mounted",
                "-t",
                "filesystem",
                "-r",
                &pool.name,
            ])
            .timeout(QUERY_TIMEOUT),
    )?;
    let mut fs: Vec<Fs> = parse_fs_list(&out.stdout_text())?
        .into_iter()
        .filter(|f| f.wanted)
        .collect();
    fs.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    let pending: Vec<PathBuf> = fs
        .iter()
        .filter(|f| !f.mounted)
        .map(|f| f.mountpoint.clone())
        .collect();
    for f in fs.iter_mut().rev() {
        let hidden = pending
            .iter()
            .any(|p| f.mountpoint != *p && f.mountpoint.starts_with(p));
        if f.mounted && hidden {
            run.cmd(
                &Cmd::new("zfs")
                    .args(["unmount", &f.name])
                    .timeout(QUERY_TIMEOUT),
            )?;
            f.mounted = false;
        }
    }
    for f in &fs {
        if !f.mounted {
            run.cmd(
                &Cmd::new("zfs")
                    .args(["mount", &f.name])
                    .timeout(QUERY_TIMEOUT),
            )?;
        }
    }
    Ok(())
}

/// Compares the pool ZFS reports with the plan; fails with every difference.
fn verify(run: &mut Run<'_>, pool: &PoolPlan) -> Result<()> {
    let name = pool.name.as_str();
    let status = pools_in(
        run,
        Cmd::new("zpool")
            .args(["status", "-P", name])
            .timeout(QUERY_TIMEOUT),
        "the pool's status",
    )?
    .into_iter()
    .find(|s| s.name == name)
    .ok_or_else(|| anyhow!("`zpool status -P {name}` does not show pool {name}"))?;
    let mut props = BTreeMap::new();
    for (tool, keys) in [
        ("zpool", pool.properties.keys()),
        ("zfs", pool.fs_properties.keys()),
    ] {
        let keys: Vec<&str> = keys.map(String::as_str).collect();
        if keys.is_empty() {
            continue;
        }
        let cmd = Cmd::new(tool)
            .args([
                "get",
                "-Hp",
                "-o",
                "name,property,value",
                &keys.join(","),
                name,
            ])
            .timeout(QUERY_TIMEOUT);
        let out = run.cmd(&cmd)?;
        props.extend(parse_get(&out.stdout_text())?);
    }
    let out = run.cmd(
        &Cmd::new("zfs")
            .args(["list", "-Hp", "-o", "name", "-r", name])
            .timeout(QUERY_TIMEOUT),
    )?;
    let datasets = parse_dataset_names(&out.stdout_text())?;
    let diffs = zfs::verify(pool, &status, &props, &datasets);
    if !diffs.is_empty() {
        bail!(
            "pool {name} is not as planned:\n  - {}",
            diffs.join("\n  - ")
        );
    }
    run.log(
        Level::Info,
        format!("pool {name} verified: vdevs, properties and datasets as planned"),
    );
    Ok(())
}

/// Exports every pool this run imported, the last imported first (the data pools are mounted
/// inside rpool's root file system). Returns the failures.
pub(super) fn export_all(run: &mut Run<'_>) -> Vec<anyhow::Error> {
    let mut errors = Vec::new();
    for name in run.imported.clone().iter().rev() {
        let cmd = Cmd::new("zpool")
            .args(["export", name])
            .timeout(EXPORT_TIMEOUT);
        match run.cmd(&cmd) {
            Ok(_) => run.imported.retain(|p| p != name),
            Err(e) => errors.push(e.context(format!("exporting pool {name}"))),
        }
    }
    errors
}
