//! The `esp`, `root` and `packages` steps, and the file systems a chroot into the target
//! needs (`/proc`, `/sys`, efivars, `/dev`), mounted once when first needed and unmounted
//! before the pools are exported.

use super::{Level, Run};
use crate::exec::Cmd;
use crate::inventory::FirmwareMode;
use crate::plan::PartKind;
use crate::progress::{Event, Unit};
use crate::rootfs::Progress;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MKFS_TIMEOUT: Duration = Duration::from_secs(120);
const MOUNT_TIMEOUT: Duration = Duration::from_secs(60);
/// Unpacking or configuring Proxmox's few hundred packages: tens of minutes on slow disks.
const DPKG_TIMEOUT: Duration = Duration::from_secs(3600);
/// Where the payload directory is bind-mounted inside the target while dpkg reads it.
const PAYLOAD_MOUNT: &str = "/run/tappaas-payload";
/// Keeps package scripts from starting services in the target (Debian's invoke-rc.d policy).
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// The ESPs' stable partition paths, in plan order.
pub(super) fn esp_paths(run: &Run<'_>) -> Vec<String> {
    run.plan
        .disks
        .iter()
        .flat_map(|d| d.partitions.iter())
        .filter(|p| p.kind == PartKind::Esp)
        .map(|p| p.by_id.clone())
        .collect()
}

pub(super) fn esp(run: &mut Run<'_>) -> Result<Option<String>> {
    let esps = esp_paths(run);
    if esps.is_empty() {
        return Ok(Some("the plan has no EFI system partition".into()));
    }
    for (i, p) in esps.iter().enumerate() {
        let cmd = Cmd::new("mkfs.vfat")
            .args(["-F", "32", "-n", &format!("ESP{i}")])
            .arg(p)
            .timeout(MKFS_TIMEOUT);
        run.cmd(&cmd)
            .with_context(|| format!("formatting the EFI system partition {p}"))?;
    }
    Ok(None)
}

pub(super) fn extract(run: &mut Run<'_>) -> Result<Option<String>> {
    let image = run.payload.root_image.clone();
    let dest = run.ctx.target.clone();
    run.log(
        Level::Info,
        format!(
            "extracting {} onto {} (rpool/ROOT/pve-1)",
            image.display(),
            dest.display()
        ),
    );
    let host = run.host;
    let step = run
        .step
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let events = &mut run.events;
    let mut report_progress = |p: Progress| {
        events.emit(&Event::StepProgress {
            step: step.clone(),
            done: p.bytes_done,
            total: Some(p.bytes_total),
            unit: Unit::Bytes,
        })
    };
    let r = host
        .extract_image(&image, &dest, &mut report_progress)
        .with_context(|| format!("extracting the root image {}", image.display()))?;
    run.log(
        Level::Info,
        format!(
            "extracted {} files, {} directories, {} links, {} bytes in {:.1}s",
            r.files + r.hard_links,
            r.dirs,
            r.symlinks,
            r.bytes,
            r.elapsed.as_secs_f64()
        ),
    );
    Ok(None)
}

pub(super) fn packages(run: &mut Run<'_>) -> Result<Option<String>> {
    let debs = run.payload.packages.clone();
    if debs.is_empty() {
        run.notice("no Proxmox packages in the payload: skipped");
        return Ok(Some("no packages in the payload".into()));
    }
    let Some(dpkg) = run.target_tool("dpkg") else {
        run.notice(format!(
            "the root image has no dpkg: the payload's {} packages are not installed",
            debs.len()
        ));
        return Ok(Some("no dpkg in the root image".into()));
    };
    run.ensure_chroot()?;
    run.host
        .write_file(&run.target(POLICY_RC_D), b"#!/bin/sh\nexit 101\n", 0o755)
        .context("blocking service starts in the target (policy-rc.d)")?;
    let mount = run.target(PAYLOAD_MOUNT);
    if !run.host.path_exists(&mount) {
        run.host.create_dir(&mount, 0o755)?;
    }
    let payload = run.ctx.payload.clone();
    run.mount(&["-o", "bind"], &payload, &mount)
        .context("making the payload visible in the target")?;
    let inside: Vec<PathBuf> = debs
        .iter()
        .map(|d| Path::new(PAYLOAD_MOUNT).join(d.strip_prefix(&payload).unwrap_or(d)))
        .collect();
    let unpack = run
        .chroot(&dpkg)
        .args(["--force-depends", "--force-confold", "--unpack"])
        .args(inside)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .timeout(DPKG_TIMEOUT);
    run.cmd(&unpack)
        .with_context(|| format!("unpacking {} packages in the target", debs.len()))?;
    let configure = run
        .chroot(&dpkg)
        .args(["--force-confold", "--configure", "-a"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .timeout(DPKG_TIMEOUT);
    run.cmd(&configure)
        .context("configuring the packages in the target")?;
    run.unmount(&mount)?;
    run.host
        .remove_file(&run.target(POLICY_RC_D))
        .context("removing policy-rc.d from the target")?;
    Ok(None)
}

impl Run<'_> {
    /// `mount ARGS SOURCE MOUNTPOINT`, remembered for unmounting.
    fn mount(&mut self, args: &[&str], source: &Path, mountpoint: &Path) -> Result<()> {
        let cmd = Cmd::new("mount")
            .args(args)
            .arg(source)
            .arg(mountpoint)
            .timeout(MOUNT_TIMEOUT);
        self.cmd(&cmd)
            .with_context(|| format!("mounting {}", mountpoint.display()))?;
        self.mounts.push(mountpoint.to_path_buf());
        Ok(())
    }

    /// Mounts what commands run in the target need, once: proc, sysfs, efivars on UEFI
    /// (`proxmox-boot-tool` installs systemd-boot through it) and `/dev` (the ESPs' by-id
    /// links). As Proxmox's installer does.
    pub(super) fn ensure_chroot(&mut self) -> Result<()> {
        let proc_dir = self.target("/proc");
        if self.mounts.contains(&proc_dir) {
            return Ok(());
        }
        for (dir, args, source) in [
            ("/proc", ["-t", "proc"], "proc"),
            ("/sys", ["-t", "sysfs"], "sysfs"),
        ] {
            let mp = self.target(dir);
            if !self.host.path_exists(&mp) {
                self.host.create_dir(&mp, 0o555)?;
            }
            self.mount(&args, Path::new(source), &mp)?;
        }
        let efivars = Path::new("/sys/firmware/efi/efivars");
        if self.plan.machine.firmware == FirmwareMode::Uefi && self.host.path_exists(efivars) {
            let mp = self.target(efivars);
            self.mount(&["-t", "efivarfs"], Path::new("efivarfs"), &mp)?;
        }
        let dev = self.target("/dev");
        if !self.host.path_exists(&dev) {
            self.host.create_dir(&dev, 0o755)?;
        }
        self.mount(&["-o", "bind"], Path::new("/dev"), &dev)
    }

    /// Unmounts `mountpoint` (lazily if it is busy) and forgets it.
    pub(super) fn unmount(&mut self, mountpoint: &Path) -> Result<()> {
        let plain = Cmd::new("umount").arg(mountpoint).timeout(MOUNT_TIMEOUT);
        if let Err(first) = self.cmd(&plain) {
            let lazy = Cmd::new("umount")
                .arg("-l")
                .arg(mountpoint)
                .timeout(MOUNT_TIMEOUT);
            self.cmd(&lazy).map_err(|_| first)?;
        }
        self.mounts.retain(|m| m != mountpoint);
        Ok(())
    }

    /// Unmounts everything this run mounted, the last mounted first; returns the failures.
    pub(super) fn unmount_all(&mut self) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        for m in self.mounts.clone().iter().rev() {
            if let Err(e) = self.unmount(m) {
                errors.push(e.context(format!("unmounting {}", m.display())));
            }
        }
        errors
    }
}
