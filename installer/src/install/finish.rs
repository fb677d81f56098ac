//! The `bootloader` and `finish` steps. Boot entries come last among the steps that make the
//! system: an install that stops before them leaves nothing the firmware would boot. `finish`
//! restores `sync=standard`, sets `bootfs`, writes the provenance file and the install log into
//! the target, unmounts and exports every pool.

use super::root::esp_paths;
use super::{journal, Level, Run};
use crate::exec::Cmd;
use crate::inventory::FirmwareMode;
use crate::plan::StepKind;
use crate::system::format_rfc3339;
use crate::zfs;
use anyhow::{Context, Result};
use serde::Serialize;
use std::time::Duration;

const BOOT_TOOL_TIMEOUT: Duration = Duration::from_secs(1200);
const SET_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the provenance record goes in the installed system.
pub const PROVENANCE_PATH: &str = "/var/lib/tappaas/provenance.json";
/// Where the install log (the progress events as JSON lines) goes in the installed system.
pub const INSTALL_LOG_PATH: &str = "/var/log/tappaas-install.log";
/// Version of the provenance file's JSON form.
pub const PROVENANCE_FORMAT: u32 = 1;

pub(super) fn bootloader(run: &mut Run<'_>) -> Result<Option<String>> {
    let Some(tool) = run.target_tool("proxmox-boot-tool") else {
        run.notice("the root image has no proxmox-boot-tool (the lab's stand-in): no boot entries");
        return Ok(Some("no proxmox-boot-tool in the root image".into()));
    };
    let esps = esp_paths(run);
    if esps.is_empty() {
        return Ok(Some("the plan has no EFI system partition".into()));
    }
    run.ensure_chroot()?;
    for esp in esps {
        let mut cmd = run.chroot(&tool).arg("init").arg(&esp);
        if run.plan.machine.firmware == FirmwareMode::Bios {
            // Legacy boot: GRUB in the BIOS boot partition, as Proxmox installs it.
            cmd = cmd.arg("grub");
        }
        run.cmd(&cmd.timeout(BOOT_TOOL_TIMEOUT))
            .with_context(|| format!("installing boot entries on {esp}"))?;
    }
    Ok(None)
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Installer {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct PayloadRecord {
    name: String,
    file: String,
    kind: String,
    sha256: String,
    size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct StepRecord {
    id: String,
    outcome: String,
    duration_ms: u64,
    finished_at: String,
    /// `this` run or an `earlier` one (resumed from the journal).
    run: &'static str,
}

/// `/var/lib/tappaas/provenance.json`: what made this system, from what, and how long it took.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Provenance {
    format: u32,
    installer: Installer,
    site: String,
    node: String,
    role: String,
    plan_sha256: String,
    site_sha256: String,
    payload: Vec<PayloadRecord>,
    machine_id: String,
    hostid: String,
    installed_at: String,
    run_started_at: String,
    finished_at: String,
    steps: Vec<StepRecord>,
    notices: Vec<String>,
}

fn provenance(run: &Run<'_>) -> Provenance {
    let now = super::now_secs();
    let mut steps: Vec<StepRecord> = run
        .journal
        .completed
        .iter()
        .map(|c| StepRecord {
            id: c.id.clone(),
            outcome: c.outcome.clone(),
            duration_ms: c.duration_ms,
            finished_at: format_rfc3339(c.finished_at),
            run: if run.resumed.contains(&c.id) {
                "earlier"
            } else {
                "this"
            },
        })
        .collect();
    steps.push(StepRecord {
        id: StepKind::Finish.to_string(),
        outcome: "running".into(),
        duration_ms: 0,
        finished_at: format_rfc3339(now),
        run: "this",
    });
    Provenance {
        format: PROVENANCE_FORMAT,
        installer: Installer {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        },
        site: run.plan.site.clone(),
        node: run.plan.node.name.clone(),
        role: run.plan.node.role.as_str().to_string(),
        plan_sha256: run.journal.plan_sha256.clone(),
        site_sha256: journal::sha256_hex(run.site_src.as_bytes()),
        payload: run
            .payload
            .manifest
            .iter()
            .flat_map(|m| m.payload.iter())
            .map(|p| PayloadRecord {
                name: p.name.clone(),
                file: p.file.clone(),
                kind: p.kind.clone(),
                sha256: p.sha256.clone(),
                size: p.size,
            })
            .collect(),
        machine_id: run.ids.machine_id_hex(),
        hostid: format!("{:08x}", run.ids.hostid),
        installed_at: format_rfc3339(run.ids.installed_at),
        run_started_at: format_rfc3339(run.started_at),
        finished_at: format_rfc3339(now),
        steps,
        notices: run.notices.clone(),
    }
}

pub(super) fn finish(run: &mut Run<'_>) -> Result<Option<String>> {
    for pool in &run.plan.pools {
        for argv in zfs::finish_args(pool) {
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            let cmd = Cmd::new(program).args(args).timeout(SET_TIMEOUT);
            run.cmd(&cmd)
                .with_context(|| format!("setting `{}`", argv.join(" ")))?;
        }
    }

    let json = serde_json::to_vec_pretty(&provenance(run)).context("serialising provenance")?;
    let path = run.target(PROVENANCE_PATH);
    if let Some(dir) = path.parent().filter(|d| !run.host.path_exists(d)) {
        run.host.create_dir(dir, 0o700)?;
    }
    run.host
        .write_file(&path, &json, 0o644)
        .context("writing the provenance file")?;
    run.log(
        Level::Info,
        format!("wrote {PROVENANCE_PATH}; copying the install log to {INSTALL_LOG_PATH}"),
    );
    let log = run.events.log_buf.bytes();
    let path = run.target(INSTALL_LOG_PATH);
    if let Some(dir) = path.parent().filter(|d| !run.host.path_exists(d)) {
        run.host.create_dir(dir, 0o755)?;
    }
    run.host
        .write_file(&path, &log, 0o640)
        .context("copying the install log into the target")?;

    let mut errors = run.unmount_all();
    if errors.is_empty() {
        errors = super::pools::export_all(run);
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    // The very last write: the partitions lose the install marker, so from now on the disks
    // are this node's and a new install needs the site's consent to erase them.
    let marker = run.plan.install_marker.clone();
    let mut renamed = 0;
    for d in &run.plan.disks {
        let changed = crate::disk::finalize_names(run.host, d, &marker)
            .and_then(|changed| {
                crate::disk::settle(run.host, d, crate::disk::SETTLE_TIMEOUT).map(|()| changed)
            })
            .with_context(|| format!("giving the partitions of {} their final names", d.disk))?;
        renamed += usize::from(changed);
    }
    run.log(
        Level::Info,
        format!(
            "partition names final on {renamed} of {} disk(s) (install marker ~{marker} dropped)",
            run.plan.disks.len()
        ),
    );
    Ok(None)
}
