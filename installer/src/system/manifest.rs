//! `/etc/tappaas`: the node manifest, the site file and the plan, and the first-boot unit that
//! reads them.

use super::rules::format_rfc3339;
use super::templates::Templates;
use super::{invalid, GeneratedIds, RenderError, RenderedFile, BOOTSTRAP_UNIT};
use crate::plan::{DiskRoleKind, Plan};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use tappaas_site::{Role, Site};

/// Version of `/etc/tappaas/node.toml`.
pub const MANIFEST_FORMAT: u32 = 1;

/// `/etc/tappaas/node.toml`: what was installed on this machine, for the first-boot agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The site's name.
    pub site: String,
    /// When the install ran (UTC).
    pub installed_at: toml::value::Datetime,
    /// SHA-256 (hex) of `/etc/tappaas/plan.json` as written.
    pub plan_sha256: String,
    /// This node.
    pub node: ManifestNode,
    /// The cluster it forms or joins.
    pub cluster: ManifestCluster,
    /// Pool names by role: `rpool`, and `tank1` / `tank2` when this node has them.
    pub pools: std::collections::BTreeMap<String, String>,
}

/// `[node]` of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ManifestNode {
    /// Host name.
    pub name: String,
    /// Node number (corosync node id).
    pub id: u8,
    /// Role in the cluster.
    pub role: Role,
    /// Fully qualified name.
    pub fqdn: String,
    /// Management address with prefix.
    pub address: String,
    /// Replaces a failed node of the same name.
    pub replace: bool,
}

/// `[cluster]` of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ManifestCluster {
    /// Cluster name.
    pub name: String,
    /// The primary's management address (create on it, join via it).
    pub primary_address: Ipv4Addr,
    /// Corosync link0 address of this node.
    pub link0: Ipv4Addr,
}

impl NodeManifest {
    /// The manifest for `plan`, whose JSON (as written to `/etc/tappaas/plan.json`) hashes to
    /// `plan_sha256`.
    pub fn new(plan: &Plan, plan_sha256: String, ids: &GeneratedIds) -> Result<Self, RenderError> {
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

    /// Reads a manifest (the first-boot agent's side).
    pub fn parse(text: &str) -> Result<NodeManifest, toml::de::Error> {
        toml::from_str(text)
    }
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
    let m = NodeManifest::new(plan, sha, ids)?;
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
    Ok(vec![
        RenderedFile::dir("/etc/tappaas", 0o755),
        RenderedFile::text("/etc/tappaas/node.toml", node_toml, 0o600),
        // Verbatim, so the agent parses exactly what the installer parsed. It holds the root
        // password hash, like /etc/shadow: root-only and never logged.
        RenderedFile {
            secret: true,
            ..RenderedFile::text("/etc/tappaas/site.toml", site_source.to_string(), 0o600)
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
    ])
}
