//! `/nodes`: node list, status, network, and tasks.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{fail, Handled, Params, Shared};
use crate::site::SiteState;

pub(super) fn list_nodes(st: &SiteState, node: &str) -> Value {
    let names: Vec<String> = match st.cfs_of(node).and_then(|c| c.cluster.as_ref()) {
        Some(conf) => conf.nodes.keys().cloned().collect(),
        None => vec![node.to_string()],
    };
    let list: Vec<Value> = names
        .iter()
        .map(|name| {
            let online = st.reachable_member(node, name);
            let mut v = json!({
                "node": name,
                "id": format!("node/{name}"),
                "type": "node",
                "status": if online { "online" } else { "offline" },
                "level": "",
            });
            if let Some(n) = st.nodes.get(name) {
                v["ssl_fingerprint"] = json!(n.cert.fingerprint());
                if online {
                    v["maxcpu"] = json!(4);
                    v["maxmem"] = json!(17_179_869_184_u64);
                    v["mem"] = json!(2_147_483_648_u64);
                    v["cpu"] = json!(0.02);
                    v["uptime"] = json!(3600);
                }
            }
            v
        })
        .collect();
    Value::Array(list)
}

/// For `/nodes/{node}/...`: the node whose state answers (PVE proxies to it).
pub(super) fn target_node(
    st: &SiteState,
    local: &str,
    wanted: &str,
) -> Result<String, (u16, String)> {
    if st.reachable_member(local, wanted) {
        return Ok(wanted.to_string());
    }
    let in_nodelist = st
        .cfs_of(local)
        .and_then(|c| c.cluster.as_ref())
        .is_some_and(|c| c.nodes.contains_key(wanted));
    if in_nodelist {
        Err((595, format!("no route to host '{wanted}' (node offline)")))
    } else {
        Err((
            500,
            format!("hostname lookup '{wanted}' failed - failed to get address info for: {wanted}: Name or service not known"),
        ))
    }
}

pub(super) fn node_status(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let _target = target_node(&st, node, p.str("node"))?;
    Ok(json!({
        "uptime": 3600,
        "cpu": 0.02,
        "loadavg": ["0.10", "0.05", "0.01"],
        "cpuinfo": {"cores": 4, "cpus": 4, "sockets": 1, "model": "Simulated CPU"},
        "memory": {"total": 17_179_869_184_u64, "used": 2_147_483_648_u64, "free": 15_032_385_536_u64, "available": 15_032_385_536_u64},
        "pveversion": "pve-manager/9.1.1/5c6a3e0f",
        "kversion": "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC",
        "current-kernel": {"sysname": "Linux", "release": "6.17.2-1-pve", "version": "#1 SMP", "machine": "x86_64"},
        "boot-info": {"mode": "efi", "secureboot": 0},
        "rootfs": {"total": 100_000_000_000_u64, "used": 3_000_000_000_u64, "avail": 97_000_000_000_u64, "free": 97_000_000_000_u64},
        "swap": {"total": 0, "used": 0, "free": 0},
        "ksm": {"shared": 0},
        "wait": 0,
    }))
}

pub(super) fn node_network(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let target = target_node(&st, node, p.str("node"))?;
    let addr = st
        .nodes
        .get(&target)
        .map(|n| n.address.clone())
        .unwrap_or_default();
    let all = vec![
        json!({"iface": "nic0", "type": "eth", "active": 1, "autostart": 1, "families": ["inet"], "method": "manual", "priority": 1}),
        json!({"iface": "nic1", "type": "eth", "active": 1, "autostart": 1, "families": ["inet"], "method": "manual", "priority": 2}),
        json!({"iface": "lan", "type": "bridge", "active": 1, "autostart": 1, "families": ["inet"], "method": "static",
               "address": addr, "netmask": "24", "cidr": format!("{addr}/24"), "gateway": "10.0.0.1",
               "bridge_ports": "nic1", "bridge_vlan_aware": 1, "bridge_vids": "2-4094", "priority": 3}),
        json!({"iface": "wan", "type": "bridge", "active": 1, "autostart": 1, "families": ["inet"], "method": "manual",
               "bridge_ports": "nic0", "priority": 4}),
    ];
    let list: Vec<Value> = match p.get("type") {
        None => all,
        Some(t) => {
            let want = match t {
                "any_bridge" | "any_local_bridge" => "bridge",
                other => other,
            };
            all.into_iter().filter(|i| i["type"] == want).collect()
        }
    };
    Ok(Value::Array(list))
}

pub(super) fn task_json(node: &str, t: &crate::site::Task) -> Value {
    let mut v = json!({
        "upid": t.upid, "node": node, "pid": t.pid, "pstart": t.pstart, "starttime": t.starttime,
        "type": t.kind, "id": t.id, "user": t.user,
        "status": if t.exitstatus.is_some() { "stopped" } else { "running" },
    });
    if let Some(e) = &t.exitstatus {
        v["exitstatus"] = json!(e);
    }
    if let Some(e) = t.endtime {
        v["endtime"] = json!(e);
    }
    v
}

pub(super) fn list_tasks(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let target = target_node(&st, node, p.str("node"))?;
    let tasks = st
        .nodes
        .get(&target)
        .map(|n| n.tasks.clone())
        .unwrap_or_default();
    let errors_only = p.bool("errors");
    let list: Vec<Value> = tasks
        .iter()
        .rev()
        .filter(|t| !errors_only || t.exitstatus.as_deref().is_some_and(|e| e != "OK"))
        .filter(|t| p.get("typefilter").is_none_or(|f| t.kind == f))
        .map(|t| task_json(&target, t))
        .collect();
    Ok(Value::Array(list))
}

pub(super) fn find_task(
    st: &SiteState,
    node: &str,
    p: &Params,
) -> Result<(String, crate::site::Task), (u16, String)> {
    let upid = p.str("upid");
    let parts: Vec<&str> = upid.split(':').collect();
    if parts.len() < 9 || parts[0] != "UPID" {
        return fail(format!("unable to parse worker upid '{upid}'"));
    }
    if parts[1] != p.str("node") {
        return fail(format!(
            "upid '{upid}' does not belong to node '{}'",
            p.str("node")
        ));
    }
    let target = target_node(st, node, p.str("node"))?;
    let task = st
        .nodes
        .get(&target)
        .and_then(|n| n.tasks.iter().find(|t| t.upid == upid).cloned())
        .ok_or((500, format!("no such task '{upid}'")))?;
    Ok((target, task))
}

pub(super) fn task_status(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let (target, task) = find_task(&st, node, p)?;
    Ok(task_json(&target, &task))
}

pub(super) fn task_log(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let (_, task) = find_task(&st, node, p)?;
    let start = p.u32("start").unwrap_or(0) as usize;
    let limit = p.u32("limit").unwrap_or(50) as usize;
    let lines: Vec<Value> = task
        .log
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, l)| json!({"n": i + 1, "t": l}))
        .collect();
    Ok(Value::Array(lines))
}
