//! Seeds for the Proxmox cluster filesystem (`/etc/pve`): `datacenter.cfg`, `user.cfg` and
//! `storage.cfg`, as Proxmox's own installer writes them.
//!
//! `/etc/pve` is a FUSE filesystem backed by `/var/lib/pve-cluster/config.db`; it exists only
//! while `pve-cluster` runs, so the files cannot be written there from the installer. They are
//! staged in [`PVE_SEED_DIR`] and loaded into the database (see `docs/installed-system.md`).

use super::rules::{keyboard_map, token};
use super::templates::Templates;
use super::{invalid, RenderError, RenderedFile, RootDataset, PVE_SEED_DIR};
use crate::plan::{DiskRoleKind, Plan};
use serde::Serialize;
use tappaas_site::{Role, Site};

const STORAGE: &str = "/var/lib/tappaas/pve-seed/storage.cfg";

#[derive(Serialize)]
struct Pool<'a> {
    name: &'a str,
}

pub(super) fn render(
    t: &Templates,
    plan: &Plan,
    site: &Site,
    root: &RootDataset,
) -> Result<Vec<RenderedFile>, RenderError> {
    let email = &site.site.admin_email;
    token(
        "/var/lib/tappaas/pve-seed/user.cfg",
        "e-mail address",
        email,
    )?;
    if email.contains(':') {
        return Err(invalid(
            "/var/lib/tappaas/pve-seed/user.cfg",
            format!("the e-mail address `{email}` contains ':'"),
        ));
    }
    let mut pools = Vec::new();
    for p in &plan.pools {
        if p.role == DiskRoleKind::Boot {
            continue;
        }
        // The backup node's tank2 holds the Proxmox Backup Server datastore (first boot sets
        // it up): VM disks do not belong there, so it is not offered as VM storage.
        if p.role == DiskRoleKind::Tank2 && plan.node.role == Role::Backup {
            continue;
        }
        storage_id(&p.name)?;
        pools.push(Pool { name: &p.name });
    }
    token(STORAGE, "node name", &plan.node.name)?;

    let file = |name: &str, content: String| RenderedFile {
        mode: 0o600,
        ..RenderedFile::text(&format!("{PVE_SEED_DIR}/{name}"), content, 0)
    };
    Ok(vec![
        RenderedFile::dir("/var/lib/tappaas", 0o700),
        RenderedFile::dir(PVE_SEED_DIR, 0o700),
        file(
            "datacenter.cfg",
            t.render(
                "var/lib/tappaas/pve-seed/datacenter.cfg",
                &serde_json::json!({ "keyboard": keyboard_map(&plan.system.keyboard).pve }),
            )?,
        ),
        file(
            "user.cfg",
            t.render(
                "var/lib/tappaas/pve-seed/user.cfg",
                &serde_json::json!({ "email": email }),
            )?,
        ),
        file(
            "storage.cfg",
            t.render(
                "var/lib/tappaas/pve-seed/storage.cfg",
                &serde_json::json!({
                    "local_zfs_pool": root.data,
                    "pools": pools,
                    "node": plan.node.name,
                }),
            )?,
        ),
    ])
}

/// A data pool is registered under its own name, which must be a valid Proxmox storage id
/// (`[a-z][a-z0-9._-]*[a-z0-9]`) and not one of the installer's own storages.
fn storage_id(name: &str) -> Result<(), RenderError> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(c));
    if !ok {
        return Err(invalid(
            STORAGE,
            format!(
                "pool `{name}` cannot be a Proxmox storage id (lower-case letters, digits, \
                 '-', '_', '.'; a letter first)"
            ),
        ));
    }
    if name == "local" || name == "local-zfs" {
        return Err(invalid(
            STORAGE,
            format!("pool `{name}` has the name of a storage Proxmox already has"),
        ));
    }
    Ok(())
}
