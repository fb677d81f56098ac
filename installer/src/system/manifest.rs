//! `/etc/tappaas`: the node manifest, the site file and the plan, and the first-boot unit that
//! reads them.

use super::rules::format_rfc3339;
use super::templates::Templates;
use super::{invalid, GeneratedIds, RenderError, RenderedFile, BOOTSTRAP_UNIT};
use crate::plan::{DiskRoleKind, Plan};
use sha2::{Digest, Sha256};
use tappaas_site::manifest::{ManifestCluster, ManifestNode, NodeManifest, MANIFEST_FORMAT};
use tappaas_site::{Role, Site};

/// The manifest ([`NodeManifest`]) for `plan`, whose JSON (as written to `/etc/tappaas/plan.json`) hashes to
/// `plan_sha256`.
pub fn node_manifest(
    plan: &Plan,
    plan_sha256: String,
    ids: &GeneratedIds,
) -> Result<NodeManifest, RenderError> {
    let installed_at = format_rfc3339(ids.installed_at)
        .parse()
        .map_err(|e| invalid("/etc/tappaas/node.toml", format!("install time: {e}")))?;
    let pools = plan
        .pools
        .iter()
        .map(|p| (pool_key(p.role).to_string(), p.name.clone()))
        .collect();
    Ok(NodeManifest {
        format: MANIFEST_FORMAT,
        site: plan.site.clone(),
        installed_at,
        plan_sha256,
        node: ManifestNode {
            name: plan.node.name.clone(),
            id: plan.node.id,
            role: plan.node.role,
            fqdn: plan.system.fqdn.clone(),
            address: plan.system.address.clone(),
            replace: plan.node.replace,
        },
        cluster: ManifestCluster {
            name: plan.system.cluster.name.clone(),
            primary_address: plan.system.cluster.primary_address,
            link0: plan.system.cluster.link0,
        },
        pools,
    })
}

fn pool_key(role: DiskRoleKind) -> &'static str {
    match role {
        DiskRoleKind::Boot => "rpool",
        DiskRoleKind::Tank1 => "tank1",
        DiskRoleKind::Tank2 => "tank2",
    }
}

/// The bytes of `/etc/tappaas/plan.json`: the plan as `plan --json` prints it.
pub(super) fn plan_json(plan: &Plan) -> Result<Vec<u8>, RenderError> {
    let mut json = serde_json::to_vec_pretty(plan)?;
    json.push(b'\n');
    Ok(json)
}

pub(super) fn render(
    t: &Templates,
    plan: &Plan,
    site: &Site,
    site_source: &str,
    ids: &GeneratedIds,
) -> Result<Vec<RenderedFile>, RenderError> {
    if site.site.name != plan.site {
        return Err(invalid(
            "/etc/tappaas/site.toml",
            format!(
                "the plan is for site {}, the site file is {}",
                plan.site, site.site.name
            ),
        ));
    }
    let json = plan_json(plan)?;
    let sha: String = Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let m = node_manifest(plan, sha, ids)?;
    let node_toml = t.render(
        "etc/tappaas/node.toml",
        &serde_json::json!({
            "format": m.format,
            "site": m.site,
            "installed_at": m.installed_at.to_string(),
            "plan_sha256": m.plan_sha256,
            "node": {
                "name": m.node.name,
                "id": m.node.id,
                "role": m.node.role.as_str(),
                "fqdn": m.node.fqdn,
                "address": m.node.address,
                "replace": m.node.replace.to_string(),
            },
            "cluster": {
                "name": m.cluster.name,
                "primary_address": m.cluster.primary_address.to_string(),
                "link0": m.cluster.link0.to_string(),
            },
            "pools": m.pools.iter()
                .map(|(role, name)| serde_json::json!({ "role": role, "name": name }))
                .collect::<Vec<_>>(),
        }),
    )?;
    // The template quotes every string; check that what it wrote reads back as this manifest.
    match NodeManifest::parse(&node_toml) {
        Ok(back) if back == m => {}
        Ok(_) => {
            return Err(invalid(
                "/etc/tappaas/node.toml",
                "the rendered manifest reads back differently",
            ))
        }
        Err(e) => {
            return Err(invalid(
                "/etc/tappaas/node.toml",
                format!("the rendered manifest does not read back: {e}"),
            ))
        }
    }

    let unit = format!("/etc/systemd/system/{BOOTSTRAP_UNIT}");
    let mut out = primary_tls(plan, site)?;
    out.extend(vec![
        RenderedFile::dir("/etc/tappaas", 0o755),
        RenderedFile::text("/etc/tappaas/node.toml", node_toml, 0o600),
        // Verbatim, so the agent parses exactly what the installer parsed. It holds the root
        // password hash, like /etc/shadow: root-only and never logged.
        RenderedFile {
            secret: true,
            ..RenderedFile::text(
                "/etc/tappaas/site.toml",
                site_copy(site, site_source)?,
                0o600,
            )
        },
        RenderedFile::bytes("/etc/tappaas/plan.json", json, 0o644),
        RenderedFile::text(
            &unit,
            t.render(
                "etc/systemd/system/tappaas-bootstrap.service",
                &serde_json::json!({}),
            )?,
            0o644,
        ),
        // What `systemctl enable` makes for WantedBy=multi-user.target.
        RenderedFile::symlink(
            &format!("/etc/systemd/system/multi-user.target.wants/{BOOTSTRAP_UNIT}"),
            &unit,
        ),
    ]);
    Ok(out)
}

/// The site file as given, except for the primary's certificate and key, which become the
/// fingerprint they pin: no node keeps the key in its site file (the primary gets it as
/// [`TLS_DIR`]`/api.key`, which its first boot hands to Proxmox and deletes).
fn site_copy(site: &Site, site_source: &str) -> Result<String, RenderError> {
    let c = &site.cluster;
    if c.primary_key.is_none() && c.primary_certificate.is_none() {
        return Ok(site_source.to_string());
    }
    // The front door validated the file with the known profiles; this re-parse only checks the
    // edited copy still parses, so it needs no profile list (as the agent, which has none).
    tappaas_site::copy::without_primary_key(site_source, &tappaas_site::ParseOptions::default())
        .map_err(|e| invalid("/etc/tappaas/site.toml", e))
}

/// Where the first-boot agent's `api-certificate` step finds the primary's pre-made API
/// certificate and key.
pub const TLS_DIR: &str = "/etc/tappaas/tls";

/// On the primary only, when the site carries them: the primary's API certificate (public) and
/// its key (secret, root only), for `api-certificate` to install into Proxmox at first boot. The
/// other nodes never get the key: whoever holds it can pose as the primary to joining nodes.
fn primary_tls(plan: &Plan, site: &Site) -> Result<Vec<RenderedFile>, RenderError> {
    let c = &site.cluster;
    let (Role::Primary, Some(cert), Some(key)) =
        (plan.node.role, &c.primary_certificate, &c.primary_key)
    else {
        return Ok(Vec::new());
    };
    check_key_pair(cert, key)?;
    Ok(vec![
        RenderedFile::dir(TLS_DIR, 0o700),
        RenderedFile::text(&format!("{TLS_DIR}/api.pem"), cert.clone(), 0o644),
        RenderedFile {
            secret: true,
            ..RenderedFile::text(&format!("{TLS_DIR}/api.key"), key.clone(), 0o600)
        },
    ])
}

/// A key that is not the certificate's would only show at the primary's first boot, as a
/// pveproxy that cannot serve: refuse it before anything is written (validation reports it
/// too; this guards callers that skip it). Keys in forms the check does not read (traditional
/// EC or RSA PEM) are left to Proxmox.
fn check_key_pair(cert: &str, key: &str) -> Result<(), RenderError> {
    if let Err(e) = tappaas_site::pem::certificate_der(cert) {
        return Err(invalid(
            "/etc/tappaas/tls/api.pem",
            format!("primary-certificate {e}"),
        ));
    }
    if tappaas_site::pem::key_belongs_to_certificate(cert, key) == Some(false) {
        return Err(invalid(
            "/etc/tappaas/tls/api.key",
            "the site's primary-key is not the key of its primary-certificate (make a matching \
             pair with `tappaas-installer join-keys`)",
        ));
    }
    Ok(())
}
