//! [`NodeHandle`]: one simulated node's endpoint, identity and power state.

use std::sync::Arc;

use crate::api::Shared;
use crate::site::{Cfs, Node};
use crate::{DownMode, Endpoint, NodeCert};

/// One simulated node of a running [`SimSite`](crate::SimSite).
#[derive(Debug, Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    name: String,
}

impl NodeHandle {
    pub(crate) fn new(shared: Arc<Shared>, name: &str) -> Self {
        Self {
            shared,
            name: name.to_string(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Node) -> T) -> Option<T> {
        self.shared.lock().nodes.get(&self.name).map(f)
    }

    fn with_mut<T>(&self, f: impl FnOnce(&mut Node) -> T) -> Option<T> {
        let r = self.shared.lock().nodes.get_mut(&self.name).map(f);
        self.shared.changed.send_modify(|g| *g += 1);
        r
    }

    /// Node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Loopback port.
    pub fn port(&self) -> u16 {
        self.with(|n| n.port).unwrap_or(0)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port())
    }

    /// `https://127.0.0.1:PORT/api2/json`.
    pub fn api_url(&self) -> String {
        format!("{}/api2/json", self.url())
    }

    /// Management address (simulated).
    pub fn address(&self) -> String {
        self.with(|n| n.address.clone()).unwrap_or_default()
    }

    /// SHA-256 certificate fingerprint, PVE style (`AB:CD:...`).
    pub fn fingerprint(&self) -> String {
        self.with(|n| n.cert.fingerprint()).unwrap_or_default()
    }

    /// The node's certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.with(|n| n.cert.cert_pem()).unwrap_or_default()
    }

    /// What `/etc/pve/nodes/NAME/pveproxy-ssl.pem` holds (PEM): the custom certificate,
    /// served or uploaded and waiting for pveproxy's restart; `None` without one.
    pub fn custom_cert_pem(&self) -> Option<String> {
        self.with(|n| match (&n.staged_cert, n.custom_cert) {
            (Some(c), _) => Some(c.cert_pem()),
            (None, true) => Some(n.cert.cert_pem()),
            (None, false) => None,
        })
        .flatten()
    }

    /// Current root@pam password.
    pub fn root_password(&self) -> String {
        self.with(|n| n.root_password.clone()).unwrap_or_default()
    }

    /// Set the root@pam password (as `passwd` on the node would).
    pub fn set_root_password(&self, password: &str) {
        self.with_mut(|n| n.root_password = password.to_string());
    }

    /// This node's endpoint description.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: self.name.clone(),
            address: self.address(),
            url: self.url(),
            fingerprint: self.fingerprint(),
            root_password: self.root_password(),
        }
    }

    /// Take the node down: it stops answering (see [`DownMode`]) and counts against quorum.
    /// Returns once a `Refuse` node's socket is closed.
    pub async fn set_down(&self, mode: DownMode) {
        self.with_mut(|n| n.down = Some(mode));
        if mode == DownMode::Refuse {
            self.wait_listening(false).await;
            // Open connections are dropped too; wait for that, so the next request surely fails.
            for _ in 0..1000 {
                if self.with(|n| n.connections).unwrap_or(0) == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }

    /// Bring the node back up on the same port, with its state as it was. Returns once it
    /// accepts connections again.
    pub async fn set_up(&self) {
        self.with_mut(|n| n.down = None);
        self.wait_listening(true).await;
    }

    fn replace_installation(
        &self,
        root_password: &str,
        cert: NodeCert,
        custom: bool,
    ) -> anyhow::Result<()> {
        let mut st = self.shared.lock();
        st.cfs.push(Cfs::fresh());
        let idx = st.cfs.len() - 1;
        let n = st
            .nodes
            .get_mut(&self.name)
            .ok_or_else(|| anyhow::anyhow!("no node {}", self.name))?;
        n.cfs = idx;
        n.custom_cert = custom;
        n.staged_cert = None;
        n.cert = cert;
        n.root_password = root_password.to_string();
        n.tasks.clear();
        n.down = None;
        n.generation += 1;
        Ok(())
    }

    async fn wait_listening(&self, want: bool) {
        for _ in 0..1000 {
            if self.with(|n| n.listening).unwrap_or(want) == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Whether the node is down.
    pub fn is_down(&self) -> bool {
        self.with(|n| n.down.is_some()).unwrap_or(true)
    }

    /// Make the next `count` joins started on this node fail half-way: the peer has added it
    /// to corosync.conf (so the nodelist lists it and expects its vote), but this node never
    /// syncs pmxcfs, and the task ends in an error.
    pub fn fail_next_joins_halfway(&self, count: u32) {
        self.with_mut(|n| n.fail_join_halfway = count);
    }

    /// Simulate a reinstall: fresh pmxcfs (no cluster, default storage), a new certificate
    /// (new fingerprint) unless `certificate` is given, the given root password, no tasks.
    /// The node stays on its port and comes up.
    pub async fn reinstall(
        &self,
        root_password: &str,
        certificate: Option<NodeCert>,
    ) -> anyhow::Result<()> {
        let custom = certificate.is_some();
        let cert = match certificate {
            Some(c) => c,
            None => NodeCert::generate(&self.name)?,
        };
        self.replace_installation(root_password, cert, custom)?;
        self.shared.changed.send_modify(|g| *g += 1);
        self.wait_listening(true).await;
        Ok(())
    }
}
