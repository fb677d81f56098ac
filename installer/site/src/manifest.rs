//! `/etc/tappaas/node.toml`: the node manifest the installer writes and the first-boot agent
//! reads. It lives here, beside the site model, so that both sides share one definition.

use crate::Role;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

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
    /// Reads a manifest (the first-boot agent's side).
    pub fn parse(text: &str) -> Result<NodeManifest, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_manifest_and_refuses_unknown_keys() {
        let text = r#"format = 1
site = "demo"
installed-at = 2026-11-24T10:00:00Z
plan-sha256 = "ab"

[node]
name = "tappaas2"
id = 2
role = "member"
fqdn = "tappaas2.demo.example"
address = "10.0.0.12/24"
replace = false

[cluster]
name = "demo"
primary-address = "10.0.0.11"
link0 = "10.0.0.12"

[pools]
rpool = "rpool"
tank1 = "tank1"
"#;
        let m = NodeManifest::parse(text).unwrap();
        assert_eq!(m.node.role, Role::Member);
        assert_eq!(m.cluster.primary_address, Ipv4Addr::new(10, 0, 0, 11));
        assert_eq!(m.pools.get("tank1").map(String::as_str), Some("tank1"));
        let err = NodeManifest::parse(&text.replace(
            "replace = false",
            "replace = false
extra = 1",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
