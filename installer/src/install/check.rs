//! The `preflight` step: everything checked before the first write. Re-probes the machine and
//! checks the planned disks (`preflight::check_disks`), the payload (`check_payload`), the live
//! system's tools, the target directory and the imported pools, and renders the installed
//! system's files, so a value that cannot be written stops the install here. Reports every
//! finding at once; reads only.

use super::{Level, Machine, Payload, Run};
use crate::exec::Cmd;
use crate::plan::{DiskKey, StepKind};
use crate::preflight::{self, Finding, PreflightFailed};
use crate::zfs::parse::parse_status;
use crate::{probe, system};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// Programs the live system must have (looked up on `PATH`). `zgenhostid` is used when
/// present, not required.
pub(super) const LIVE_TOOLS: [&str; 6] = ["zpool", "zfs", "mkfs.vfat", "chroot", "mount", "umount"];

/// The payload kind of the Proxmox root image.
pub(super) const ROOT_KIND: &str = "root-squashfs";
/// The payload kind of one Proxmox package (`.deb`), unpacked into the root by `packages`.
pub(super) const PACKAGE_KIND: &str = "package";

pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn preflight(run: &mut Run<'_>) -> Result<Option<String>> {
    let mut findings = Vec::new();
    let inv = match &run.ctx.machine {
        Machine::Root(p) => probe::probe_root(p)
            .with_context(|| format!("re-probing the machine at {}", p.display()))?,
        Machine::Inventory(i) => (**i).clone(),
    };
    let mut checked = run.plan.clone();
    if run.resuming {
        // The disks an earlier run of this plan wiped hold its partial install, not data.
        for d in &mut checked.disks {
            if run
                .journal
                .is_complete(&StepKind::Wipe(DiskKey::of(d)).into())
            {
                d.erases = Some("the partial install of an earlier run".into());
            }
        }
    }
    findings.extend(preflight::check_disks(&checked, &inv));
    let verified = payload(run, &mut findings);
    for tool in LIVE_TOOLS {
        if run.host.find_program(tool).is_none() {
            findings.push(Finding {
                subject: "the live system".into(),
                message: format!("has no `{tool}` on PATH"),
                hint: Some("boot the TAPPaaS installer image: it carries every tool".into()),
            });
        }
    }
    if run.resuming {
        leftover_mounts(&run.ctx.target, &mut findings);
    } else {
        target_is_free(&run.ctx.target, &mut findings);
        imported_pools(run, &mut findings);
    }
    match system::render(run.plan, run.site, run.site_src, &run.ids) {
        Ok(files) => run.files = files,
        Err(e) => findings.push(Finding {
            subject: "the installed system's configuration".into(),
            message: e.to_string(),
            hint: Some("correct the site file and plan again".into()),
        }),
    }
    if !findings.is_empty() {
        return Err(PreflightFailed(findings).into());
    }
    let msg = format!(
        "{} disk(s) as planned, {}, {} configuration files rendered",
        run.plan.disks.len(),
        if verified {
            "payload verified (sizes and sha256)"
        } else {
            "payload NOT verified (dry run)"
        },
        run.files.len()
    );
    run.log(Level::Info, msg);
    Ok(None)
}

/// Checks the payload; `true` when it was verified.
fn payload(run: &mut Run<'_>, findings: &mut Vec<Finding>) -> bool {
    let dir = run.ctx.payload.clone();
    match preflight::check_payload(&dir, &[ROOT_KIND]) {
        Ok((manifest, paths)) => {
            let mut packages: Vec<_> = manifest
                .payload
                .iter()
                .filter(|p| p.kind == PACKAGE_KIND)
                .map(|p| dir.join(&p.file))
                .collect();
            packages.sort();
            run.payload = Payload {
                root_image: paths.get(ROOT_KIND).cloned().unwrap_or_default(),
                packages,
                manifest: Some(manifest),
            };
            true
        }
        Err(problems) if run.ctx.dry_run => {
            for f in problems {
                run.log(
                    Level::Warning,
                    format!("dry run: the payload is not usable, a real install stops here: {f}"),
                );
            }
            let manifest = preflight::load_manifest(&dir).ok();
            let root_image = manifest
                .as_ref()
                .and_then(|m| m.one(ROOT_KIND))
                .map(|p| dir.join(&p.file))
                .unwrap_or_else(|| dir.join(format!("<{ROOT_KIND} payload>")));
            run.payload = Payload {
                root_image,
                packages: Vec::new(),
                manifest,
            };
            false
        }
        Err(problems) => {
            findings.extend(problems);
            false
        }
    }
}

/// A fresh install mounts its pools on an empty target: anything there is a mount (or files)
/// an earlier install left, and the new root would be assembled on top of it.
fn target_is_free(target: &Path, findings: &mut Vec<Finding>) {
    let subject = format!("the target directory {}", target.display());
    match std::fs::read_dir(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => findings.push(Finding {
            subject,
            message: format!("cannot be read: {e}"),
            hint: None,
        }),
        Ok(mut entries) => {
            if entries.next().is_some() {
                findings.push(Finding {
                    subject,
                    message: "is not empty: an earlier install may still be mounted there".into(),
                    hint: Some(
                        "export its pools (`zpool export -a`) and unmount it, or pass another \
                         --target"
                            .into(),
                    ),
                });
            }
        }
    }
}

/// What an earlier run left mounted inside the target besides its pools (after
/// `--keep-on-error`): this run would mount over it and could not export rpool at the end.
fn leftover_mounts(target: &Path, findings: &mut Vec<Finding>) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for m in mounts_below(&info, target) {
        findings.push(Finding {
            subject: format!("{} (mounted by an earlier run)", m.display()),
            message: "is still mounted inside the target".into(),
            hint: Some(format!("unmount it (`umount {}`), then rerun", m.display())),
        });
    }
}

/// Mount points of non-ZFS file systems at or below `target` in a mountinfo text.
pub(super) fn mounts_below(mountinfo: &str, target: &Path) -> Vec<std::path::PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let mut halves = l.splitn(2, " - ");
            let (left, right) = (halves.next()?, halves.next()?);
            let point = left.split(' ').nth(4)?.replace("\\040", " ");
            let fstype = right.split(' ').next()?;
            let p = std::path::PathBuf::from(point);
            (fstype != "zfs" && p.starts_with(target)).then_some(p)
        })
        .collect()
}

/// A pool of a planned name imported on the live system (from a disk the plan leaves alone)
/// would make `zpool create` fail after the disks were wiped: refuse it now.
fn imported_pools(run: &mut Run<'_>, findings: &mut Vec<Finding>) {
    let cmd = Cmd::new("zpool")
        .args(["status", "-P"])
        .timeout(QUERY_TIMEOUT);
    let out = match run.cmd(&cmd) {
        Ok(o) => o,
        Err(e) => {
            findings.push(Finding {
                subject: "ZFS on the live system".into(),
                message: format!("does not answer: {e:#}"),
                hint: Some("load the module (`modprobe zfs`)".into()),
            });
            return;
        }
    };
    let imported = match parse_status(&out.stdout_text()) {
        Ok(p) => p,
        Err(e) => {
            findings.push(Finding {
                subject: "ZFS on the live system".into(),
                message: e.to_string(),
                hint: None,
            });
            return;
        }
    };
    for pool in &run.plan.pools {
        if imported.iter().any(|s| s.name == pool.name) {
            findings.push(Finding {
                subject: format!("pool {}", pool.name),
                message: "a pool of this name is already imported on the live system".into(),
                hint: Some(format!(
                    "export it (`zpool export {}`) or give the new pool another name in the \
                     site file",
                    pool.name
                )),
            });
        }
    }
}
