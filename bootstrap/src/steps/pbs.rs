//! The backup node: Proxmox Backup Server on its tank2 pool, with TAPPaaS's retention and
//! schedules, registered in the cluster as `pbs` storage, and the nightly backup job.
//!
//! PBS is configured with `proxmox-backup-manager` (through the command runner); the cluster
//! side goes through the Proxmox VE API.

use super::Env;
use crate::pve::{Fingerprint, PbsStorage, StorageCreate};
use crate::runner::{run_ok, Cmd, Runner};
use crate::state::{write_atomic, Memory};
use anyhow::{bail, Context as _};
use serde_json::Value;

/// The datastore's name.
pub const DATASTORE: &str = "tappaas";
/// The cluster storage id of the datastore.
pub const STORAGE: &str = "pbs";
/// The PBS API token PVE uses (`root@pam!pve`).
pub const TOKEN: &str = "pve";
/// The nightly backup job's id.
pub const BACKUP_JOB: &str = "tappaas-nightly";
/// TAPPaaS's retention: keep-last 4, daily 14, weekly 8, monthly 12, yearly 6.
pub const KEEP: [(&str, &str); 5] = [
    ("--keep-last", "4"),
    ("--keep-daily", "14"),
    ("--keep-weekly", "8"),
    ("--keep-monthly", "12"),
    ("--keep-yearly", "6"),
];
/// Prune runs before garbage collection, so GC frees what prune released.
pub const PRUNE_SCHEDULE: &str = "02:00";
/// Garbage collection.
pub const GC_SCHEDULE: &str = "03:00";
/// Verification of new snapshots.
pub const VERIFY_SCHEDULE: &str = "04:00";
/// The nightly backup.
pub const BACKUP_SCHEDULE: &str = "21:00";

/// The ZFS dataset that holds the datastore: `<tank2>/pbs`.
pub fn dataset(c: &crate::config::NodeConfig) -> String {
    let tank2 = c
        .manifest
        .pools
        .get("tank2")
        .cloned()
        .unwrap_or_else(|| c.site.storage.tank2.name.clone());
    format!("{tank2}/pbs")
}

fn json_list(r: &dyn Runner, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut argv: Vec<&str> = args.to_vec();
    argv.extend(["--output-format", "json"]);
    let out = run_ok(r, &Cmd::new("proxmox-backup-manager", argv.clone()))?;
    let v: Value = serde_json::from_str(&out.stdout).with_context(|| {
        format!(
            "reading the output of proxmox-backup-manager {}",
            args.join(" ")
        )
    })?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn has(list: &[Value], key: &str, name: &str) -> bool {
    list.iter()
        .any(|e| e.get(key).and_then(Value::as_str) == Some(name))
}

/// The drop-in that starts PBS only once its datastore's ZFS dataset is mounted (PBS started
/// before the mount writes into the empty mountpoint and then fails, a known TAPPaaS issue).
pub fn mount_dropin(mountpoint: &str) -> String {
    format!(
        "# Written by tappaas-bootstrap: PBS needs its datastore's ZFS dataset mounted.\n[Unit]\nAfter=zfs-mount.service\nRequires=zfs-mount.service\nRequiresMountsFor={mountpoint}\n"
    )
}

pub(super) fn datastore(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let ds = dataset(env.config);
    let mountpoint = format!("/{ds}");
    let r = env.runner;
    let exists = r.run(&Cmd::new("zfs", ["list", "-H", "-o", "name", ds.as_str()]))?;
    if exists.code != 0 {
        run_ok(
            r,
            &Cmd::new(
                "zfs",
                [
                    "create",
                    "-o",
                    &format!("mountpoint={mountpoint}"),
                    ds.as_str(),
                ],
            ),
        )?;
    }
    let dropin = mount_dropin(&mountpoint);
    let mut changed = false;
    for unit in ["proxmox-backup.service", "proxmox-backup-proxy.service"] {
        let path = env
            .paths
            .at(&format!("/etc/systemd/system/{unit}.d/tappaas-zfs.conf"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(dropin.as_str()) {
            write_atomic(&path, dropin.as_bytes(), 0o644)?;
            changed = true;
        }
    }
    if changed {
        env.systemd.daemon_reload()?;
    }
    // Started (again) once the drop-ins are in place, so it runs with its dataset mounted.
    for unit in ["proxmox-backup.service", "proxmox-backup-proxy.service"] {
        env.systemd.start(unit)?;
        crate::systemd::wait_active(
            env.systemd,
            env.notify,
            unit,
            env.timing.unit_wait,
            env.timing.poll,
        )?;
    }
    let stores = json_list(r, &["datastore", "list"])?;
    if !has(&stores, "name", DATASTORE) {
        run_ok(
            r,
            &Cmd::new(
                "proxmox-backup-manager",
                [
                    "datastore",
                    "create",
                    DATASTORE,
                    mountpoint.as_str(),
                    "--gc-schedule",
                    GC_SCHEDULE,
                ],
            ),
        )?;
    }
    Ok(())
}

pub(super) fn jobs(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let r = env.runner;
    // Setting the GC schedule again is harmless; it also repairs a changed one.
    run_ok(
        r,
        &Cmd::new(
            "proxmox-backup-manager",
            [
                "datastore",
                "update",
                DATASTORE,
                "--gc-schedule",
                GC_SCHEDULE,
            ],
        ),
    )?;
    let prune_id = format!("{DATASTORE}-prune");
    if !has(&json_list(r, &["prune-job", "list"])?, "id", &prune_id) {
        let mut argv = vec![
            "prune-job".to_string(),
            "create".into(),
            prune_id.clone(),
            "--store".into(),
            DATASTORE.into(),
            "--schedule".into(),
            PRUNE_SCHEDULE.into(),
        ];
        for (k, v) in KEEP {
            argv.push(k.into());
            argv.push(v.into());
        }
        run_ok(r, &Cmd::new("proxmox-backup-manager", argv))?;
    }
    let verify_id = format!("{DATASTORE}-verify");
    if !has(&json_list(r, &["verify-job", "list"])?, "id", &verify_id) {
        run_ok(
            r,
            &Cmd::new(
                "proxmox-backup-manager",
                [
                    "verify-job",
                    "create",
                    verify_id.as_str(),
                    "--store",
                    DATASTORE,
                    "--schedule",
                    VERIFY_SCHEDULE,
                    "--ignore-verified",
                    "true",
                    "--outdated-after",
                    "30",
                ],
            ),
        )?;
    }
    Ok(())
}

pub(super) fn storage(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    super::cluster::with_quorum(env, || register_pbs(env))
}

fn register_pbs(env: &Env<'_>) -> anyhow::Result<()> {
    let api = env.connector.local()?;
    let list = api.storage_list()?;
    if let Some(s) = list.iter().find(|s| s.storage == STORAGE) {
        if s.kind != "pbs" {
            bail!(
                "storage {STORAGE} exists but is a {} storage, not pbs",
                s.kind
            );
        }
        return Ok(());
    }
    let r = env.runner;
    let cert = env.paths.pbs_cert();
    let pem = std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
    let fp = Fingerprint::of_pem(&pem)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", cert.display()))?;
    // A fresh token each time: its secret is shown only when it is made.
    let _ = r.run(&Cmd::new(
        "proxmox-backup-manager",
        ["user", "delete-token", "root@pam", TOKEN],
    ));
    let out = run_ok(
        r,
        &Cmd::new(
            "proxmox-backup-manager",
            [
                "user",
                "generate-token",
                "root@pam",
                TOKEN,
                "--output-format",
                "json",
            ],
        ),
    )?;
    let v: Value = serde_json::from_str(&out.stdout).context("reading the new PBS token")?;
    let secret = v
        .get("value")
        .and_then(Value::as_str)
        .context("proxmox-backup-manager printed no token value")?
        .to_string();
    let auth_id = format!("root@pam!{TOKEN}");
    run_ok(
        r,
        &Cmd::new(
            "proxmox-backup-manager",
            [
                "acl",
                "update",
                &format!("/datastore/{DATASTORE}"),
                // Least privilege: back up and restore what it wrote, never delete or prune
                // (pruning runs on PBS as a prune job); a leaked storage.cfg secret cannot
                // wipe the backups (issue 12, item 7).
                "DatastoreBackup",
                "--auth-id",
                auth_id.as_str(),
            ],
        ),
    )?;
    api.storage_create(&StorageCreate::pbs(&PbsStorage {
        id: STORAGE.into(),
        server: env.config.address()?.to_string(),
        port: 8007,
        datastore: DATASTORE.into(),
        username: auth_id,
        password: secret,
        fingerprint: fp.to_string(),
    }))
    .context("registering the backup server as cluster storage")?;
    Ok(())
}

pub(super) fn backup_job(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    super::cluster::with_quorum(env, || {
        let api = env.connector.local()?;
        let jobs = api.backup_jobs()?;
        if jobs.iter().any(|j| j.id.as_deref() == Some(BACKUP_JOB)) {
            return Ok(());
        }
        api.backup_job_create(BACKUP_JOB, STORAGE, BACKUP_SCHEDULE)
            .context("creating the nightly backup job")?;
        Ok(())
    })
}
