//! `/cluster/status` and `/cluster/config`: create, join, remove nodes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{fail, spawn_task, Handled, Params, Shared, Step};
use crate::site::{ClusterConf, CorosyncNode, DownMode, SiteState};
use crate::tls::NodeCert;

pub(super) fn cluster_status(st: &SiteState, node: &str) -> Value {
    let mut out = Vec::new();
    let conf = st.cfs_of(node).and_then(|c| c.cluster.clone());
    match conf {
        Some(conf) => {
            out.push(json!({
                "type": "cluster", "id": "cluster", "name": conf.name, "version": conf.config_version,
                "nodes": conf.nodes.len(), "quorate": u8::from(st.quorate(node)),
            }));
            for (name, e) in &conf.nodes {
                out.push(json!({
                    "type": "node", "id": format!("node/{name}"), "name": name, "nodeid": e.nodeid,
                    "ip": e.ring0_addr, "online": u8::from(st.reachable_member(node, name)),
                    "local": u8::from(name == node), "level": "",
                }));
            }
        }
        None => {
            let ip = st
                .nodes
                .get(node)
                .map(|n| n.address.clone())
                .unwrap_or_default();
            out.push(json!({
                "type": "node", "id": format!("node/{node}"), "name": node, "nodeid": 0,
                "ip": ip, "online": 1, "local": 1, "level": "",
            }));
        }
    }
    Value::Array(out)
}

pub(super) fn cluster_nodes(shared: &Arc<Shared>, node: &str) -> Handled {
    let st = shared.lock();
    let Some(conf) = st.cfs_of(node).and_then(|c| c.cluster.as_ref()) else {
        return fail("Cluster not configured (no corosync.conf)");
    };
    Ok(Value::Array(
        conf.nodes
            .iter()
            .map(|(name, e)| {
                json!({"node": name, "name": name, "nodeid": e.nodeid.to_string(),
                       "quorum_votes": e.votes.to_string(), "ring0_addr": e.ring0_addr})
            })
            .collect(),
    ))
}

pub(super) fn join_info(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let mut info = st.join_info(node).ok_or((
        500,
        "node is not in a cluster, no join info available!".to_string(),
    ))?;
    if let Some(n) = p.get("node") {
        let known = info["nodelist"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["name"] == n));
        if !known {
            return fail(format!("unknown node '{n}'"));
        }
        info["preferred_node"] = json!(n);
    }
    Ok(info)
}

/// The address part of a `link0` property string (`[address=]<IP>[,priority=N]`).
pub(super) fn link_address(v: &str) -> String {
    v.split(',')
        .find_map(|part| match part.split_once('=') {
            Some(("address", a)) => Some(a.to_string()),
            Some(_) => None,
            None => Some(part.to_string()),
        })
        .unwrap_or_default()
}

pub(super) fn create_cluster(shared: &Arc<Shared>, node: &str, p: &Params, user: &str) -> Handled {
    let name = p.str("clustername").to_string();
    let nodeid = p.u32("nodeid").unwrap_or(1);
    let votes = p.u32("votes").unwrap_or(1);
    let link0 = p.get("link0").map(link_address);
    let me = node.to_string();
    let step: Step = Box::new(move |st, log| {
        let addr = st
            .nodes
            .get(&me)
            .map(|n| n.address.clone())
            .unwrap_or_default();
        let cfs = st.cfs_of_mut(&me).ok_or("no such node")?;
        if cfs.cluster.is_some() {
            return Err("cluster config '/etc/pve/corosync.conf' already exists".into());
        }
        log.push("Writing corosync key to /etc/corosync/authkey".into());
        log.push("Writing corosync config to /etc/pve/corosync.conf".into());
        log.push("Restart corosync and cluster filesystem".into());
        cfs.cluster = Some(ClusterConf {
            name: name.clone(),
            config_version: 1,
            nodes: BTreeMap::from([(
                me.clone(),
                CorosyncNode {
                    nodeid,
                    votes,
                    ring0_addr: link0.clone().unwrap_or(addr),
                },
            )]),
        });
        Ok(false)
    });
    spawn_task(
        shared,
        node,
        "clustercreate",
        p.str("clustername"),
        user,
        vec![(1.0, step)],
    )
}

/// What a join asks for, read from its parameters before the worker starts.
#[derive(Clone)]
struct JoinRequest {
    /// This node, the one joining.
    me: String,
    host: String,
    fingerprint: String,
    password: String,
    force: bool,
    want_nodeid: Option<u32>,
    votes: u32,
    link0: Option<String>,
}

pub(super) fn join_cluster(shared: &Arc<Shared>, node: &str, p: &Params, user: &str) -> Handled {
    let req = JoinRequest {
        me: node.to_string(),
        host: p.str("hostname").to_string(),
        fingerprint: p.str("fingerprint").to_ascii_uppercase(),
        password: p.str("password").to_string(),
        force: p.bool("force"),
        want_nodeid: p.u32("nodeid"),
        votes: p.u32("votes").unwrap_or(1),
        link0: p.get("link0").map(link_address),
    };
    {
        // Checked before the worker starts, as PVE's assert_joinable does.
        let st = shared.lock();
        if !req.force && st.cfs_of(node).is_some_and(|c| c.cluster.is_some()) {
            return fail(
                "detected the following error(s):\n* this host already is part of a cluster (corosync config '/etc/pve/corosync.conf' exists)\nCheck if node may join a cluster failed!",
            );
        }
    }
    let me = req.me.clone();
    let peer_slot: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let peer_out = Arc::clone(&peer_slot);
    // Step 1 (half-way): connect to the peer, log in, and have it add us to its nodelist.
    let add: Step = Box::new(move |st, log| {
        let peer = reach_peer(st, log, &req)?;
        add_to_nodelist(st, log, &req, &peer)?;
        log.push("Join request OK, finishing setup locally".into());
        let halfway = st.nodes.get_mut(&req.me).is_some_and(|n| {
            let fail = n.fail_join_halfway > 0;
            n.fail_join_halfway = n.fail_join_halfway.saturating_sub(1);
            fail
        });
        if halfway {
            log.push("stopping pve-cluster service".into());
            log.push("waiting for quorum...".into());
            return Err("pve-cluster did not sync with the cluster: timeout waiting for quorum (injected fault: join failed half-way)".into());
        }
        // Remember which cluster to sync with in step 2.
        *peer_out.lock().unwrap_or_else(|e| e.into_inner()) = Some(peer);
        Ok(true)
    });
    // Step 2: restart pmxcfs with the cluster's database (our local /etc/pve is replaced).
    let sync: Step = Box::new(move |st, log| {
        let peer = peer_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or("lost track of the peer")?;
        sync_with_cluster(st, log, &me, &peer)?;
        Ok(false)
    });
    let r = spawn_task(
        shared,
        node,
        "clusterjoin",
        "",
        user,
        vec![(0.5, add), (1.0, sync)],
    )?;
    Ok(r)
}

/// The join's API connection to the peer: resolved, up, serving the pinned certificate,
/// accepting root's password, quorate. Returns the peer's node name.
fn reach_peer(st: &SiteState, log: &mut Vec<String>, req: &JoinRequest) -> Result<String, String> {
    let (host, fingerprint) = (&req.host, &req.fingerprint);
    log.push(format!("Establishing API connection with host '{host}'"));
    let Some(peer) = st.resolve(host) else {
        return Err(format!(
            "500 Can't connect to {host}:8006 (Name or service not known)"
        ));
    };
    let peer_node = st.nodes.get(&peer).ok_or("peer vanished")?;
    match peer_node.down {
        Some(DownMode::Refuse) => {
            return Err(format!(
                "500 Can't connect to {host}:8006 (Connection refused)"
            ));
        }
        Some(DownMode::Hang) => {
            return Err(format!(
                "500 Can't connect to {host}:8006 (Connection timed out)"
            ));
        }
        None => {}
    }
    let actual = peer_node.cert.fingerprint();
    if actual != *fingerprint {
        return Err(format!(
            "500 Can't connect to {host}:8006 (certificate verify failed: fingerprint {actual} of '{peer}' does not match the expected {fingerprint})"
        ));
    }
    log.push(format!("The authenticity of host '{host}' can't be established, using the given fingerprint {fingerprint}"));
    if peer_node.root_password != req.password {
        return Err("401 authentication failure".into());
    }
    log.push("Login succeeded.".into());
    log.push("check cluster join API version".into());
    log.push("Request addition of this node".into());
    if !st.quorate(&peer) {
        return Err(format!("500 {}", crate::site::NO_QUORUM));
    }
    Ok(peer)
}

/// The peer adds the joining node to its corosync nodelist: an existing entry of the same
/// name only with force (and the same id and votes), never a used address or id.
fn add_to_nodelist(
    st: &mut SiteState,
    log: &mut Vec<String>,
    req: &JoinRequest,
    peer: &str,
) -> Result<(), String> {
    let me1 = &req.me;
    let my_addr = st
        .nodes
        .get(me1)
        .map(|n| n.address.clone())
        .unwrap_or_default();
    if req.link0.is_none() {
        log.push(format!(
            "No cluster network links passed explicitly, fallback to local node IP '{my_addr}'"
        ));
    }
    let ring0 = req.link0.clone().unwrap_or(my_addr);
    let cfs = st.cfs_of_mut(peer).ok_or("peer vanished")?;
    let Some(conf) = cfs.cluster.as_mut() else {
        return Err(format!(
            "500 node '{peer}' is not in a cluster (no corosync.conf)"
        ));
    };
    let mut nodeid = req.want_nodeid;
    if let Some(old) = conf.nodes.get(me1) {
        let same = req.want_nodeid.is_none_or(|n| n == old.nodeid) && old.votes == req.votes;
        if req.force && same {
            log.push(format!("forcing overwrite of configured node '{me1}'"));
            nodeid = Some(old.nodeid);
        } else {
            return Err(format!("500 can't add existing node '{me1}'"));
        }
    }
    // The entry being overwritten (force) does not conflict with itself; nothing is
    // changed until every check has passed.
    for (n, e) in conf.nodes.iter().filter(|(n, _)| *n != me1) {
        if e.ring0_addr == ring0 {
            return Err(format!("500 Node IP '{ring0}' already used by '{n}'"));
        }
        if Some(e.nodeid) == nodeid {
            return Err(format!(
                "500 Nodeid {} already used by node '{n}'",
                e.nodeid
            ));
        }
    }
    let nodeid = nodeid.unwrap_or_else(|| {
        (1..)
            .find(|i| conf.nodes.values().all(|e| e.nodeid != *i))
            .unwrap_or(1)
    });
    conf.nodes.insert(
        me1.clone(),
        CorosyncNode {
            nodeid,
            votes: req.votes,
            ring0_addr: ring0,
        },
    );
    conf.config_version += 1;
    cfs.expected_votes = None;
    Ok(())
}

/// The joined node takes the cluster's database (its own /etc/pve is replaced) and, unless it
/// serves a custom certificate, a new one from the cluster's CA.
fn sync_with_cluster(
    st: &mut SiteState,
    log: &mut Vec<String>,
    me2: &str,
    peer: &str,
) -> Result<(), String> {
    let idx = st.nodes.get(peer).map(|n| n.cfs).ok_or("peer vanished")?;
    log.push("stopping pve-cluster service".into());
    log.push("backup old database to '/var/lib/pve-cluster/backup/config-sim.sql.gz'".into());
    log.push("waiting for quorum...OK".into());
    log.push("(re)generate node files".into());
    log.push("generate new node certificate".into());
    log.push("merge authorized SSH keys".into());
    if let Some(n) = st.nodes.get_mut(me2) {
        n.cfs = idx;
        // pve-ssl.pem is re-issued by the cluster's CA, so a node serving it gets a new
        // fingerprint; a custom pveproxy-ssl.pem (a pre-generated certificate) is kept.
        if let Some(c) = n.staged_cert.take() {
            // pveproxy restarts after the join and loads the uploaded certificate.
            n.cert = c;
            n.generation += 1;
            log.push("restart pveproxy and pvedaemon services".into());
        } else if !n.custom_cert {
            match NodeCert::generate(me2) {
                Ok(c) => {
                    n.cert = c;
                    n.generation += 1;
                    log.push(
                        "generated new node certificate, restart pveproxy and pvedaemon services"
                            .into(),
                    );
                }
                Err(e) => log.push(format!("generating the node certificate failed: {e}")),
            }
        }
    }
    log.push(format!("successfully added node '{me2}' to cluster."));
    Ok(())
}

pub(super) fn delete_node(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    let target = p.str("node").to_string();
    st.check_quorum(node).or_else(fail)?;
    if target == node {
        return fail("Cannot delete myself from cluster!");
    }
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let Some(conf) = cfs.cluster.as_mut() else {
        return fail("Cluster not configured (no corosync.conf)");
    };
    if conf.nodes.remove(&target).is_none() {
        return fail(format!(
            "Node/IP: {target} is not a known host of the cluster."
        ));
    }
    conf.config_version += 1;
    cfs.expected_votes = None;
    Ok(Value::Null)
}
