//! The Proxmox VE API calls the agent makes, typed. Parameter names are the PVE schema's
//! (`pve-api-schema.json`); the client checks nothing itself, Proxmox (or the simulator) does.

use super::PveError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A task id as Proxmox returns it: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Upid(pub String);

impl Upid {
    /// The node that runs the task (the second field), where its status must be asked.
    pub fn node(&self) -> Option<&str> {
        let mut it = self.0.split(':');
        (it.next() == Some("UPID")).then_some(())?;
        it.next().filter(|n| !n.is_empty())
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upid({})", self.0)
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    pub status: String,
    /// `OK`, `WARNINGS: n`, or the error, once stopped.
    #[serde(default)]
    pub exitstatus: Option<String>,
}

/// One entry of `GET /cluster/status`: the cluster itself or a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterStatusEntry {
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cluster or node name.
    pub name: String,
    /// `cluster` or `node/<name>`.
    #[serde(default)]
    pub id: String,
    /// [node] corosync node id.
    #[serde(default)]
    pub nodeid: Option<u32>,
    /// [node] online (1) or not.
    #[serde(default)]
    pub online: Option<u8>,
    /// [node] the node the request went to.
    #[serde(default)]
    pub local: Option<u8>,
    /// [node] its address.
    #[serde(default)]
    pub ip: Option<String>,
    /// [cluster] quorate (1) or not.
    #[serde(default)]
    pub quorate: Option<u8>,
    /// [cluster] number of nodes.
    #[serde(default)]
    pub nodes: Option<u32>,
}

/// What `GET /cluster/status` says, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterView {
    /// The cluster's name, when the node is in one.
    pub cluster: Option<String>,
    /// Quorate.
    pub quorate: bool,
    /// Member nodes: (name, online).
    pub nodes: Vec<(String, bool)>,
}

impl ClusterView {
    /// Summarises status entries.
    pub fn from_entries(entries: &[ClusterStatusEntry]) -> ClusterView {
        let mut v = ClusterView::default();
        for e in entries {
            match e.kind.as_str() {
                "cluster" => {
                    v.cluster = Some(e.name.clone());
                    v.quorate = e.quorate == Some(1);
                }
                "node" => v.nodes.push((e.name.clone(), e.online == Some(1))),
                _ => {}
            }
        }
        v
    }
    /// Whether `name` is a member (online or not).
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.iter().any(|(n, _)| n == name)
    }
    /// Whether `name` is a member and online.
    pub fn node_online(&self, name: &str) -> bool {
        self.nodes.iter().any(|(n, on)| n == name && *on)
    }
}

/// `POST /cluster/config`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCluster {
    /// `clustername`
    pub clustername: String,
    /// `nodeid`
    pub nodeid: Option<u32>,
    /// `link0`: `address=<ip>`
    pub link0: String,
}

/// One node in `GET /cluster/config/join`'s `nodelist`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinNode {
    /// Node name.
    pub name: String,
    /// Corosync node id.
    #[serde(default)]
    pub nodeid: Option<u32>,
    /// Its API address.
    #[serde(default)]
    pub pve_addr: Option<String>,
    /// Its API certificate's fingerprint.
    #[serde(default)]
    pub pve_fp: Option<String>,
}

/// `GET /cluster/config/join`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinInfo {
    /// The cluster's nodes.
    pub nodelist: Vec<JoinNode>,
    /// The node that answered.
    #[serde(default)]
    pub preferred_node: Option<String>,
}

/// `POST /cluster/config/join`. The password is the peer's root password: never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinCluster {
    /// `hostname`: an existing member's address.
    pub hostname: String,
    /// `fingerprint`: that member's certificate fingerprint.
    pub fingerprint: String,
    /// `password`
    pub password: String,
    /// `nodeid`
    pub nodeid: Option<u32>,
    /// `link0`
    pub link0: String,
    /// `force`: join even if a node of this name exists (a replacement).
    pub force: bool,
}

impl fmt::Debug for JoinCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinCluster")
            .field("hostname", &self.hostname)
            .field("fingerprint", &self.fingerprint)
            .field("password", &"<redacted>")
            .field("nodeid", &self.nodeid)
            .field("link0", &self.link0)
            .field("force", &self.force)
            .finish()
    }
}

/// A storage entry of `GET /storage` (the fields we read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StorageEntry {
    /// Storage id.
    pub storage: String,
    /// Type (`zfspool`, `pbs`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// `pool` (zfspool).
    #[serde(default)]
    pub pool: Option<String>,
    /// Comma-separated node list; absent means every node.
    #[serde(default)]
    pub nodes: Option<String>,
    /// Comma-separated content types.
    #[serde(default)]
    pub content: Option<String>,
}

impl StorageEntry {
    /// The node list, `None` for "all nodes".
    pub fn node_list(&self) -> Option<Vec<String>> {
        self.nodes.as_ref().map(|n| {
            n.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

/// `POST /storage`: the parameters as (name, value) pairs, built by the constructors.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageCreate {
    /// Parameters.
    pub params: Vec<(String, String)>,
}

impl fmt::Debug for StorageCreate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("StorageCreate")
            .field("params", &shown)
            .finish()
    }
}

impl StorageCreate {
    /// A ZFS pool for VM disks and container volumes on `nodes`.
    pub fn zfspool(id: &str, pool: &str, nodes: &[String]) -> StorageCreate {
        StorageCreate {
            params: vec![
                ("storage".into(), id.into()),
                ("type".into(), "zfspool".into()),
                ("pool".into(), pool.into()),
                ("content".into(), "images,rootdir".into()),
                ("sparse".into(), "1".into()),
                ("nodes".into(), nodes.join(",")),
            ],
        }
    }
    /// A Proxmox Backup Server datastore.
    pub fn pbs(p: &PbsStorage) -> StorageCreate {
        StorageCreate {
            params: vec![
                ("storage".into(), p.id.clone()),
                ("type".into(), "pbs".into()),
                ("server".into(), p.server.clone()),
                ("port".into(), p.port.to_string()),
                ("datastore".into(), p.datastore.clone()),
                ("username".into(), p.username.clone()),
                ("password".into(), p.password.clone()),
                ("fingerprint".into(), p.fingerprint.clone()),
                ("content".into(), "backup".into()),
            ],
        }
    }
}

/// What registering a PBS datastore in the cluster needs.
#[derive(Clone, PartialEq, Eq)]
pub struct PbsStorage {
    /// Storage id in Proxmox VE.
    pub id: String,
    /// PBS address.
    pub server: String,
    /// PBS port (8007).
    pub port: u16,
    /// Datastore name.
    pub datastore: String,
    /// `user@realm!token`.
    pub username: String,
    /// The token's secret.
    pub password: String,
    /// PBS's certificate fingerprint.
    pub fingerprint: String,
}

impl fmt::Debug for PbsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PbsStorage")
            .field("id", &self.id)
            .field("server", &self.server)
            .field("datastore", &self.datastore)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// A replication job (`GET /cluster/replication` entry, `POST /cluster/replication`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ReplicationJob {
    /// `<vmid>-<n>`.
    pub id: String,
    /// Target node.
    pub target: String,
    /// Calendar event, e.g. `*/15`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Source node (where the guest ran when the job was listed).
    #[serde(default)]
    pub source: Option<String>,
    /// Rate limit in MB/s.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Description.
    #[serde(default)]
    pub comment: Option<String>,
    /// Set when the job is marked for removal (`local`, `full`): Proxmox's replication runner
    /// removes it once it reaches the nodes involved. Never sent on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_job: Option<String>,
}

/// A backup job (`/cluster/backup`), the fields we set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BackupJob {
    /// Job id.
    #[serde(default)]
    pub id: Option<String>,
    /// Target storage.
    #[serde(default)]
    pub storage: Option<String>,
    /// Calendar event.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// The Proxmox VE API, as far as the agent uses it. One implementation talks HTTPS
/// ([`super::PveClient`]); unit tests use the mockall mock.
#[cfg_attr(test, mockall::automock)]
pub trait PveApi {
    /// The API base URL (for messages).
    fn url(&self) -> String;
    /// `GET /version`: the release (`9.1`); a cheap check that the credentials work.
    fn version(&self) -> Result<String, PveError>;
    /// `POST /nodes/{node}/certificates/custom` with `force` and `restart`: pveproxy serves
    /// this certificate from then on. Returns its fingerprint as Proxmox computed it.
    fn set_custom_certificate(
        &self,
        node: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<String, PveError>;
    /// `GET /cluster/status`
    fn cluster_status(&self) -> Result<Vec<ClusterStatusEntry>, PveError>;
    /// `POST /cluster/config`
    fn create_cluster(&self, req: &CreateCluster) -> Result<Upid, PveError>;
    /// `GET /cluster/config/join`
    fn join_info(&self) -> Result<JoinInfo, PveError>;
    /// `POST /cluster/config/join`
    fn join_cluster(&self, req: &JoinCluster) -> Result<Upid, PveError>;
    /// `DELETE /cluster/config/nodes/{node}`
    fn delete_node(&self, node: &str) -> Result<(), PveError>;
    /// `GET /nodes/{node}/tasks/{upid}/status`
    fn task_status(&self, node: &str, upid: &Upid) -> Result<TaskStatus, PveError>;
    /// `GET /nodes/{node}/tasks/{upid}/log`, the lines' text.
    fn task_log(&self, node: &str, upid: &Upid) -> Result<Vec<String>, PveError>;
    /// `GET /storage`
    fn storage_list(&self) -> Result<Vec<StorageEntry>, PveError>;
    /// `POST /storage`
    fn storage_create(&self, req: &StorageCreate) -> Result<(), PveError>;
    /// `PUT /storage/{storage}` with `nodes`.
    fn storage_set_nodes(&self, id: &str, nodes: &[String]) -> Result<(), PveError>;
    /// `GET /cluster/replication`
    fn replication_list(&self) -> Result<Vec<ReplicationJob>, PveError>;
    /// `POST /cluster/replication`
    fn replication_create(&self, job: &ReplicationJob) -> Result<(), PveError>;
    /// `GET /cluster/backup`
    fn backup_jobs(&self) -> Result<Vec<BackupJob>, PveError>;
    /// `POST /cluster/backup`: a nightly snapshot-mode, zstd backup of every guest.
    fn backup_job_create(&self, id: &str, storage: &str, schedule: &str) -> Result<(), PveError>;
}
