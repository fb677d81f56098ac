//! Cluster steps: create (primary), wait for the primary and join (members, backup node),
//! replace a failed node, and the join window around the one-time join secret.

use super::{Env, Poll};
use crate::config::{local_fingerprint, without_join_secret, NodeConfig};
use crate::pve::{
    wait_task, ClusterView, CreateCluster, Fingerprint, JoinCluster, PveApi, PveError, Secret, Upid,
};
use crate::runner::{run_ok, Cmd};
use crate::state::{write_atomic, Memory};
use anyhow::{bail, Context as _};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tappaas_site::Role;

fn view(api: &dyn PveApi) -> Result<ClusterView, PveError> {
    Ok(ClusterView::from_entries(&api.cluster_status()?))
}

/// The cluster node a joining node goes through: it checks the cluster there, has it remove a
/// dead node of its own name, and joins via it. The primary for members and the backup node;
/// for a replaced primary, a surviving node ([`NodeConfig::survivor`]).
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// Its node name.
    pub name: String,
    /// Its management address.
    pub address: Ipv4Addr,
    /// Its pinned API certificate: the join secret goes to nothing else.
    pub fingerprint: Fingerprint,
    /// In words, for messages: "the primary", "the surviving node tappaas2".
    pub label: String,
    /// Which site field pins it, for the message when it serves another certificate.
    pub pinned_by: String,
}

impl Peer {
    /// Whom this node joins through.
    pub(crate) fn for_node(c: &NodeConfig) -> anyhow::Result<Peer> {
        if c.role() == Role::Primary {
            let n = c.survivor()?;
            let fp = n.api_fingerprint.as_deref().unwrap_or_default();
            return Ok(Peer {
                name: n.name.clone(),
                address: n.address,
                fingerprint: Fingerprint::parse(fp)?,
                label: format!("the surviving node {}", n.name),
                pinned_by: format!("api-fingerprint of node {}", n.name),
            });
        }
        Ok(Peer {
            name: c.primary()?.name.clone(),
            address: c.manifest.cluster.primary_address,
            fingerprint: c.primary_fingerprint()?,
            label: "the primary".into(),
            pinned_by:
                "cluster.primary-fingerprint, or the fingerprint of cluster.primary-certificate"
                    .into(),
        })
    }

    /// Its API as root@pam with the join secret, its certificate pinned.
    pub(crate) fn connect(&self, env: &Env<'_>) -> anyhow::Result<Box<dyn PveApi>> {
        env.connector
            .remote(self.address, self.fingerprint, &env.config.join_secret()?)
    }
}

/// Whether `e` is Proxmox refusing a write for lack of quorum (`cluster not ready - no
/// quorum?`): while another node joins, the cluster briefly expects a vote it does not have yet.
pub(super) fn is_no_quorum(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<PveError>(), Some(PveError::Api { message, .. }) if message.contains("no quorum"))
    })
}

/// Runs a cluster-wide write once the cluster is quorate, and again (bounded) when it was
/// refused for lack of quorum.
pub(super) fn with_quorum<T>(
    env: &Env<'_>,
    mut write: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        wait_quorate_locally(env)?;
        match write() {
            Err(e) if is_no_quorum(&e) && start.elapsed() < env.timing.quorum_wait => {
                tracing::info!("retrying after a quorum blip: {e:#}");
                std::thread::sleep(env.timing.poll);
            }
            other => return other,
        }
    }
}

/// On the primary of a cluster still forming: the first join failed half-way, so the cluster
/// lists the primary and a node whose vote never came, and has lost quorum; it can neither
/// accept the retried join nor remove the entry. Expect one vote, as an operator would with
/// `pvecm expected 1`; the retried join restores the count. Limited to that two-entry case:
/// with more members a lost quorum may be a partition, which only an operator can judge.
/// Never on a replaced primary: it joined a cluster that existed without it, so a lost quorum
/// there means the survivors are unreachable, and expecting one vote would split the cluster.
fn repair_quorum(env: &Env<'_>, v: &ClusterView) -> anyhow::Result<()> {
    let me = env.config.name();
    if env.config.role() == Role::Primary
        && !env.config.rejoins()
        && v.cluster.is_some()
        && !v.quorate
        && v.nodes.len() == 2
        && v.node_online(me)
        && v.nodes.iter().filter(|(_, on)| *on).count() == 1
    {
        tracing::warn!("the cluster lost quorum to a half-joined node: expecting one vote");
        run_ok(env.runner, &Cmd::new("pvecm", ["expected", "1"]))?;
    }
    Ok(())
}

/// Waits until this node's own API shows it in a quorate cluster of the site's name,
/// reconnecting as needed (a create or join restarts the API and changes its certificate).
pub(super) fn wait_quorate_locally(env: &Env<'_>) -> anyhow::Result<()> {
    let want = &env.config.manifest.cluster.name;
    let me = env.config.name();
    env.wait_for(
        "this node to be in a quorate cluster",
        env.timing.quorum_wait,
        || {
            let api = match env.connector.local() {
                Ok(a) => a,
                Err(e) => return Ok(Poll::Pending(format!("{e:#}"))),
            };
            match view(api.as_ref()) {
                Ok(v) if v.cluster.as_ref() == Some(want) && v.quorate && v.has_node(me) => {
                    Ok(Poll::Ready(()))
                }
                Ok(v) => {
                    repair_quorum(env, &v)?;
                    Ok(Poll::Pending(format!(
                        "cluster {:?}, quorate {}, nodes {:?}",
                        v.cluster, v.quorate, v.nodes
                    )))
                }
                Err(e) if e.is_transient() || matches!(e, PveError::Api { status: 401, .. }) => {
                    Ok(Poll::Pending(e.to_string()))
                }
                Err(e) => Err(e.into()),
            }
        },
    )
}

/// The pre-generated API certificate of the primary, when the installer left one.
pub const API_CERT: &str = "/etc/tappaas/tls/api.pem";
/// Its key (0600); removed once Proxmox has its own copy.
pub const API_KEY: &str = "/etc/tappaas/tls/api.key";

pub(super) fn api_certificate(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    serve_pinned_certificate(env, Phase::Standalone)
}

/// A replaced primary, once it has joined: the join replaced its `/etc/pve` with the
/// cluster's, so the certificate it installed before may be gone (or the dead primary's copy
/// kept there may be served). It serves the pinned one again if it can, and only then gives up
/// its copy of the key.
pub(super) fn api_certificate_after_join(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    serve_pinned_certificate(env, Phase::Joined)
}

/// When [`serve_pinned_certificate`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before any cluster: every primary's `api-certificate`.
    Standalone,
    /// A replaced primary after its join.
    Joined,
}

fn serve_pinned_certificate(env: &Env<'_>, phase: Phase) -> anyhow::Result<()> {
    let Some(pinned) = env.config.site.cluster.pinned_fingerprint() else {
        // Nothing pinned yet: the operator reads this node's fingerprint after this boot.
        return Ok(());
    };
    let pinned = crate::pve::Fingerprint::parse(&pinned)?;
    let (cert, key) = (env.paths.at(API_CERT), env.paths.at(API_KEY));
    // A replaced primary keeps the key until it has joined: the join may drop what was
    // installed before it, and the key is needed to install it again.
    let keep_key = phase == Phase::Standalone && env.config.rejoins();
    let forget_key = || -> anyhow::Result<()> {
        if !keep_key && key.exists() {
            // Proxmox keeps its own copy (pveproxy-ssl.key): no second copy stays behind.
            std::fs::remove_file(&key).with_context(|| format!("removing {}", key.display()))?;
        }
        Ok(())
    };
    let served = local_fingerprint(env.paths)?;
    if served == pinned {
        return forget_key();
    }
    if !cert.exists() || !key.exists() {
        if env.config.manifest.node.replace {
            // The pinned certificate was the dead machine's own, and its key died with it:
            // nothing here can serve it. Failing would not help; nodes installed or replaced
            // later must pin this node's fingerprint as it is once joined.
            if phase == Phase::Joined {
                tracing::warn!(
                    "the site pins {pinned} for the primary, the certificate of the machine this one replaced, but this node serves {served} and has no {API_CERT} to serve the pinned one: put {served} into [cluster] primary-fingerprint of the site file before another node is installed or replaced"
                );
            }
            return Ok(());
        }
        bail!(
            "this node's API certificate is {served}, but the site file pins {pinned} for the primary, so the other nodes will refuse to join: put {served} into [cluster] primary-fingerprint (`tappaas-bootstrap fingerprint` prints it), or provide the pinned certificate as {API_CERT} and {API_KEY}"
        );
    }
    let pem =
        std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem =
        std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
    let given = crate::pve::Fingerprint::of_pem(pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", cert.display()))?;
    if given != pinned {
        bail!("{API_CERT} has fingerprint {given}, but the site file pins {pinned}");
    }
    let api = env.connector.local()?;
    match api.set_custom_certificate(env.config.name(), &pem, &key_pem) {
        Ok(_) => {}
        Err(e @ PveError::Api { status: 400, .. }) if matches!(&e, PveError::Api { errors, .. } if errors.contains_key("key")) =>
        {
            // Nothing was installed: the node still serves its own certificate.
            return Err(anyhow::Error::new(e).context(format!(
                "Proxmox refused {API_KEY}: it is not the key of {API_CERT} (the site's primary-key must belong to its primary-certificate; make a matching pair with `tappaas-installer join-keys`, put it into {API_CERT} and {API_KEY}, and the next attempt installs it)"
            )));
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context("installing the site's API certificate for pveproxy")
            )
        }
    }
    env.wait_for(
        "pveproxy to serve the site's certificate",
        Duration::from_secs(120),
        || {
            let now = local_fingerprint(env.paths)?;
            if now != pinned {
                return Ok(Poll::Pending(format!("it still serves {now}")));
            }
            Ok(match env.connector.local().and_then(|a| Ok(a.version()?)) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(format!("{e:#}")),
            })
        },
    )?;
    forget_key()
}

pub(super) fn create_cluster(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let c = env.config;
    let api = env.connector.local()?;
    let v = view(api.as_ref()).context("asking this node whether it is in a cluster")?;
    match &v.cluster {
        Some(name) if *name == c.manifest.cluster.name => {}
        Some(other) => bail!(
            "this node is already in cluster {other}, but the site says {}: refusing to touch it (`pvecm status` shows it)",
            c.manifest.cluster.name
        ),
        None => {
            let upid = api.create_cluster(&CreateCluster {
                clustername: c.manifest.cluster.name.clone(),
                nodeid: Some(u32::from(c.manifest.node.id)),
                link0: format!("address={}", c.manifest.cluster.link0),
            })?;
            wait_task(api.as_ref(), &upid, env.timing.task)
                .with_context(|| format!("creating cluster {}", c.manifest.cluster.name))?;
        }
    }
    wait_quorate_locally(env)
}

/// Whether root@pam on this node accepts `secret` (the node's join window is open).
fn secret_works(env: &Env<'_>, secret: &Secret) -> anyhow::Result<bool> {
    let api = env.connector.local_root(secret)?;
    match api.version() {
        Ok(_) => Ok(true),
        Err(PveError::Login { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn open_join_window(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let secret = env.config.join_secret()?;
    if secret_works(env, &secret)? {
        return Ok(());
    }
    set_root_password(env.runner, &secret)?;
    env.wait_for("the join secret to work", Duration::from_secs(60), || {
        Ok(if secret_works(env, &secret)? {
            Poll::Ready(())
        } else {
            Poll::Pending("root@pam still refuses the join secret".into())
        })
    })
}

/// Opens the join window: the one-time secret becomes root's password (`chpasswd`, the secret
/// on stdin only). Also `tappaas-bootstrap join-window open` for a replacement.
pub fn set_root_password(
    runner: &dyn crate::runner::Runner,
    secret: &Secret,
) -> anyhow::Result<()> {
    run_ok(
        runner,
        &Cmd::new("chpasswd", Vec::<String>::new())
            .secret_stdin(Secret::new(format!("root:{}\n", secret.expose()))),
    )
    .context("making the join secret root's password")?;
    Ok(())
}

/// Closes the join window: root's password becomes the site's hash again (`chpasswd -e`).
pub fn restore_root_password(runner: &dyn crate::runner::Runner, hash: &str) -> anyhow::Result<()> {
    run_ok(
        runner,
        &Cmd::new("chpasswd", ["-e"]).secret_stdin(Secret::new(format!("root:{hash}\n"))),
    )
    .context("restoring root's password from the site's hash")?;
    Ok(())
}

/// What `tappaas-bootstrap join-window open` tells the operator besides opening the window:
/// this node's fingerprint as the `api-fingerprint` line for its `[[node]]` in the site file,
/// which a replaced primary needs to join through this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowAdvice {
    /// `api-fingerprint = "AB:..."`, for stdout.
    pub line: String,
    /// For the operator: where the line goes, or that the site has it already (or another).
    pub note: String,
}

/// The advice for the node named `me` (from its manifest, when it has one) serving `served`,
/// given the site file the replacement is installed from.
pub fn window_advice(
    served: Fingerprint,
    me: Option<&str>,
    site: &tappaas_site::Site,
    site_name: &str,
) -> WindowAdvice {
    let line = format!("api-fingerprint = \"{served}\"");
    let entry = me.and_then(|m| site.nodes.iter().find(|n| n.name == m));
    let note = match entry {
        Some(n) => match n.api_fingerprint.as_deref().map(Fingerprint::parse) {
            Some(Ok(given)) if given == served => format!(
                "{site_name} already pins this node's certificate ({} has api-fingerprint {served}): a replaced primary can join through it",
                n.name
            ),
            Some(_) => format!(
                "{site_name} gives {} api-fingerprint {}, but this node serves {served}: replace that line in its [[node]] table with the one above, or a replaced primary will refuse this node",
                n.name,
                n.api_fingerprint.as_deref().unwrap_or_default()
            ),
            None => format!(
                "this node's API certificate has fingerprint {served}. If the primary is the node being replaced, add the line above to the [[node]] table of {} in {site_name} (before the node's [node.*] tables) and install the replacement from that file: it joins the cluster through this node and sends the join secret only to this certificate",
                n.name
            ),
        },
        None => format!(
            "this node's API certificate has fingerprint {served}. If the primary is the node being replaced, add the line above to this node's [[node]] table in {site_name}: the replacement joins the cluster through this node and sends the join secret only to this certificate"
        ),
    };
    WindowAdvice { line, note }
}

pub(super) fn wait_for_members(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let names: Vec<String> = env
        .config
        .site
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    env.wait_for("every node to join", env.timing.join_wait, || {
        let api = match env.connector.local() {
            Ok(a) => a,
            Err(e) => return Ok(Poll::Pending(format!("{e:#}"))),
        };
        match view(api.as_ref()) {
            Ok(v) => {
                repair_quorum(env, &v)?;
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| !v.node_online(n))
                    .map(String::as_str)
                    .collect();
                Ok(if missing.is_empty() && v.quorate {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!(
                        "not in the cluster or offline: {}",
                        missing.join(", ")
                    ))
                })
            }
            Err(e) if e.is_transient() => Ok(Poll::Pending(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })
}

pub(super) fn close_join_window(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let Ok(secret) = env.config.join_secret() else {
        // Forgotten already, so the window was closed before.
        return Ok(());
    };
    if !secret_works(env, &secret)? {
        return Ok(());
    }
    restore_root_password(env.runner, &env.config.site.credentials.root_password_hash)?;
    env.wait_for(
        "the join secret to stop working",
        Duration::from_secs(60),
        || {
            Ok(if secret_works(env, &secret)? {
                Poll::Pending("root@pam still accepts the join secret".into())
            } else {
                Poll::Ready(())
            })
        },
    )
}

/// Why the peer's API cannot be used yet, in words for the status line.
fn describe_unreachable(peer: &Peer, addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!(
            "{} answers but nothing listens on port {} yet (Proxmox is still starting)",
            addr.ip(),
            addr.port()
        ),
        _ => format!(
            "{} does not answer ({e}): is {} on, and on the same switch and network?",
            addr.ip(),
            peer.label
        ),
    }
}

/// `wait-for-primary` (members, backup node) and `wait-for-survivor` (a replaced primary).
pub(super) fn wait_for_peer(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let c = env.config;
    let peer = Peer::for_node(c)?;
    let secret = c.join_secret()?;
    let addr = peer.address;
    let name = c.manifest.cluster.name.clone();
    let label = peer.label.clone();
    let what = format!("{label} at {addr}");
    // Since when the peer presents a certificate that is not the pinned one.
    let mut mismatch_since: Option<Instant> = None;
    env.wait_for(&what, env.timing.join_wait, || {
        let sock = env.connector.api_socket(addr);
        if let Err(e) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
            return Ok(Poll::Pending(describe_unreachable(&peer, sock, &e)));
        }
        let api = env.connector.remote(addr, peer.fingerprint, &secret)?;
        match view(api.as_ref()) {
            Ok(v) if v.cluster.as_ref() == Some(&name) && v.quorate => Ok(Poll::Ready(())),
            Ok(v) if v.cluster.is_none() && c.role() == Role::Primary => bail!(
                "{label} is in no cluster: it cannot be a survivor of the site's cluster (is its api-fingerprint on the right node?)"
            ),
            Ok(v) if v.cluster.is_none() => Ok(Poll::Pending("the primary has not created the cluster yet".into())),
            Ok(v) if v.cluster.as_ref() != Some(&name) => bail!(
                "{label} is in cluster {:?}, the site says {name}",
                v.cluster
            ),
            Ok(v) if c.role() == Role::Primary => {
                // The survivors need more than half of the votes to remove the dead primary;
                // a two-node site has only half once the primary is dead.
                let online = v.nodes.iter().filter(|(_, on)| *on).count();
                Ok(Poll::Pending(format!(
                    "the cluster of {label} is not quorate ({online} of {} nodes online): if the nodes that are offline are off for good, `pvecm expected {online}` on {} lets the survivors go on",
                    v.nodes.len(),
                    peer.name
                )))
            }
            Ok(_) => Ok(Poll::Pending(format!("the cluster of {label} is not quorate"))),
            Err(PveError::Login { .. }) => Ok(Poll::Pending(format!(
                "{label} refuses the join secret: its join window is not open yet, or its site file has another secret"
            ))),
            // The primary serves its own certificate until its `api-certificate` step has
            // installed the site's: a while, that is expected. A survivor's does not change.
            Err(e @ PveError::FingerprintMismatch { .. })
                if c.role() != Role::Primary
                    && mismatch_since
                        .get_or_insert_with(Instant::now)
                        .elapsed()
                        < env.timing.pin_grace =>
            {
                Ok(Poll::Pending(format!(
                    "{label} does not present the pinned certificate yet (nothing is sent to it): {e}; it installs the site's certificate early in its first boot"
                )))
            }
            Err(e @ PveError::FingerprintMismatch { .. }) => Err(anyhow::Error::new(e).context(format!(
                "the certificate of {label} is not the one the site file pins ({})",
                peer.pinned_by
            ))),
            Err(e) if e.is_transient() => Ok(Poll::Pending(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })
}

pub(super) fn remove_old_node(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let c = env.config;
    let me = c.name();
    let local = env.connector.local()?;
    if view(local.as_ref())?.cluster.is_some() {
        // Joined already (an earlier run got past this): nothing to remove.
        return Ok(());
    }
    let peer = Peer::for_node(c)?;
    let api = peer.connect(env)?;
    let v = view(api.as_ref())
        .with_context(|| format!("asking {} for the cluster's nodes", peer.label))?;
    if !v.has_node(me) {
        return Ok(());
    }
    if v.node_online(me) {
        bail!(
            "the cluster still sees {me} online: refusing to remove a live node (power the old machine off, or install this one under a new name without `replace`)"
        );
    }
    // Proxmox removes a node only with quorum: the survivors must hold a majority of the
    // votes (2 of 3 with one node dead), which the wait for the peer saw.
    api.delete_node(me)
        .with_context(|| format!("{} removing the failed {me} from the cluster", peer.label))?;
    Ok(())
}

fn poll_join_task(env: &Env<'_>, first: Box<dyn PveApi>, upid: &Upid) -> anyhow::Result<()> {
    // The join restarts this node's API with the cluster's configuration: our token and
    // certificate change under us. Reconnect and keep polling within the same time limit.
    let start = Instant::now();
    let mut api = first;
    loop {
        let mut wait = env.timing.task;
        wait.timeout = wait.timeout.saturating_sub(start.elapsed());
        match wait_task(api.as_ref(), upid, wait) {
            Ok(()) => return Ok(()),
            Err(e @ (PveError::Api { status: 401, .. } | PveError::FingerprintMismatch { .. }))
                if start.elapsed() < env.timing.task.timeout =>
            {
                tracing::info!("reconnecting to this node after the join: {e}");
                std::thread::sleep(env.timing.poll);
                if let Ok(a) = env.connector.local() {
                    api = a;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Joins are made one at a time: two nodes joining a small cluster at once can cost it its
/// quorum (the second joiner's vote is expected before it can be given). A node waits, at
/// most [`Timing::turn_wait`](super::Timing), until the cluster is quorate, every listed
/// node is online (no join in flight) and every site node with a lower id is a member.
///
/// The primary is never among the earlier nodes: members wait for it in `wait-for-primary`,
/// and a replaced primary joins a cluster that exists without it (with id 1 it has no earlier
/// nodes at all; with a higher id the earlier ones are survivors, members already).
fn wait_for_turn(env: &Env<'_>, peer: &dyn PveApi) -> anyhow::Result<ClusterView> {
    let c = env.config;
    let me = c.name();
    let earlier = earlier_nodes(c);
    let turn = env.wait_for("this node's turn to join", env.timing.turn_wait, || {
        let v = match view(peer) {
            Ok(v) => v,
            Err(e) if e.is_transient() => return Ok(Poll::Pending(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        let busy: Vec<&str> = v
            .nodes
            .iter()
            .filter(|(n, on)| !on && n != me)
            .map(|(n, _)| n.as_str())
            .collect();
        let before: Vec<&str> = earlier
            .iter()
            .filter(|n| !v.node_online(n))
            .map(String::as_str)
            .collect();
        Ok(if !v.quorate {
            Poll::Pending("the cluster is not quorate".into())
        } else if !busy.is_empty() {
            Poll::Pending(format!(
                "{} listed but not online (joining?)",
                busy.join(", ")
            ))
        } else if !before.is_empty() {
            Poll::Pending(format!("{} should join first", before.join(", ")))
        } else {
            Poll::Ready(v)
        })
    });
    match turn {
        Ok(v) => Ok(v),
        Err(e) => {
            tracing::warn!("joining without waiting any longer: {e:#}");
            Ok(view(peer)?)
        }
    }
}

/// The site nodes that join before this one: lower ids, never the primary.
pub(super) fn earlier_nodes(c: &NodeConfig) -> Vec<String> {
    c.site
        .nodes
        .iter()
        .filter(|n| n.id < c.manifest.node.id && n.role != Role::Primary && n.name != c.name())
        .map(|n| n.name.clone())
        .collect()
}

pub(super) fn join_cluster(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let c = env.config;
    let want = &c.manifest.cluster.name;
    let local = env.connector.local()?;
    let v = view(local.as_ref()).context("asking this node whether it is in a cluster")?;
    match &v.cluster {
        Some(name) if name == want => return wait_quorate_locally(env),
        Some(other) => bail!(
            "this node is already in cluster {other}, but the site says {want}: refusing to join twice"
        ),
        None => {}
    }
    let peer = Peer::for_node(c)?;
    let secret = c.join_secret()?;
    let through = peer.connect(env)?;
    let pv = wait_for_turn(env, through.as_ref())?;
    // The cluster lists this name while this node is standalone: a replaced node whose entry
    // survived, or a join that failed half-way. Joining with force takes the entry over.
    let stale = pv.has_node(c.name());
    let upid = local.join_cluster(&JoinCluster {
        hostname: env.connector.join_hostname(peer.address),
        fingerprint: peer.fingerprint.to_string(),
        password: secret.expose().to_string(),
        nodeid: Some(u32::from(c.manifest.node.id)),
        link0: format!("address={}", c.manifest.cluster.link0),
        force: c.manifest.node.replace || stale,
    })?;
    if let Err(e) = poll_join_task(env, local, &upid) {
        // Never leave a half-joined node silently: say what the node and the cluster believe.
        let here = env
            .connector
            .local()
            .ok()
            .and_then(|a| view(a.as_ref()).ok())
            .and_then(|v| v.cluster);
        let there = view(through.as_ref())
            .map(|v| v.has_node(c.name()))
            .unwrap_or(false);
        return Err(match (here, there) {
            (Some(cl), _) => e.context(format!(
                "joining failed, and this node now believes it is in cluster {cl}: it is half-joined; check `pvecm status` here and on {} before retrying",
                peer.name
            )),
            (None, true) => e.context(
                "joining failed half-way: the cluster lists this node but this node is not in it; the next attempt joins again with force",
            ),
            (None, false) => e.context(
                "joining failed; neither this node nor the cluster changed, so the next attempt starts cleanly",
            ),
        });
    }
    wait_quorate_locally(env)
}

pub(super) fn refresh_ssh_keys(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let c = env.config;
    let known = "/etc/pve/priv/known_hosts";
    for host in [
        c.name().to_string(),
        c.address()?.to_string(),
        c.manifest.node.fqdn.clone(),
    ] {
        // ssh-keygen -R fails when the file lacks the host: that is the state we want.
        let out = env
            .runner
            .run(&Cmd::new("ssh-keygen", ["-R", host.as_str(), "-f", known]))?;
        if out.code != 0 {
            tracing::info!("no stale key for {host} in {known}");
        }
    }
    // Adds this node's new host key and certificate to the cluster's files.
    run_ok(env.runner, &Cmd::new("pvecm", ["updatecerts"]))?;
    Ok(())
}

pub(super) fn forget_join_secret(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let path = env.paths.site();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let scrubbed = without_join_secret(&text);
    if scrubbed != text {
        write_atomic(&path, scrubbed.as_bytes(), 0o600)?;
    }
    Ok(())
}
