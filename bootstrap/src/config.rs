//! What the agent reads: `/etc/tappaas/node.toml` (the node manifest) and
//! `/etc/tappaas/site.toml` (the site file), and where everything lives. Every path is under a
//! root directory (`/` on a node, a temporary directory in tests).

use crate::pve::{Fingerprint, Secret};
use anyhow::{bail, Context as _};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use tappaas_site::manifest::NodeManifest;
use tappaas_site::{Node, ParseOptions, Role, Site};

/// Where the agent's files are, under one root.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/` on a node.
    pub root: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }
    /// An absolute path of the node, under the root.
    pub fn at(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }
    /// `/etc/tappaas/node.toml`
    pub fn manifest(&self) -> PathBuf {
        self.at("/etc/tappaas/node.toml")
    }
    /// `/etc/tappaas/site.toml`
    pub fn site(&self) -> PathBuf {
        self.at("/etc/tappaas/site.toml")
    }
    /// `/var/lib/tappaas/state.json`
    pub fn state(&self) -> PathBuf {
        self.at("/var/lib/tappaas/state.json")
    }
    /// `/var/lib/tappaas/bootstrap.done`: the unit's `ConditionPathExists=!`.
    pub fn done_marker(&self) -> PathBuf {
        self.at("/var/lib/tappaas/bootstrap.done")
    }
    /// The certificate this node's API serves: pveproxy's custom one if set, else the node's.
    pub fn api_cert(&self) -> PathBuf {
        let custom = self.at("/etc/pve/local/pveproxy-ssl.pem");
        if custom.exists() {
            custom
        } else {
            self.at("/etc/pve/local/pve-ssl.pem")
        }
    }
    /// Proxmox Backup Server's API certificate.
    pub fn pbs_cert(&self) -> PathBuf {
        self.at("/etc/proxmox-backup/proxy.pem")
    }
}

/// The fingerprint of this node's API certificate (changes when the node joins a cluster).
pub fn local_fingerprint(paths: &Paths) -> anyhow::Result<Fingerprint> {
    let path = paths.api_cert();
    let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Fingerprint::of_pem(&pem).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

/// This node's configuration: manifest and site, checked against each other.
#[derive(Clone)]
pub struct NodeConfig {
    /// `/etc/tappaas/node.toml`
    pub manifest: NodeManifest,
    /// `/etc/tappaas/site.toml`, parsed.
    pub site: Site,
    /// The site file's text (to remove the join secret from it after the join).
    pub site_source: String,
}

impl std::fmt::Debug for NodeConfig {
    // The site file's text holds the join secret and the root hash: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("manifest", &self.manifest)
            .field("site", &self.site)
            .field("site_source", &"<redacted>")
            .finish()
    }
}

impl NodeConfig {
    /// Reads and cross-checks both files.
    pub fn load(paths: &Paths) -> anyhow::Result<NodeConfig> {
        let mpath = paths.manifest();
        let mtext = std::fs::read_to_string(&mpath)
            .with_context(|| format!("reading {}", mpath.display()))?;
        let manifest =
            NodeManifest::parse(&mtext).with_context(|| format!("reading {}", mpath.display()))?;
        let spath = paths.site();
        let site_source = std::fs::read_to_string(&spath)
            .with_context(|| format!("reading {}", spath.display()))?;
        NodeConfig::from_parts(manifest, &site_source, &spath.display().to_string())
    }

    /// From a parsed manifest and the site file's text.
    pub fn from_parts(
        manifest: NodeManifest,
        site_source: &str,
        site_name: &str,
    ) -> anyhow::Result<NodeConfig> {
        // The installer's front door checked the profiles; the agent has no profile list, and
        // a node's site copy is the file that was validated then.
        let site = tappaas_site::parse(site_source, &ParseOptions::default())
            .map_err(|d| anyhow::anyhow!("{}", tappaas_site::render_all(&d, site_name)))?;
        if site.site.name != manifest.site {
            bail!(
                "the node manifest is for site {}, {site_name} is site {}",
                manifest.site,
                site.site.name
            );
        }
        let c = NodeConfig {
            manifest,
            site,
            site_source: site_source.to_string(),
        };
        let me = c.me()?;
        if me.role != c.manifest.node.role {
            bail!(
                "{} is a {} in the node manifest but a {} in the site file",
                me.name,
                c.manifest.node.role,
                me.role
            );
        }
        c.primary()?;
        Ok(c)
    }

    /// This node's entry in the site file.
    pub fn me(&self) -> anyhow::Result<&Node> {
        let name = &self.manifest.node.name;
        self.site
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .with_context(|| format!("the site file has no node {name}"))
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.manifest.node.name
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.manifest.node.role
    }

    /// The primary's entry.
    pub fn primary(&self) -> anyhow::Result<&Node> {
        self.site
            .nodes
            .iter()
            .find(|n| n.role == Role::Primary)
            .context("the site file has no primary node")
    }

    /// This node's management address (without prefix).
    pub fn address(&self) -> anyhow::Result<Ipv4Addr> {
        let a = &self.manifest.node.address;
        a.split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("node manifest: address {a:?} is not IPv4/prefix"))
    }

    /// The management address with its prefix, as the installer wrote it.
    pub fn address_cidr(&self) -> &str {
        &self.manifest.node.address
    }

    /// Whether this node forms or joins a cluster (so a join window is needed): the site has
    /// more nodes than this one, or it carries a join secret (now or before
    /// `forget-join-secret`), which makes even a site of one node a cluster that machines
    /// added later can join. The TUI gives every new site one.
    pub fn forms_cluster(&self) -> bool {
        self.site.nodes.len() > 1
            || self.site.cluster.join_secret.is_some()
            || self
                .site_source
                .lines()
                .any(|l| l.trim() == FORGOTTEN_SECRET_LINE)
    }

    /// Whether this node replaces a failed one and rejoins the cluster the other nodes kept.
    /// A replaced node of a one-node site has nobody to rejoin: it is set up afresh (and forms
    /// a new cluster of one if the site has a join secret).
    pub fn rejoins(&self) -> bool {
        self.manifest.node.replace && self.site.nodes.len() > 1
    }

    /// The one-time join secret.
    pub fn join_secret(&self) -> anyhow::Result<Secret> {
        self.site
            .cluster
            .join_secret
            .clone()
            .map(Secret::new)
            .context("the site file has no [cluster] join-secret (needed by a site with more than one node; the members may already have removed theirs after joining)")
    }

    /// The primary's pinned fingerprint: `primary-fingerprint`, or the fingerprint of
    /// `primary-certificate` when the site gives only the certificate.
    pub fn primary_fingerprint(&self) -> anyhow::Result<Fingerprint> {
        let fp = self.site.cluster.pinned_fingerprint().context(
            "the site file has neither [cluster] primary-fingerprint nor primary-certificate: run `tappaas-bootstrap fingerprint` on the primary and add it as primary-fingerprint (or make the primary's certificate in advance with `tappaas-installer join-keys`)",
        )?;
        Ok(Fingerprint::parse(&fp)?)
    }

    /// The node a replaced primary joins the cluster through: the first other site node, in
    /// node-id order, whose `api-fingerprint` is given. The error says what to add and how to
    /// get it.
    pub fn survivor(&self) -> anyhow::Result<&Node> {
        let me = self.name();
        let mut others: Vec<&Node> = self.site.nodes.iter().filter(|n| n.name != me).collect();
        others.sort_by_key(|n| n.id);
        if let Some(n) = others.iter().find(|n| n.api_fingerprint.is_some()) {
            return Ok(n);
        }
        let example = others
            .first()
            .map_or("a surviving node", |n| n.name.as_str());
        bail!(
            "no other node of the site has an api-fingerprint: a replaced primary joins the cluster through a surviving node and sends it the join secret only after pinning that node's API certificate. On a surviving node (for example {example}) run `tappaas-bootstrap join-window open --site <this site file>`: it opens that node's join window and prints its fingerprint as the line `api-fingerprint = \"...\"` to add to its [[node]] table in the site file; then reinstall this node from that site file (or add the line to /etc/tappaas/site.toml here)"
        )
    }

    /// How long to wait for the primary (and the primary for the nodes).
    pub fn join_wait(&self) -> Duration {
        Duration::from_secs(u64::from(self.site.cluster.join_wait_minutes) * 60)
    }

    /// This node's data pools by role (`tank1`, `tank2`), as installed.
    pub fn data_pools(&self) -> Vec<(String, String)> {
        self.manifest
            .pools
            .iter()
            .filter(|(role, _)| role.as_str() != "rpool")
            .map(|(r, n)| (r.clone(), n.clone()))
            .collect()
    }
}

/// What `forget-join-secret` leaves in place of the `join-secret` line.
pub const FORGOTTEN_SECRET_LINE: &str =
    "# join-secret: removed by tappaas-bootstrap after the join";

/// The site file's text without the join secret (the line becomes a comment), for members
/// once they joined and for the primary once the window is closed.
pub fn without_join_secret(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        let t = line.trim_start();
        let is_secret = t
            .strip_prefix("join-secret")
            .or_else(|| t.strip_prefix("\"join-secret\""))
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_secret {
            out.push_str(FORGOTTEN_SECRET_LINE);
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_the_secret_line() {
        let src = "[cluster]\nname = \"x\"\n  join-secret   = \"abcdefghijklmnopq\"\njoin-wait-minutes = 5\n";
        let out = without_join_secret(src);
        assert!(!out.contains("abcdefghijklmnopq"));
        assert!(out.contains("name = \"x\"\n"));
        assert!(out.contains("join-wait-minutes = 5\n"));
        assert_eq!(
            without_join_secret("join-secrets-are = 1\n"),
            "join-secrets-are = 1\n"
        );
    }
}
