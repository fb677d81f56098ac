//! `render(plan, site, ...) -> files`: the configuration written into the installed root.
//!
//! Pure: the same plan, site, site-file text and [`GeneratedIds`] give the same files, byte for
//! byte, which is what the golden tests pin. Everything random or time-dependent (machine-id,
//! hostid, install time) comes in through [`GeneratedIds`], made once by the engine with
//! [`GeneratedIds::generate`].
//!
//! Each text file comes from a template under `templates/system/`, embedded in the binary; the
//! templates only place values, the decisions are made here. The root password hash is not a
//! file: [`root_password`] hands it to the engine for `chpasswd -e`.
//! `docs/installed-system.md` lists every file, why it is written and its mode.

mod manifest;
mod network;
mod pve;
mod rules;
mod templates;

pub use manifest::{node_manifest, TLS_DIR};
pub use rules::{
    format_rfc3339, hostid_bytes, keyboard_map, zfs_arc_max, KeyboardMap, ARC_MAX_CEILING,
    ARC_MAX_FLOOR,
};
pub use tappaas_site::manifest::{ManifestCluster, ManifestNode, NodeManifest, MANIFEST_FORMAT};

use crate::plan::{DiskRoleKind, Plan};
use std::fmt;
use std::path::{Path, PathBuf};
use tappaas_site::Site;
use templates::Templates;

/// Where the Proxmox cluster filesystem seeds are staged inside the target root.
pub const PVE_SEED_DIR: &str = "/var/lib/tappaas/pve-seed";
/// The first-boot unit's name.
pub const BOOTSTRAP_UNIT: &str = "tappaas-bootstrap.service";

/// What the engine generates at install time, so rendering stays pure.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedIds {
    /// `/etc/machine-id`: 128 random bits (a version 4 UUID), never all zero.
    pub machine_id: [u8; 16],
    /// `/etc/hostid`: what ZFS records as the pools' owner. Never 0.
    pub hostid: u32,
    /// When the install ran, in seconds since the Unix epoch (UTC).
    pub installed_at: u64,
}

impl GeneratedIds {
    /// Fresh random ids and the current time: the engine calls this once per install.
    pub fn generate() -> GeneratedIds {
        let machine_id = *uuid::Uuid::new_v4().as_bytes();
        let hostid = loop {
            let b = *uuid::Uuid::new_v4().as_bytes();
            // Bytes 0..4 of a v4 UUID are all random; 0 and all-ones mean "no hostid" to ZFS.
            let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if id != 0 && id != u32::MAX {
                break id;
            }
        };
        let installed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        GeneratedIds {
            machine_id,
            hostid,
            installed_at,
        }
    }

    /// The machine-id as systemd writes it: 32 lower-case hex digits.
    pub fn machine_id_hex(&self) -> String {
        self.machine_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for GeneratedIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedIds")
            .field("machine_id", &self.machine_id_hex())
            .field("hostid", &format_args!("{:08x}", self.hostid))
            .field("installed_at", &format_rfc3339(self.installed_at))
            .finish()
    }
}

/// What a rendered path becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// A regular file with these bytes.
    Bytes(Vec<u8>),
    /// A symbolic link pointing at this target (written as given, not resolved).
    Symlink(PathBuf),
    /// A directory (created if missing, its mode set either way). Listed before its contents.
    Dir,
}

/// One file, link or directory to create in the installed root.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute path inside the target root, e.g. `/etc/hostname`.
    pub path: PathBuf,
    /// What to write there.
    pub content: FileContent,
    /// Permission bits (ignored for symlinks). Owner is always root:root.
    pub mode: u32,
    /// The content must never be logged or shown (the path may be).
    pub secret: bool,
}

impl RenderedFile {
    fn text(path: &str, content: String, mode: u32) -> RenderedFile {
        RenderedFile {
            path: PathBuf::from(path),
            content: FileContent::Bytes(content.into_bytes()),
            mode,
            secret: false,
        }
    }
    fn bytes(path: &str, content: Vec<u8>, mode: u32) -> RenderedFile {
        RenderedFile {
            path: PathBuf::from(path),
            content: FileContent::Bytes(content),
            mode,
            secret: false,
        }
    }
    fn symlink(path: &str, target: &str) -> RenderedFile {
        RenderedFile {
            path: PathBuf::from(path),
            content: FileContent::Symlink(PathBuf::from(target)),
            mode: 0o777,
            secret: false,
        }
    }
    fn dir(path: &str, mode: u32) -> RenderedFile {
        RenderedFile {
            path: PathBuf::from(path),
            content: FileContent::Dir,
            mode,
            secret: false,
        }
    }

    /// The bytes of a regular file, `None` for links and directories.
    pub fn bytes_content(&self) -> Option<&[u8]> {
        match &self.content {
            FileContent::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The path relative to the target root, for joining onto it (`target.join(rel)`).
    pub fn relative_path(&self) -> &Path {
        self.path.strip_prefix("/").unwrap_or(&self.path)
    }
}

impl fmt::Debug for RenderedFile {
    // A secret file's bytes stay out of logs and panics, like the site's credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let content: &dyn fmt::Debug = match (&self.content, self.secret) {
            (FileContent::Bytes(b), true) => &format_args!("<{} secret bytes>", b.len()),
            (FileContent::Bytes(b), false) => &format_args!("<{} bytes>", b.len()),
            (other, _) => other,
        };
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("content", content)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("secret", &self.secret)
            .finish()
    }
}

/// The root password hash, for `chpasswd -e` in the target. Never logged: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct RootPassword(String);

impl RootPassword {
    /// The crypt(3) hash.
    pub fn hash(&self) -> &str {
        &self.0
    }
    /// Standard input for `chpasswd -e` (`root:<hash>\n`): feed it as a secret stdin.
    pub fn chpasswd_input(&self) -> Vec<u8> {
        format!("root:{}\n", self.0).into_bytes()
    }
}

impl fmt::Debug for RootPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootPassword(<redacted>)")
    }
}

/// The root password hash from the site, as the one secret item the engine applies itself
/// (`chroot TARGET chpasswd -e` with [`RootPassword::chpasswd_input`] on a secret stdin).
/// `/etc/shadow` is never rendered: the root image's own file keeps its other entries.
pub fn root_password(site: &Site) -> RootPassword {
    RootPassword(site.credentials.root_password_hash.clone())
}

/// Why a plan cannot be turned into files. Raised before anything is written, so the engine
/// should render during preflight.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The plan (or site) holds a value that cannot go into a configuration file as it is.
    #[error("cannot write {file}: {message}")]
    Invalid {
        /// The file that would have held it.
        file: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A template failed (a bug: the templates are embedded and tested).
    #[error("rendering template {name}: {source}")]
    Template {
        /// The template.
        name: &'static str,
        /// The engine's error.
        #[source]
        source: minijinja::Error,
    },
    /// The plan could not be serialised (a bug).
    #[error("serialising the plan: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn invalid(file: &'static str, message: impl Into<String>) -> RenderError {
    RenderError::Invalid {
        file,
        message: message.into(),
    }
}

/// Renders every file the installer writes into the target root for `plan`.
///
/// `site_source` is the site file's text, copied verbatim to `/etc/tappaas/site.toml` for the
/// first-boot agent. The result is sorted by path (a directory before its contents); the engine
/// writes the entries in this order, creating any other missing parent directory as 0755.
pub fn render(
    plan: &Plan,
    site: &Site,
    site_source: &str,
    ids: &GeneratedIds,
) -> Result<Vec<RenderedFile>, RenderError> {
    let t = Templates::new()?;
    let root = RootDataset::of(plan)?;
    if ids.hostid == 0 || ids.hostid == u32::MAX {
        return Err(invalid(
            "/etc/hostid",
            "the hostid must not be 0 or ffffffff",
        ));
    }
    if ids.machine_id == [0; 16] {
        return Err(invalid(
            "/etc/machine-id",
            "the machine-id must not be all zero",
        ));
    }

    let mut out = Vec::new();
    out.extend(network::render(&t, plan, site)?);
    out.extend(locale(&t, plan)?);
    out.extend(boot(&t, plan, &root)?);
    out.extend(pool_imports(plan)?);
    out.push(RenderedFile::text(
        "/etc/machine-id",
        t.render(
            "etc/machine-id",
            &serde_json::json!({ "machine_id": ids.machine_id_hex() }),
        )?,
        0o444,
    ));
    // Debian's D-Bus reads its machine id here; a copy from the image would be shared by every
    // node installed from it.
    out.push(RenderedFile::symlink(
        "/var/lib/dbus/machine-id",
        "/etc/machine-id",
    ));
    out.push(RenderedFile::bytes(
        "/etc/hostid",
        hostid_bytes(ids.hostid).to_vec(),
        0o644,
    ));
    out.push(RenderedFile::dir("/root/.ssh", 0o700));
    out.push(RenderedFile::text(
        "/root/.ssh/authorized_keys",
        t.render(
            "root/.ssh/authorized_keys",
            &serde_json::json!({ "keys": ssh_keys(site)? }),
        )?,
        0o600,
    ));
    out.extend(pve::render(&t, plan, site, &root)?);
    out.extend(manifest::render(&t, plan, site, site_source, ids)?);

    out.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = out.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(invalid(
            "the target root",
            format!("{} would be written twice", w[0].path.display()),
        ));
    }
    Ok(out)
}

/// The boot pool's root and data datasets, checked against the datasets the plan creates.
pub(crate) struct RootDataset {
    /// `<rpool>/ROOT/pve-1`.
    pub root: String,
    /// `<rpool>/data`, Proxmox's `local-zfs` storage.
    pub data: String,
}

impl RootDataset {
    fn of(plan: &Plan) -> Result<RootDataset, RenderError> {
        let pool = plan
            .pools
            .iter()
            .find(|p| p.role == DiskRoleKind::Boot)
            .ok_or_else(|| invalid("/etc/kernel/cmdline", "the plan has no boot pool"))?;
        rules::token("/etc/kernel/cmdline", "pool name", &pool.name)?;
        let ds = RootDataset {
            root: format!("{}/ROOT/pve-1", pool.name),
            data: format!("{}/data", pool.name),
        };
        for want in [&ds.root, &ds.data] {
            if !pool.datasets.iter().any(|d| d == want) {
                return Err(invalid(
                    "/etc/kernel/cmdline",
                    format!("the plan does not create the dataset {want}"),
                ));
            }
        }
        Ok(ds)
    }
    fn cmdline(&self) -> String {
        format!("root=ZFS={} boot=zfs", self.root)
    }
}

fn locale(t: &Templates, plan: &Plan) -> Result<Vec<RenderedFile>, RenderError> {
    let tz = &plan.system.timezone;
    if tz.is_empty()
        || tz.starts_with('/')
        || tz.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid(
            "/etc/timezone",
            format!("`{tz}` is not a time zone"),
        ));
    }
    rules::token("/etc/timezone", "time zone", tz)?;
    let kb = keyboard_map(&plan.system.keyboard);
    rules::token(
        "/etc/default/keyboard",
        "keyboard layout",
        &plan.system.keyboard,
    )?;
    Ok(vec![
        RenderedFile::text(
            "/etc/timezone",
            t.render("etc/timezone", &serde_json::json!({ "timezone": tz }))?,
            0o644,
        ),
        RenderedFile::symlink("/etc/localtime", &format!("/usr/share/zoneinfo/{tz}")),
        RenderedFile::text(
            "/etc/default/keyboard",
            t.render(
                "etc/default/keyboard",
                &serde_json::json!({
                    "site_keyboard": plan.system.keyboard,
                    "layout": kb.xkb_layout,
                    "variant": kb.xkb_variant,
                }),
            )?,
            0o644,
        ),
    ])
}

fn boot(t: &Templates, plan: &Plan, root: &RootDataset) -> Result<Vec<RenderedFile>, RenderError> {
    let arc = zfs_arc_max(plan.machine.memory_bytes);
    let cmd = serde_json::json!({ "cmdline": root.cmdline() });
    Ok(vec![
        RenderedFile::text(
            "/etc/fstab",
            t.render(
                "etc/fstab",
                &serde_json::json!({ "root_dataset": root.root }),
            )?,
            0o644,
        ),
        RenderedFile::text(
            "/etc/modprobe.d/zfs.conf",
            t.render(
                "etc/modprobe.d/zfs.conf",
                &serde_json::json!({
                    "arc_max_bytes": arc,
                    "arc_max_mib": arc >> 20,
                    "memory_mib": plan.machine.memory_bytes >> 20,
                }),
            )?,
            0o644,
        ),
        // proxmox-boot-tool reads this for systemd-boot (UEFI) ...
        RenderedFile::text(
            "/etc/kernel/cmdline",
            t.render("etc/kernel/cmdline", &cmd)?,
            0o644,
        ),
        // ... and GRUB (BIOS) this. Both are written whatever the firmware, as Proxmox does,
        // so a disk moved to another machine still boots.
        RenderedFile::dir("/etc/default/grub.d", 0o755),
        RenderedFile::text(
            "/etc/default/grub.d/tappaas.cfg",
            t.render("etc/default/grub.d/tappaas.cfg", &cmd)?,
            0o644,
        ),
    ])
}

/// Enables `zfs-import@<pool>.service` for each data pool, as Proxmox does for pools it creates:
/// the installer exports the pools at the end and they are in no cache file, so without these
/// links the node would boot without tank1 and tank2. rpool is imported by the initramfs.
fn pool_imports(plan: &Plan) -> Result<Vec<RenderedFile>, RenderError> {
    let mut out = Vec::new();
    for p in plan.pools.iter().filter(|p| p.role != DiskRoleKind::Boot) {
        rules::token(
            "/etc/systemd/system/zfs-import.target.wants",
            "pool name",
            &p.name,
        )?;
        out.push(RenderedFile::symlink(
            &format!(
                "/etc/systemd/system/zfs-import.target.wants/zfs-import@{}.service",
                p.name
            ),
            "/usr/lib/systemd/system/zfs-import@.service",
        ));
    }
    Ok(out)
}

fn ssh_keys(site: &Site) -> Result<Vec<String>, RenderError> {
    site.credentials
        .ssh_keys
        .iter()
        .map(|k| {
            let k = k.trim();
            if k.is_empty() || k.chars().any(|c| c.is_control()) {
                Err(invalid(
                    "/root/.ssh/authorized_keys",
                    "an SSH key is empty or spans several lines",
                ))
            } else {
                Ok(k.to_string())
            }
        })
        .collect()
}
