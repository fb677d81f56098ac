//! The simulated site's state: nodes, their cluster filesystems, tasks, faults, request log.
//!
//! One mutex guards the whole site, so every request and task step sees a consistent world.
//! A node's configuration that PVE keeps in pmxcfs (`/etc/pve`: corosync.conf, storage.cfg,
//! user.cfg tokens, jobs, the auth key that signs tickets) lives in a [`Cfs`]. A standalone
//! node has its own; joining a cluster switches the node to the cluster's (its own local
//! configuration is discarded, as pmxcfs does when it syncs from the cluster).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::tls::NodeCert;

/// PVE's message when pmxcfs is read-only for lack of quorum (PVE::Cluster::check_cfs_quorum).
pub const NO_QUORUM: &str = "cluster not ready - no quorum?";

/// How a node that is "down" behaves towards clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DownMode {
    /// The listening socket is closed: clients get "connection refused".
    Refuse,
    /// Connections are accepted but requests never get an answer (a hung node or network).
    Hang,
}

/// An injected fault on requests.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Only on this node (by name); `None` for any node.
    pub node: Option<String>,
    /// Only for this HTTP method; `None` for any.
    pub method: Option<String>,
    /// The path below `/api2/json`: a template (`/nodes/{node}/status`), a concrete path, or a
    /// prefix ending in `*`.
    pub path: String,
    /// How many more requests it applies to.
    pub remaining: u32,
    /// What happens to those requests.
    pub kind: FaultKind,
}

/// What an injected request fault does.
#[derive(Debug, Clone, Serialize)]
pub enum FaultKind {
    /// Answer with this HTTP status and message instead of handling the request.
    Status {
        /// HTTP status, e.g. 500.
        status: u16,
        /// The message (HTTP reason and the body's `message`).
        message: String,
    },
    /// Wait this long before handling the request (a client with a shorter timeout sees a hang).
    Delay(Duration),
}

/// How long tasks take, by PVE task type (`clustercreate`, `clusterjoin`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Per task type.
    pub tasks: BTreeMap<String, Duration>,
    /// For task types not listed.
    pub default_task: Duration,
    /// Added before every API answer (0 by default).
    pub request: Duration,
    /// From a new custom certificate (`restart=1`) until pveproxy serves it.
    pub pveproxy_restart: Duration,
}

impl Default for Latencies {
    /// Fast enough for unit tests: every task takes 20 ms.
    fn default() -> Self {
        Self {
            tasks: BTreeMap::new(),
            default_task: Duration::from_millis(20),
            request: Duration::ZERO,
            pveproxy_restart: Duration::from_millis(50),
        }
    }
}

impl Latencies {
    /// Durations like a real small cluster: create ~3 s, join ~12 s (corosync restart,
    /// pmxcfs sync, certificate update), 5 ms per API request, 2 s for pveproxy to restart
    /// with a new certificate.
    pub fn realistic() -> Self {
        Self {
            tasks: BTreeMap::from([
                ("clustercreate".to_string(), Duration::from_secs(3)),
                ("clusterjoin".to_string(), Duration::from_secs(12)),
            ]),
            default_task: Duration::from_secs(1),
            request: Duration::from_millis(5),
            pveproxy_restart: Duration::from_secs(2),
        }
    }

    /// Every duration multiplied by `factor` (e.g. realistic ratios, 100 times faster).
    pub fn scaled(&self, factor: f64) -> Self {
        let f = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() * factor.max(0.0));
        Self {
            tasks: self.tasks.iter().map(|(k, d)| (k.clone(), f(*d))).collect(),
            default_task: f(self.default_task),
            request: f(self.request),
            pveproxy_restart: f(self.pveproxy_restart),
        }
    }

    /// The latency of one task type.
    pub fn task(&self, kind: &str) -> Duration {
        self.tasks.get(kind).copied().unwrap_or(self.default_task)
    }
}

/// One corosync nodelist entry.
#[derive(Debug, Clone, Serialize)]
pub struct CorosyncNode {
    /// Node id (1..).
    pub nodeid: u32,
    /// Quorum votes.
    pub votes: u32,
    /// link0 address.
    pub ring0_addr: String,
}

/// The corosync part of a cluster filesystem.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterConf {
    /// Cluster name.
    pub name: String,
    /// corosync.conf `config_version`, bumped on every nodelist change.
    pub config_version: u32,
    /// Nodelist by node name.
    pub nodes: BTreeMap<String, CorosyncNode>,
}

/// A pmxcfs instance: what PVE keeps under `/etc/pve`.
#[derive(Debug, Clone)]
pub struct Cfs {
    /// Signs tickets and CSRF tokens (`/etc/pve/authkey.key`); shared by cluster members.
    pub authkey: String,
    /// corosync.conf, when clustered.
    pub cluster: Option<ClusterConf>,
    /// storage.cfg: storage id -> properties (including `type`).
    pub storage: BTreeMap<String, BTreeMap<String, String>>,
    /// Storage passwords (`/etc/pve/priv/storage/<id>.pw`), never returned by GET.
    pub storage_secrets: BTreeMap<String, String>,
    /// API tokens: full token id (`root@pam!name`) -> (secret, privsep).
    pub tokens: BTreeMap<String, (String, bool)>,
    /// jobs.cfg/vzdump.cron backup jobs by id.
    pub backup_jobs: BTreeMap<String, BTreeMap<String, String>>,
    /// replication.cfg jobs by id.
    pub replication_jobs: BTreeMap<String, BTreeMap<String, String>>,
    /// Expected votes lowered at runtime (`pvecm expected N`); reset by a nodelist change.
    pub expected_votes: Option<u32>,
}

impl Cfs {
    /// What a freshly installed node has: `local` and `local-zfs` (as the installer seeds).
    pub fn fresh() -> Self {
        let storage = BTreeMap::from([
            (
                "local".to_string(),
                props(&[
                    ("type", "dir"),
                    ("path", "/var/lib/vz"),
                    ("content", "iso,vztmpl,backup"),
                ]),
            ),
            (
                "local-zfs".to_string(),
                props(&[
                    ("type", "zfspool"),
                    ("pool", "rpool/data"),
                    ("sparse", "1"),
                    ("content", "images,rootdir"),
                ]),
            ),
        ]);
        Self {
            authkey: uuid::Uuid::new_v4().to_string(),
            cluster: None,
            storage,
            storage_secrets: BTreeMap::new(),
            tokens: BTreeMap::new(),
            backup_jobs: BTreeMap::new(),
            replication_jobs: BTreeMap::new(),
            expected_votes: None,
        }
    }
}

impl Cfs {
    /// storage.cfg's digest (PVE: SHA-1 of the file; here 40 hex digits of SHA-256 of its
    /// content), returned by GET and checked by PUT's `digest`.
    pub fn storage_digest(&self) -> String {
        let text = serde_json::to_string(&self.storage).unwrap_or_default();
        Sha256::digest(text.as_bytes())
            .iter()
            .take(20)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A worker task (what PVE's fork_worker creates).
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    /// The UPID.
    pub upid: String,
    /// Task type, e.g. `clusterjoin`.
    pub kind: String,
    /// Task id field (e.g. the cluster name), may be empty.
    pub id: String,
    /// User who started it.
    pub user: String,
    /// Fake pid.
    pub pid: u32,
    /// Fake process start time.
    pub pstart: u32,
    /// Unix start time.
    pub starttime: u64,
    /// Unix end time, once stopped.
    pub endtime: Option<u64>,
    /// `None` while running; `Some("OK")` or `Some(error)` when stopped.
    pub exitstatus: Option<String>,
    /// Log lines.
    pub log: Vec<String>,
}

/// One simulated node.
#[derive(Debug)]
pub struct Node {
    /// Node name (hostname).
    pub name: String,
    /// Management address: ring0_addr and pve_addr, and what `hostname=` of a join may name.
    pub address: String,
    /// Other names that reach this node in a join's `hostname=` (e.g. the FQDN).
    pub aliases: Vec<String>,
    /// TLS identity.
    pub cert: NodeCert,
    /// root@pam password (PAM: local to the node, not cluster-wide).
    pub root_password: String,
    /// `Some` while the node is down.
    pub down: Option<DownMode>,
    /// Index of this node's pmxcfs in `SiteState::cfs`.
    pub cfs: usize,
    /// Tasks started on this node.
    pub tasks: Vec<Task>,
    /// Next fake pid.
    pub next_pid: u32,
    /// Loopback port (set once the listener is bound).
    pub port: u16,
    /// Bumped whenever the certificate changes (open connections are then dropped, as a
    /// pveproxy restart does).
    pub generation: u64,
    /// A custom `pveproxy-ssl.pem` exists (given in advance, or uploaded with
    /// `POST /nodes/{node}/certificates/custom`): a join keeps it, and a new upload needs `force`.
    pub custom_cert: bool,
    /// An uploaded custom certificate pveproxy does not serve yet (uploaded without `restart`,
    /// or its restart is still under way); the next pveproxy restart (a join) loads it.
    pub staged_cert: Option<NodeCert>,
    /// Fail the next join started on this node half-way (after the nodelist change).
    pub fail_join_halfway: u32,
    /// Whether the port is listening right now (maintained by the server loop).
    pub listening: bool,
    /// Open client connections.
    pub connections: u32,
}

/// One request as the site saw it, including rejected ones.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Node that answered.
    pub node: String,
    /// HTTP method.
    pub method: String,
    /// Path below `/api2/json`.
    pub path: String,
    /// Parameters (password-like values replaced by `***`).
    pub params: BTreeMap<String, String>,
    /// HTTP status sent.
    pub status: u16,
    /// Error message, if any (for 400: the per-parameter errors as JSON).
    pub error: Option<String>,
}

/// The whole site.
#[derive(Debug)]
pub struct SiteState {
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// pmxcfs instances; nodes point into this by index. Never shrinks.
    pub cfs: Vec<Cfs>,
    /// Active request faults.
    pub faults: Vec<Fault>,
    /// Every request so far.
    pub log: Vec<RequestRecord>,
    /// Task and request latencies.
    pub latencies: Latencies,
    /// Answers that did not match the schema's `returns` ("METHOD path: problem").
    pub return_violations: Vec<String>,
}

/// Unix time now, in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sign(authkey: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(authkey.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    h.finalize()
        .iter()
        .take(24)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long a ticket is valid (PVE: 2 hours).
pub const TICKET_LIFETIME: u64 = 2 * 3600;

impl SiteState {
    /// The pmxcfs a node currently uses.
    pub fn cfs_of(&self, node: &str) -> Option<&Cfs> {
        self.nodes.get(node).and_then(|n| self.cfs.get(n.cfs))
    }

    /// Mutable pmxcfs of a node.
    pub fn cfs_of_mut(&mut self, node: &str) -> Option<&mut Cfs> {
        let idx = self.nodes.get(node)?.cfs;
        self.cfs.get_mut(idx)
    }

    /// Members of the cluster of pmxcfs `idx` that are up and synced: (name, votes).
    fn online_members(&self, idx: usize) -> Vec<(String, u32)> {
        let Some(conf) = self.cfs.get(idx).and_then(|c| c.cluster.as_ref()) else {
            return Vec::new();
        };
        conf.nodes
            .iter()
            .filter(|(name, _)| {
                self.nodes
                    .get(*name)
                    .is_some_and(|n| n.down.is_none() && n.cfs == idx)
            })
            .map(|(name, e)| (name.clone(), e.votes))
            .collect()
    }

    /// Whether `node` is quorate: standalone nodes always are; members when the votes of
    /// online, synced members are more than half of the nodelist's votes (votequorum).
    pub fn quorate(&self, node: &str) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        let Some(conf) = self.cfs.get(n.cfs).and_then(|c| c.cluster.as_ref()) else {
            return true;
        };
        if !conf.nodes.contains_key(node) {
            return false; // removed from the nodelist: not part of any quorum
        }
        let configured: u32 = conf.nodes.values().map(|e| e.votes).sum();
        let expected = self
            .cfs
            .get(n.cfs)
            .and_then(|c| c.expected_votes)
            .unwrap_or(configured);
        let online: u32 = self.online_members(n.cfs).iter().map(|(_, v)| v).sum();
        online * 2 > expected
    }

    /// `Err(NO_QUORUM)` when pmxcfs of `node` is read-only.
    pub fn check_quorum(&self, node: &str) -> Result<(), String> {
        if self.quorate(node) {
            Ok(())
        } else {
            Err(NO_QUORUM.to_string())
        }
    }

    /// Whether `node` is an online, synced member of the same cluster as `of` (or `of` itself).
    pub fn reachable_member(&self, of: &str, node: &str) -> bool {
        if of == node {
            return true;
        }
        let Some(idx) = self.nodes.get(of).map(|n| n.cfs) else {
            return false;
        };
        self.online_members(idx).iter().any(|(n, _)| n == node)
    }

    /// A new ticket for `user`, valid on every node sharing `node`'s pmxcfs.
    pub fn issue_ticket(&self, node: &str, user: &str) -> Option<(String, String)> {
        let key = &self.cfs_of(node)?.authkey;
        let ts = format!("{:08X}", now());
        let ticket = format!("PVE:{user}:{ts}::{}", sign(key, &["ticket", user, &ts]));
        let csrf = format!("{ts}:{}", sign(key, &["csrf", user, &ts]));
        Some((ticket, csrf))
    }

    /// The user of a valid ticket on `node`.
    pub fn verify_ticket(&self, node: &str, ticket: &str) -> Option<String> {
        let key = &self.cfs_of(node)?.authkey;
        let rest = ticket.strip_prefix("PVE:")?;
        let (user, rest) = rest.split_once(':')?;
        let (ts, sig) = rest.split_once("::")?;
        let t = u64::from_str_radix(ts, 16).ok()?;
        if now().saturating_sub(t) > TICKET_LIFETIME || sig != sign(key, &["ticket", user, ts]) {
            return None;
        }
        Some(user.to_string())
    }

    /// Whether `csrf` is the CSRF token belonging to `user`'s ticket on `node`.
    pub fn verify_csrf(&self, node: &str, user: &str, csrf: &str) -> bool {
        let Some(cfs) = self.cfs_of(node) else {
            return false;
        };
        csrf.split_once(':')
            .is_some_and(|(ts, sig)| sig == sign(&cfs.authkey, &["csrf", user, ts]))
    }

    /// Start a task on `node`; returns its UPID.
    pub fn new_task(&mut self, node: &str, kind: &str, id: &str, user: &str) -> Option<String> {
        let n = self.nodes.get_mut(node)?;
        let pid = n.next_pid;
        n.next_pid += 1;
        let pstart = pid.wrapping_mul(7) + 1000;
        let starttime = now();
        let upid = format!(
            "UPID:{node}:{pid:08X}:{pstart:08X}:{:08X}:{kind}:{id}:{user}:",
            starttime
        );
        n.tasks.push(Task {
            upid: upid.clone(),
            kind: kind.into(),
            id: id.into(),
            user: user.into(),
            pid,
            pstart,
            starttime,
            endtime: None,
            exitstatus: None,
            log: Vec::new(),
        });
        Some(upid)
    }

    /// Find a task by UPID on `node`.
    pub fn task_mut(&mut self, node: &str, upid: &str) -> Option<&mut Task> {
        self.nodes
            .get_mut(node)?
            .tasks
            .iter_mut()
            .find(|t| t.upid == upid)
    }

    /// Finish a task with its log and result.
    pub fn finish_task(
        &mut self,
        node: &str,
        upid: &str,
        log: Vec<String>,
        result: Result<(), String>,
    ) {
        if let Some(t) = self.task_mut(node, upid) {
            t.log.extend(log);
            let status = match result {
                Ok(()) => "OK".to_string(),
                Err(e) => {
                    t.log.push(format!("TASK ERROR: {e}"));
                    e
                }
            };
            if status == "OK" {
                t.log.push("TASK OK".into());
            }
            t.exitstatus = Some(status);
            t.endtime = Some(now());
        }
    }

    /// The node whose name, address or alias is `host` (what a join's `hostname=` names).
    pub fn resolve(&self, host: &str) -> Option<String> {
        self.nodes
            .values()
            .find(|n| n.name == host || n.address == host || n.aliases.iter().any(|a| a == host))
            .map(|n| n.name.clone())
    }

    /// Take the first matching fault for this request, counting it down.
    pub fn take_fault(
        &mut self,
        node: &str,
        method: &str,
        path: &str,
        template: Option<&str>,
    ) -> Option<FaultKind> {
        let pos = self.faults.iter().position(|f| {
            f.remaining > 0
                && f.node.as_deref().is_none_or(|n| n == node)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && (f.path == path
                    || Some(f.path.as_str()) == template
                    || f.path
                        .strip_suffix('*')
                        .is_some_and(|p| path.starts_with(p)))
        })?;
        let f = &mut self.faults[pos];
        f.remaining -= 1;
        let kind = f.kind.clone();
        if f.remaining == 0 {
            self.faults.remove(pos);
        }
        Some(kind)
    }

    /// `/cluster/config/join` GET data for a member.
    pub fn join_info(&self, node: &str) -> Option<Value> {
        let cfs = self.cfs_of(node)?;
        let conf = cfs.cluster.as_ref()?;
        let nodelist: Vec<Value> = conf
            .nodes
            .iter()
            .map(|(name, e)| {
                let n = self.nodes.get(name);
                json!({
                    "name": name,
                    "nodeid": e.nodeid,
                    "quorum_votes": e.votes,
                    "ring0_addr": e.ring0_addr,
                    "pve_addr": n.map_or(e.ring0_addr.clone(), |n| n.address.clone()),
                    "pve_fp": n.map(|n| n.cert.fingerprint()).unwrap_or_default(),
                })
            })
            .collect();
        let totem = json!({
            "cluster_name": conf.name,
            "config_version": conf.config_version.to_string(),
            "interface": {"0": {"linknumber": "0"}},
            "ip_version": "ipv4-6",
            "link_mode": "passive",
            "secauth": "on",
            "version": "2",
        });
        let digest = sign(
            "corosync.conf",
            &[&serde_json::to_string(conf).unwrap_or_default()],
        );
        Some(json!({
            "nodelist": nodelist,
            "preferred_node": node,
            "totem": totem,
            "config_digest": digest,
        }))
    }
}
