//! A simulated Proxmox VE site for the first-boot agent's tests.
//!
//! [`SimSite::start`] brings up N simulated nodes, each with its own HTTPS endpoint on
//! loopback and its own self-signed certificate, serving the part of the PVE API the agent
//! uses (see [`api::IMPLEMENTED`]). Every request is checked against the vendored PVE API
//! schema first ([`schema`]), and rejected the way PVE rejects it. Cluster creation and joins
//! are asynchronous tasks with configurable latency; membership, quorum and pmxcfs's
//! read-only-without-quorum rule are modelled in [`site`]; faults can be injected through
//! the handle (or, for the binary, its admin endpoint).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tappaas_pve_sim::{SimConfig, SimSite};
//! let site = SimSite::start(SimConfig::with_nodes(3)).await?;
//! let n1 = site.node("tappaas1").expect("configured");
//! println!("{} pinned by {}", n1.api_url(), n1.fingerprint());
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod formats;
mod node;
pub mod returns;
pub mod schema;
mod server;
pub mod site;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::Serialize;

use api::Shared;
pub use node::NodeHandle;
use schema::Schema;
use site::{Cfs, Node, SiteState};
pub use site::{DownMode, Fault, FaultKind, Latencies, RequestRecord, Task};
pub use tls::NodeCert;

/// One node to simulate.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node name (hostname), e.g. `tappaas1`.
    pub name: String,
    /// Management address (corosync ring0 and what a join's `hostname=` may name).
    pub address: String,
    /// More names a join's `hostname=` may use (e.g. the FQDN).
    pub aliases: Vec<String>,
    /// root@pam password.
    pub root_password: String,
    /// A pre-generated certificate (so its fingerprint is known in advance); `None` generates one.
    pub certificate: Option<NodeCert>,
    /// Loopback port; 0 picks a free one.
    pub port: u16,
    /// Start the node down (e.g. a member that boots before the primary).
    pub start_down: Option<DownMode>,
}

impl NodeSpec {
    /// TAPPaaS defaults for node `n` (1-based): `tappaasN`, 10.0.0.(9+N),
    /// `tappaasN.mgmt.internal`, a random password.
    pub fn tappaas(n: u8) -> Self {
        let name = format!("tappaas{n}");
        Self {
            aliases: vec![format!("{name}.mgmt.internal")],
            address: format!("10.0.0.{}", 9 + u16::from(n)),
            name,
            root_password: uuid::Uuid::new_v4().simple().to_string(),
            certificate: None,
            port: 0,
            start_down: None,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// Task and request latencies.
    pub latencies: Latencies,
}

impl SimConfig {
    /// `n` TAPPaaS nodes (`tappaas1`..), fast latencies.
    pub fn with_nodes(n: u8) -> Self {
        Self {
            nodes: (1..=n).map(NodeSpec::tappaas).collect(),
            latencies: Latencies::default(),
        }
    }
}

/// Where a node can be reached, as the binary prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Node name.
    pub name: String,
    /// Management address (simulated; not bound).
    pub address: String,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// SHA-256 certificate fingerprint, PVE style.
    pub fingerprint: String,
    /// root@pam password.
    pub root_password: String,
}

/// A running simulated site. Dropping it stops every node's listener.
#[derive(Debug)]
pub struct SimSite {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for SimSite {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl SimSite {
    /// Bind every node's listener and start serving. Needs a tokio runtime (multi-thread
    /// recommended).
    pub async fn start(config: SimConfig) -> anyhow::Result<SimSite> {
        let schema = Schema::vendored()
            .as_ref()
            .map_err(|e| anyhow::anyhow!("loading the vendored PVE schema: {e}"))?;
        let mut state = SiteState {
            nodes: BTreeMap::new(),
            cfs: Vec::new(),
            faults: Vec::new(),
            log: Vec::new(),
            return_violations: Vec::new(),
            latencies: config.latencies.clone(),
        };
        let mut listeners = Vec::new();
        for (i, spec) in config.nodes.iter().enumerate() {
            if state.nodes.contains_key(&spec.name) {
                anyhow::bail!("node name '{}' given twice", spec.name);
            }
            if let Err(e) = formats::check("pve-node", &spec.name) {
                anyhow::bail!("node name '{}': {e}", spec.name);
            }
            let cert = match &spec.certificate {
                Some(c) => c.clone(),
                None => NodeCert::generate(&spec.name)
                    .with_context(|| format!("generating a certificate for {}", spec.name))?,
            };
            let socket = server::reserve(spec.port)
                .with_context(|| format!("binding 127.0.0.1:{} for {}", spec.port, spec.name))?;
            let port = socket
                .local_addr()?
                .as_socket()
                .map(|a| a.port())
                .ok_or_else(|| anyhow::anyhow!("{}: not an IP socket", spec.name))?;
            state.cfs.push(Cfs::fresh());
            state.nodes.insert(
                spec.name.clone(),
                Node {
                    name: spec.name.clone(),
                    address: spec.address.clone(),
                    aliases: spec.aliases.clone(),
                    cert,
                    root_password: spec.root_password.clone(),
                    down: spec.start_down,
                    cfs: state.cfs.len() - 1,
                    tasks: Vec::new(),
                    next_pid: 1000 + 100 * u32::try_from(i).unwrap_or(0),
                    port,
                    generation: 0,
                    custom_cert: spec.certificate.is_some(),
                    staged_cert: None,
                    fail_join_halfway: 0,
                    listening: spec.start_down != Some(DownMode::Refuse),
                    connections: 0,
                },
            );
            // A node that starts powered off refuses connections from the first moment.
            let listener = if spec.start_down == Some(DownMode::Refuse) {
                server::Port::Reserved(socket)
            } else {
                server::Port::Listening(
                    server::listen(socket)
                        .with_context(|| format!("listening for {}", spec.name))?,
                )
            };
            listeners.push((spec.name.clone(), listener));
        }
        let (changed, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            schema,
            changed,
        });
        let tasks = listeners
            .into_iter()
            .map(|(name, l)| tokio::spawn(server::serve_node(Arc::clone(&shared), name, l)))
            .collect();
        Ok(SimSite {
            shared,
            tasks: Mutex::new(tasks),
        })
    }

    /// The handle of node `name`.
    pub fn node(&self, name: &str) -> Option<NodeHandle> {
        self.shared
            .lock()
            .nodes
            .contains_key(name)
            .then(|| NodeHandle::new(Arc::clone(&self.shared), name))
    }

    /// All nodes, by name.
    pub fn nodes(&self) -> Vec<NodeHandle> {
        let names: Vec<String> = self.shared.lock().nodes.keys().cloned().collect();
        names
            .into_iter()
            .map(|name| NodeHandle::new(Arc::clone(&self.shared), &name))
            .collect()
    }

    /// Every node's endpoint (what the binary prints).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.nodes().iter().map(NodeHandle::endpoint).collect()
    }

    /// The loopback URL serving the node whose management address (or name/alias) is `host`;
    /// lets a client map `https://10.0.0.10:8006` to the simulator.
    pub fn url_for(&self, host: &str) -> Option<String> {
        let name = self.shared.lock().resolve(host)?;
        self.node(&name).map(|n| n.url())
    }

    /// The cluster node names as `node`'s corosync.conf lists them (empty when standalone).
    pub fn cluster_members(&self, node: &str) -> Vec<String> {
        self.shared
            .lock()
            .cfs_of(node)
            .and_then(|c| c.cluster.as_ref())
            .map(|c| c.nodes.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `node`'s nodelist with node ids, votes and ring0 addresses.
    pub fn corosync_nodes(&self, node: &str) -> BTreeMap<String, site::CorosyncNode> {
        self.shared
            .lock()
            .cfs_of(node)
            .and_then(|c| c.cluster.as_ref())
            .map(|c| c.nodes.clone())
            .unwrap_or_default()
    }

    /// The cluster name `node` belongs to.
    pub fn cluster_name(&self, node: &str) -> Option<String> {
        self.shared
            .lock()
            .cfs_of(node)
            .and_then(|c| c.cluster.as_ref())
            .map(|c| c.name.clone())
    }

    /// corosync.conf `config_version` as `node` sees it.
    pub fn config_version(&self, node: &str) -> Option<u32> {
        self.shared
            .lock()
            .cfs_of(node)
            .and_then(|c| c.cluster.as_ref())
            .map(|c| c.config_version)
    }

    /// Whether `node` is quorate (standalone nodes are).
    pub fn quorate(&self, node: &str) -> bool {
        self.shared.lock().quorate(node)
    }

    /// Lower the expected votes of `node`'s cluster at runtime, as `pvecm expected VOTES` run
    /// on that node does (the way out when a half-failed join left the cluster without
    /// quorum). Reset by the next nodelist change.
    pub fn set_expected_votes(&self, node: &str, votes: u32) {
        if let Some(c) = self.shared.lock().cfs_of_mut(node) {
            c.expected_votes = Some(votes);
        }
    }

    /// Whether `a` and `b` share one cluster filesystem (both synced members of one cluster).
    pub fn same_cluster(&self, a: &str, b: &str) -> bool {
        let st = self.shared.lock();
        match (st.nodes.get(a), st.nodes.get(b)) {
            (Some(x), Some(y)) => {
                x.cfs == y.cfs && st.cfs.get(x.cfs).is_some_and(|c| c.cluster.is_some())
            }
            _ => false,
        }
    }

    /// storage.cfg as `node` sees it (passwords are not included).
    pub fn storages(&self, node: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.shared
            .lock()
            .cfs_of(node)
            .map(|c| c.storage.clone())
            .unwrap_or_default()
    }

    /// A stored storage secret (`password` or `encryption-key`) of storage `id`.
    pub fn storage_secret(&self, node: &str, id: &str, key: &str) -> Option<String> {
        self.shared
            .lock()
            .cfs_of(node)
            .and_then(|c| c.storage_secrets.get(&format!("{id}/{key}")).cloned())
    }

    /// Backup jobs as `node` sees them.
    pub fn backup_jobs(&self, node: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.shared
            .lock()
            .cfs_of(node)
            .map(|c| c.backup_jobs.clone())
            .unwrap_or_default()
    }

    /// Replication jobs as `node` sees them.
    pub fn replication_jobs(&self, node: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.shared
            .lock()
            .cfs_of(node)
            .map(|c| c.replication_jobs.clone())
            .unwrap_or_default()
    }

    /// API token ids (`root@pam!name`) as `node` sees them.
    pub fn tokens(&self, node: &str) -> Vec<String> {
        self.shared
            .lock()
            .cfs_of(node)
            .map(|c| c.tokens.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Tasks started on `node`, oldest first.
    pub fn tasks(&self, node: &str) -> Vec<Task> {
        self.shared
            .lock()
            .nodes
            .get(node)
            .map(|n| n.tasks.clone())
            .unwrap_or_default()
    }

    /// Every request so far, on every node, including rejected ones.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Answers of the simulator that did not match the schema's `returns` (a simulator bug;
    /// tests assert this stays empty).
    pub fn return_violations(&self) -> Vec<String> {
        self.shared.lock().return_violations.clone()
    }

    /// Requests answered with an HTTP error status (>= 400).
    pub fn rejected_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.status >= 400)
            .collect()
    }

    /// Inject a request fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Make the next `count` requests matching `method`/`path` (any node) fail with `status`.
    pub fn fail_requests(
        &self,
        method: Option<&str>,
        path: &str,
        count: u32,
        status: u16,
        message: &str,
    ) {
        self.inject(Fault {
            node: None,
            method: method.map(str::to_string),
            path: path.to_string(),
            remaining: count,
            kind: FaultKind::Status {
                status,
                message: message.to_string(),
            },
        });
    }

    /// Delay the next `count` requests matching `method`/`path` (any node) by `delay`.
    pub fn delay_requests(
        &self,
        method: Option<&str>,
        path: &str,
        count: u32,
        delay: std::time::Duration,
    ) {
        self.inject(Fault {
            node: None,
            method: method.map(str::to_string),
            path: path.to_string(),
            remaining: count,
            kind: FaultKind::Delay(delay),
        });
    }

    /// Remove every pending request fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Faults still pending.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Wait until `condition` holds for the site (checked every 10 ms); `false` on timeout.
    /// E.g. `site.wait_for(t, |s| s.cluster_members("tappaas1").len() == 3 && s.quorate("tappaas1"))`.
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        condition: impl Fn(&SimSite) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Replace the latencies (applies to tasks started afterwards).
    pub fn set_latencies(&self, latencies: Latencies) {
        self.shared.lock().latencies = latencies;
    }

    /// A JSON snapshot of the site (nodes, membership, quorum, storage, pending faults).
    pub fn snapshot(&self) -> serde_json::Value {
        let st = self.shared.lock();
        let nodes: Vec<serde_json::Value> = st
            .nodes
            .values()
            .map(|n| {
                let cfs = st.cfs.get(n.cfs);
                serde_json::json!({
                    "name": n.name,
                    "address": n.address,
                    "url": format!("https://127.0.0.1:{}", n.port),
                    "fingerprint": n.cert.fingerprint(),
                    "down": n.down,
                    "quorate": st.quorate(&n.name),
                    "cluster": cfs.and_then(|c| c.cluster.clone()),
                    "storage": cfs.map(|c| c.storage.clone()),
                    "tasks": n.tasks.len(),
                })
            })
            .collect();
        serde_json::json!({ "nodes": nodes, "faults": st.faults })
    }
}
