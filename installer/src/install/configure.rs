//! The `configure` and `tappaas` steps: the rendered files (`system::render`, made during
//! preflight) applied to the target through the host, the root password, SSH host keys, the
//! Proxmox cluster database and the initramfs; then TAPPaaS's own files and binary.
//! A tool the root image lacks (the lab's stand-in is a small Debian) skips its part with a
//! visible notice, never silently.

use super::{Level, Run};
use crate::system::{root_password, FileContent, RenderedFile, BOOTSTRAP_UNIT, PVE_SEED_DIR};
use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;

const CHROOT_TIMEOUT: Duration = Duration::from_secs(300);
const INITRAMFS_TIMEOUT: Duration = Duration::from_secs(1200);
/// The key types `ssh-keygen -A` makes, and older images may carry.
const SSH_KEY_TYPES: [&str; 4] = ["rsa", "ecdsa", "ed25519", "dsa"];
/// Where Proxmox keeps the cluster file system's database.
const PMXCFS_DB: &str = "/var/lib/pve-cluster/config.db";
/// Where our first-boot agent is installed (the unit's `ExecStart`).
pub(super) const BOOTSTRAP_BIN: &str = "/usr/bin/tappaas-bootstrap";

/// TAPPaaS's own files: written by the `tappaas` step, the rest by `configure`.
fn is_tappaas(f: &RenderedFile) -> bool {
    f.path.starts_with("/etc/tappaas")
        || f.path.file_name().and_then(|n| n.to_str()) == Some(BOOTSTRAP_UNIT)
}

/// Writes `files` into the target in their order (a directory before its content), creating
/// a missing parent as 0755. Logs paths, sizes and modes; never a secret file's content.
fn apply(run: &mut Run<'_>, files: &[RenderedFile]) -> Result<()> {
    for f in files {
        let dest = run.target(&f.path);
        if let FileContent::Bytes(_) | FileContent::Symlink(_) = f.content {
            if let Some(parent) = dest.parent() {
                if !run.host.path_exists(parent) {
                    run.host.create_dir(parent, 0o755)?;
                }
            }
        }
        let line = match &f.content {
            FileContent::Dir => {
                run.host.create_dir(&dest, f.mode)?;
                format!("directory {} (mode {:04o})", f.path.display(), f.mode)
            }
            FileContent::Bytes(b) => {
                run.host.write_file(&dest, b, f.mode)?;
                format!(
                    "wrote {} ({}{} bytes, mode {:04o})",
                    f.path.display(),
                    if f.secret { "secret, " } else { "" },
                    b.len(),
                    f.mode
                )
            }
            FileContent::Symlink(t) => {
                run.host.symlink(t, &dest)?;
                format!("linked {} -> {}", f.path.display(), t.display())
            }
        };
        run.log(Level::Info, line);
    }
    Ok(())
}

pub(super) fn configure(run: &mut Run<'_>) -> Result<Option<String>> {
    let files: Vec<RenderedFile> = run
        .files
        .iter()
        .filter(|f| !is_tappaas(f))
        .cloned()
        .collect();
    apply(run, &files).context("writing the configuration files")?;

    let chpasswd = run.target_tool("chpasswd").ok_or_else(|| {
        anyhow!("the root image has no chpasswd: the root password cannot be set")
    })?;
    run.ensure_chroot()?;
    let cmd = run
        .chroot(&chpasswd)
        .arg("-e")
        .secret_stdin(root_password(run.site).chpasswd_input())
        .timeout(CHROOT_TIMEOUT);
    run.cmd(&cmd).context("setting the root password")?;

    // Keys copied from the image would be shared by every node installed from it.
    for t in SSH_KEY_TYPES {
        for suffix in ["", ".pub"] {
            let key = run.target(format!("/etc/ssh/ssh_host_{t}_key{suffix}"));
            run.host
                .remove_file(&key)
                .context("removing the root image's SSH host keys")?;
        }
    }
    match run.target_tool("ssh-keygen") {
        Some(keygen) => {
            let cmd = run.chroot(&keygen).arg("-A").timeout(CHROOT_TIMEOUT);
            run.cmd(&cmd).context("making SSH host keys")?;
        }
        None => run.notice("the root image has no ssh-keygen: no SSH host keys were made"),
    }

    match run.target_tool("create_pmxcfs_db") {
        Some(tool) => {
            let db = run.target(PMXCFS_DB);
            if run.host.path_exists(&db) {
                if !run.resuming {
                    bail!(
                        "the root image already has a cluster database ({PMXCFS_DB}): \
                         something started pve-cluster in it; refusing to merge the seeds into it"
                    );
                }
                // An earlier run of this install seeded it before failing: seed it again.
                run.host.remove_file(&db)?;
            }
            let dir = run.target("/var/lib/pve-cluster");
            if !run.host.path_exists(&dir) {
                run.host.create_dir(&dir, 0o755)?;
            }
            let cmd = run
                .chroot(&tool)
                .args([PVE_SEED_DIR, PMXCFS_DB])
                .timeout(CHROOT_TIMEOUT);
            run.cmd(&cmd)
                .context("seeding the Proxmox cluster file system (create_pmxcfs_db)")?;
        }
        None => run.notice(
            "the root image has no create_pmxcfs_db (the lab's stand-in): the Proxmox cluster \
             file system is not seeded",
        ),
    }

    // After the files: the initramfs carries zfs.conf and the .link files.
    match run.target_tool("update-initramfs") {
        Some(tool) => {
            let cmd = run
                .chroot(&tool)
                .args(["-u", "-k", "all"])
                .timeout(INITRAMFS_TIMEOUT);
            run.cmd(&cmd).context("rebuilding the initramfs")?;
        }
        None => run.notice(
            "the root image has no update-initramfs: the initramfs is not rebuilt with the new \
             configuration",
        ),
    }
    Ok(None)
}

pub(super) fn tappaas(run: &mut Run<'_>) -> Result<Option<String>> {
    let files: Vec<RenderedFile> = run
        .files
        .iter()
        .filter(|f| is_tappaas(f))
        .cloned()
        .collect();
    apply(run, &files).context("writing /etc/tappaas and the first-boot unit")?;
    match run.ctx.bootstrap_binary.clone() {
        Some(bin) => {
            let bytes = std::fs::read(&bin)
                .with_context(|| format!("reading the first-boot agent {}", bin.display()))?;
            run.host
                .write_file(&run.target(BOOTSTRAP_BIN), &bytes, 0o755)
                .context("installing the first-boot agent")?;
            run.log(
                Level::Info,
                format!("installed {} as {BOOTSTRAP_BIN}", bin.display()),
            );
        }
        None => run.notice(format!(
            "no tappaas-bootstrap binary next to the installer: {BOOTSTRAP_UNIT} is installed \
             and enabled but {BOOTSTRAP_BIN} is missing, so first boot fails until it is there"
        )),
    }
    Ok(None)
}
