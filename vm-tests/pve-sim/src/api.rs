//! Request handling: authentication, schema check, and the endpoint handlers.
//!
//! The order follows PVE's http server: find the handler (501), authenticate (401), verify
//! parameters (400), then run the handler. Handler errors are answered as PVE does for a
//! `die` in an API method: HTTP 500 with the message as reason and in the body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

use crate::formats::parse_bool;
use crate::schema::{Rejection, Schema};
use crate::site::{ClusterConf, CorosyncNode, FaultKind, RequestRecord, SiteState};

/// State shared by every node's server and the [`crate::SimSite`] handle.
#[derive(Debug)]
pub struct Shared {
    /// The site.
    pub state: Mutex<SiteState>,
    /// The schema requests are checked against.
    pub schema: &'static Schema,
    /// Wakes listeners when a node goes down/up or is reinstalled.
    pub changed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Lock the site; a poisoned lock (a panicked handler) is recovered, not propagated.
    pub fn lock(&self) -> MutexGuard<'_, SiteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An API answer before it becomes HTTP.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Reason phrase / message for errors.
    pub message: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl ApiResponse {
    fn ok(data: Value) -> Self {
        Self {
            status: 200,
            message: None,
            body: json!({ "data": data }),
        }
    }

    /// An error answer in PVE's envelope.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            body: json!({ "data": null, "message": format!("{message}\n") }),
            message: Some(message),
        }
    }

    fn params(errors: BTreeMap<String, String>) -> Self {
        Self {
            status: 400,
            message: Some("Parameter verification failed.".into()),
            body: json!({ "data": null, "errors": errors, "message": "Parameter verification failed.\n" }),
        }
    }
}

/// A request as the HTTP layer parsed it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: String,
    /// Path below `/api2/json`.
    pub path: String,
    /// Query or body parameters.
    pub params: Vec<(String, String)>,
    /// `PVEAuthCookie` value, if any.
    pub ticket: Option<String>,
    /// `CSRFPreventionToken` header, if any.
    pub csrf: Option<String>,
    /// `Authorization: PVEAPIToken=...` value (after the `=`), if any.
    pub api_token: Option<String>,
}

enum Auth {
    Ticket(String),
    Token { user: String, privsep: bool },
}

type Handled = Result<Value, (u16, String)>;

fn fail<T>(msg: impl Into<String>) -> Result<T, (u16, String)> {
    Err((500, msg.into()))
}

/// Handle one request to `node`; records it in the request log.
pub async fn handle(shared: &Arc<Shared>, node: &str, req: ApiRequest) -> ApiResponse {
    let request_delay = shared.lock().latencies.request;
    if !request_delay.is_zero() {
        tokio::time::sleep(request_delay).await;
    }
    let validated = shared.schema.validate(&req.method, &req.path, &req.params);
    let template = validated.as_ref().ok().map(|v| v.template.clone());
    let fault = shared
        .lock()
        .take_fault(node, &req.method, &req.path, template.as_deref());
    let resp = match fault {
        Some(FaultKind::Status { status, message }) => ApiResponse::error(status, message),
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            dispatch(shared, node, &req, validated).await
        }
        None => dispatch(shared, node, &req, validated).await,
    };
    let mut st = shared.lock();
    st.log.push(RequestRecord {
        node: node.to_string(),
        method: req.method.clone(),
        path: req.path.clone(),
        params: req
            .params
            .iter()
            .map(|(k, v)| {
                let secret = k.contains("password") || k == "value";
                (
                    k.clone(),
                    if secret { "***".to_string() } else { v.clone() },
                )
            })
            .collect(),
        status: resp.status,
        error: if resp.status == 400 {
            resp.body.get("errors").map(Value::to_string)
        } else {
            resp.message.clone()
        },
    });
    resp
}

async fn dispatch(
    shared: &Arc<Shared>,
    node: &str,
    req: &ApiRequest,
    validated: Result<crate::schema::Validated, Rejection>,
) -> ApiResponse {
    let params_error = match validated {
        Err(Rejection::NotImplemented(msg)) => return ApiResponse::error(501, msg),
        Err(Rejection::Params(e)) => Some(e),
        Ok(_) => None,
    };
    let is_login = req.method == "POST" && req.path.trim_end_matches('/') == "/access/ticket";
    let auth = if is_login {
        None
    } else {
        match authenticate(shared, node, req) {
            Ok(a) => Some(a),
            Err((status, msg)) => return ApiResponse::error(status, msg),
        }
    };
    if let Some(e) = params_error {
        return ApiResponse::params(e);
    }
    let Ok(v) = shared.schema.validate(&req.method, &req.path, &req.params) else {
        return ApiResponse::error(500, "internal error: validation changed");
    };
    let user = match &auth {
        Some(Auth::Token { user, privsep }) => {
            if !v.allow_token {
                return ApiResponse::error(401, "API tokens are not allowed for this call");
            }
            if *privsep && v.template != "/version" {
                return ApiResponse::error(
                    403,
                    "Permission check failed (privilege-separated token without ACLs)",
                );
            }
            user.clone()
        }
        Some(Auth::Ticket(user)) => user.clone(),
        None => String::new(),
    };
    let p = Params(v.params);
    let result = route(shared, node, &req.method, &v.template, &p, &user).await;
    match result {
        Ok(data) => ApiResponse::ok(data),
        // Handlers report per-parameter errors as a JSON object with status 400.
        Err((400, msg)) => match serde_json::from_str::<BTreeMap<String, String>>(&msg) {
            Ok(errors) => ApiResponse::params(errors),
            Err(_) => ApiResponse::error(400, msg),
        },
        Err((status, msg)) => ApiResponse::error(status, msg),
    }
}

fn authenticate(shared: &Arc<Shared>, node: &str, req: &ApiRequest) -> Result<Auth, (u16, String)> {
    let st = shared.lock();
    if let Some(tok) = &req.api_token {
        // USER@REALM!TOKENID=SECRET
        let (full, secret) = tok
            .rsplit_once('=')
            .ok_or((401, "invalid API token format".to_string()))?;
        let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
        return match cfs.tokens.get(full.trim()) {
            Some((s, privsep)) if s == secret.trim() => Ok(Auth::Token {
                user: full.trim().to_string(),
                privsep: *privsep,
            }),
            _ => Err((401, "invalid token value!".to_string())),
        };
    }
    let Some(ticket) = &req.ticket else {
        return Err((401, "No ticket".into()));
    };
    let user = st
        .verify_ticket(node, ticket)
        .ok_or((401, "invalid PVE ticket".to_string()))?;
    if req.method != "GET" {
        let ok = req
            .csrf
            .as_deref()
            .is_some_and(|c| st.verify_csrf(node, &user, c));
        if !ok {
            return Err((401, "Permission denied - invalid csrf token".into()));
        }
    }
    Ok(Auth::Ticket(user))
}

/// Validated parameters with typed accessors.
struct Params(BTreeMap<String, String>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn str(&self, k: &str) -> &str {
        self.get(k).unwrap_or_default()
    }
    fn bool(&self, k: &str) -> bool {
        self.get(k).and_then(parse_bool).unwrap_or(false)
    }
    fn u32(&self, k: &str) -> Option<u32> {
        self.get(k)
            .and_then(|v| v.trim_start_matches('+').parse().ok())
    }
}

async fn route(
    shared: &Arc<Shared>,
    node: &str,
    method: &str,
    template: &str,
    p: &Params,
    user: &str,
) -> Handled {
    match (method, template) {
        ("POST", "/access/ticket") => login(shared, node, p),
        ("PUT", "/access/password") => change_password(shared, node, p),
        ("POST", "/access/users/{userid}/token/{tokenid}") => create_token(shared, node, p),
        ("DELETE", "/access/users/{userid}/token/{tokenid}") => delete_token(shared, node, p),
        ("GET", "/version") => Ok(
            json!({"version": "9.1.1", "release": "9.1", "repoid": "5c6a3e0f", "console": "xtermjs"}),
        ),
        ("GET", "/nodes") => Ok(list_nodes(&shared.lock(), node)),
        ("GET", "/nodes/{node}/status") => node_status(shared, node, p),
        ("GET", "/nodes/{node}/network") => node_network(shared, node, p),
        ("GET", "/nodes/{node}/tasks") => list_tasks(shared, node, p),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => task_status(shared, node, p),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => task_log(shared, node, p),
        ("GET", "/cluster/status") => Ok(cluster_status(&shared.lock(), node)),
        ("GET", "/cluster/config/nodes") => cluster_nodes(shared, node),
        ("GET", "/cluster/config/join") => join_info(shared, node, p),
        ("POST", "/cluster/config") => create_cluster(shared, node, p, user),
        ("POST", "/cluster/config/join") => join_cluster(shared, node, p, user),
        ("DELETE", "/cluster/config/nodes/{node}") => delete_node(shared, node, p),
        ("GET", "/storage") => list_storage(shared, node, p),
        ("POST", "/storage") => create_storage(shared, node, p),
        ("GET", "/storage/{storage}") => get_storage(shared, node, p),
        ("PUT", "/storage/{storage}") => update_storage(shared, node, p),
        ("DELETE", "/storage/{storage}") => delete_storage(shared, node, p),
        ("GET", "/cluster/backup") => list_jobs(shared, node, true),
        ("POST", "/cluster/backup") => create_backup_job(shared, node, p),
        ("GET", "/cluster/replication") => list_jobs(shared, node, false),
        ("POST", "/cluster/replication") => create_replication_job(shared, node, p),
        _ => Err((501, format!("Method '{method} {template}' not implemented"))),
    }
}

/// The endpoints `route` implements; a test checks this equals the vendored schema's list.
pub const IMPLEMENTED: &[(&str, &str)] = &[
    ("DELETE", "/access/users/{userid}/token/{tokenid}"),
    ("DELETE", "/cluster/config/nodes/{node}"),
    ("DELETE", "/storage/{storage}"),
    ("GET", "/cluster/backup"),
    ("GET", "/cluster/config/join"),
    ("GET", "/cluster/config/nodes"),
    ("GET", "/cluster/replication"),
    ("GET", "/cluster/status"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{node}/network"),
    ("GET", "/nodes/{node}/status"),
    ("GET", "/nodes/{node}/tasks"),
    ("GET", "/nodes/{node}/tasks/{upid}/log"),
    ("GET", "/nodes/{node}/tasks/{upid}/status"),
    ("GET", "/storage"),
    ("GET", "/storage/{storage}"),
    ("GET", "/version"),
    ("POST", "/access/ticket"),
    ("POST", "/access/users/{userid}/token/{tokenid}"),
    ("POST", "/cluster/backup"),
    ("POST", "/cluster/config"),
    ("POST", "/cluster/config/join"),
    ("POST", "/cluster/replication"),
    ("POST", "/storage"),
    ("PUT", "/access/password"),
    ("PUT", "/storage/{storage}"),
];

// ---- access ---------------------------------------------------------------------------

fn login(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let mut username = p.str("username").to_string();
    if !username.contains('@') {
        username = format!("{username}@{}", p.get("realm").unwrap_or("pam"));
    }
    let password = p.str("password");
    let n = st
        .nodes
        .get(node)
        .ok_or((500, "no such node".to_string()))?;
    let ok = if password.starts_with("PVE:") {
        st.verify_ticket(node, password).as_deref() == Some(username.as_str())
    } else {
        username == "root@pam" && password == n.root_password
    };
    if !ok {
        return Err((401, "authentication failure".into()));
    }
    let (ticket, csrf) = st
        .issue_ticket(node, &username)
        .ok_or((500, "no such node".to_string()))?;
    let mut out = json!({"username": username, "ticket": ticket, "CSRFPreventionToken": csrf});
    if let Some(c) = st.cfs_of(node).and_then(|c| c.cluster.as_ref()) {
        out["clustername"] = json!(c.name);
    }
    Ok(out)
}

fn change_password(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    if p.str("userid") != "root@pam" {
        return fail(format!("no such user ('{}')", p.str("userid")));
    }
    let n = st
        .nodes
        .get_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if let Some(confirm) = p.get("confirmation-password") {
        if confirm != n.root_password {
            return Err((401, "authentication failure".into()));
        }
    }
    // root@pam is a PAM user: the password is /etc/shadow of the node answering.
    n.root_password = p.str("password").to_string();
    Ok(Value::Null)
}

fn create_token(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let userid = p.str("userid");
    if userid != "root@pam" {
        return fail(format!("no such user ('{userid}')"));
    }
    let full = format!("{userid}!{}", p.str("tokenid"));
    let privsep = p.get("privsep").and_then(parse_bool).unwrap_or(true);
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.tokens.contains_key(&full) {
        return fail("Token already exists.");
    }
    let value = uuid::Uuid::new_v4().to_string();
    cfs.tokens.insert(full.clone(), (value.clone(), privsep));
    let mut info = json!({"privsep": u8::from(privsep)});
    if let Some(c) = p.get("comment") {
        info["comment"] = json!(c);
    }
    if let Some(e) = p.u32("expire") {
        info["expire"] = json!(e);
    }
    Ok(json!({"full-tokenid": full, "info": info, "value": value}))
}

fn delete_token(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let full = format!("{}!{}", p.str("userid"), p.str("tokenid"));
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.tokens.remove(&full).is_none() {
        return fail(format!(
            "no such token '{}' for user '{}'",
            p.str("tokenid"),
            p.str("userid")
        ));
    }
    Ok(Value::Null)
}

// ---- nodes ----------------------------------------------------------------------------

fn list_nodes(st: &SiteState, node: &str) -> Value {
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
fn target_node(st: &SiteState, local: &str, wanted: &str) -> Result<String, (u16, String)> {
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

fn node_status(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let _target = target_node(&st, node, p.str("node"))?;
    Ok(json!({
        "uptime": 3600,
        "cpu": 0.02,
        "loadavg": ["0.10", "0.05", "0.01"],
        "cpuinfo": {"cores": 4, "cpus": 4, "sockets": 1, "model": "Simulated CPU"},
        "memory": {"total": 17_179_869_184_u64, "used": 2_147_483_648_u64, "free": 15_032_385_536_u64},
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

fn node_network(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
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

fn task_json(node: &str, t: &crate::site::Task) -> Value {
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

fn list_tasks(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
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

fn find_task(
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

fn task_status(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let (target, task) = find_task(&st, node, p)?;
    Ok(task_json(&target, &task))
}

fn task_log(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
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

// ---- cluster --------------------------------------------------------------------------

fn cluster_status(st: &SiteState, node: &str) -> Value {
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

fn cluster_nodes(shared: &Arc<Shared>, node: &str) -> Handled {
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

fn join_info(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
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
fn link_address(v: &str) -> String {
    v.split(',')
        .find_map(|part| match part.split_once('=') {
            Some(("address", a)) => Some(a.to_string()),
            Some(_) => None,
            None => Some(part.to_string()),
        })
        .unwrap_or_default()
}

/// A step of a task: runs under the site lock after its delay; `Ok(false)` ends the task.
type Step = Box<dyn FnOnce(&mut SiteState, &mut Vec<String>) -> Result<bool, String> + Send>;

fn spawn_task(
    shared: &Arc<Shared>,
    node: &str,
    kind: &str,
    id: &str,
    user: &str,
    steps: Vec<(f64, Step)>,
) -> Handled {
    let (upid, latency) = {
        let mut st = shared.lock();
        let latency = st.latencies.task(kind);
        let upid = st
            .new_task(node, kind, id, user)
            .ok_or((500, "no such node".to_string()))?;
        (upid, latency)
    };
    let shared2 = Arc::clone(shared);
    let node = node.to_string();
    let upid2 = upid.clone();
    tokio::spawn(async move {
        let mut done = 0.0;
        for (fraction, step) in steps {
            let wait = (fraction - done).max(0.0);
            done = fraction.max(done);
            tokio::time::sleep(Duration::from_secs_f64(latency.as_secs_f64() * wait)).await;
            let mut st = shared2.lock();
            let mut log = Vec::new();
            match step(&mut st, &mut log) {
                Ok(true) => {
                    if let Some(t) = st.task_mut(&node, &upid2) {
                        t.log.extend(log);
                    }
                }
                Ok(false) => {
                    st.finish_task(&node, &upid2, log, Ok(()));
                    return;
                }
                Err(e) => {
                    st.finish_task(&node, &upid2, log, Err(e));
                    return;
                }
            }
        }
        shared2
            .lock()
            .finish_task(&node, &upid2, Vec::new(), Ok(()));
    });
    Ok(json!(upid))
}

fn create_cluster(shared: &Arc<Shared>, node: &str, p: &Params, user: &str) -> Handled {
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

fn join_cluster(shared: &Arc<Shared>, node: &str, p: &Params, user: &str) -> Handled {
    let host = p.str("hostname").to_string();
    let fingerprint = p.str("fingerprint").to_ascii_uppercase();
    let password = p.str("password").to_string();
    let force = p.bool("force");
    let want_nodeid = p.u32("nodeid");
    let votes = p.u32("votes").unwrap_or(1);
    let link0 = p.get("link0").map(link_address);
    let me = node.to_string();
    {
        // Checked before the worker starts, as PVE's assert_joinable does.
        let st = shared.lock();
        if !force && st.cfs_of(node).is_some_and(|c| c.cluster.is_some()) {
            return fail(
                "detected the following error(s):\n* this host already is part of a cluster (corosync config '/etc/pve/corosync.conf' exists)\nCheck if node may join a cluster failed!",
            );
        }
    }
    let me1 = me.clone();
    let peer_slot: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let peer_out = Arc::clone(&peer_slot);
    // Step 1 (half-way): connect to the peer, log in, and have it add us to its nodelist.
    let add: Step = Box::new(move |st, log| {
        log.push(format!("Establishing API connection with host '{host}'"));
        let Some(peer) = st.resolve(&host) else {
            return Err(format!(
                "500 Can't connect to {host}:8006 (Name or service not known)"
            ));
        };
        let peer_node = st.nodes.get(&peer).ok_or("peer vanished")?;
        if peer_node.down.is_some() {
            return Err(format!(
                "500 Can't connect to {host}:8006 (Connection refused)"
            ));
        }
        let actual = peer_node.cert.fingerprint();
        if actual != fingerprint {
            return Err(format!(
                "500 Can't connect to {host}:8006 (certificate verify failed: fingerprint {actual} of '{peer}' does not match the expected {fingerprint})"
            ));
        }
        log.push(format!("The authenticity of host '{host}' can't be established, using the given fingerprint {fingerprint}"));
        if peer_node.root_password != password {
            return Err("401 authentication failure".into());
        }
        log.push("Login succeeded.".into());
        log.push("check cluster join API version".into());
        log.push("Request addition of this node".into());
        if !st.quorate(&peer) {
            return Err(format!("500 {}", crate::site::NO_QUORUM));
        }
        let my_addr = st
            .nodes
            .get(&me1)
            .map(|n| n.address.clone())
            .unwrap_or_default();
        let ring0 = link0.clone().unwrap_or(my_addr);
        let cfs = st.cfs_of_mut(&peer).ok_or("peer vanished")?;
        let Some(conf) = cfs.cluster.as_mut() else {
            return Err(format!(
                "500 node '{peer}' is not in a cluster (no corosync.conf)"
            ));
        };
        let mut nodeid = want_nodeid;
        if let Some(old) = conf.nodes.get(&me1) {
            let same = want_nodeid.is_none_or(|n| n == old.nodeid) && old.votes == votes;
            if force && same {
                log.push(format!("forcing overwrite of configured node '{me1}'"));
                nodeid = Some(old.nodeid);
                conf.nodes.remove(&me1);
            } else {
                return Err(format!("500 can't add existing node '{me1}'"));
            }
        }
        for (n, e) in &conf.nodes {
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
                votes,
                ring0_addr: ring0,
            },
        );
        conf.config_version += 1;
        cfs.expected_votes = None;
        log.push("Join request OK, finishing setup locally".into());
        let halfway = st.nodes.get_mut(&me1).is_some_and(|n| {
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
    let me2 = me.clone();
    // Step 2: restart pmxcfs with the cluster's database (our local /etc/pve is replaced).
    let sync: Step = Box::new(move |st, log| {
        let peer = peer_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or("lost track of the peer")?;
        let idx = st.nodes.get(&peer).map(|n| n.cfs).ok_or("peer vanished")?;
        log.push("stopping pve-cluster service".into());
        log.push("backup old database to '/var/lib/pve-cluster/backup/config-sim.sql.gz'".into());
        log.push("waiting for quorum...OK".into());
        if let Some(n) = st.nodes.get_mut(&me2) {
            n.cfs = idx;
        }
        log.push("(re)generate node files".into());
        log.push("generate new node certificate".into());
        log.push("merge authorized SSH keys".into());
        log.push(format!("successfully added node '{me2}' to cluster."));
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

fn delete_node(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
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

// ---- storage --------------------------------------------------------------------------

/// Properties each storage type accepts besides the common ones (SectionConfig options).
fn type_options(kind: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    // (required, optional)
    match kind {
        "zfspool" => Some((&["pool"], &["blocksize", "sparse", "mountpoint"])),
        "pbs" => Some((
            &["server", "datastore"],
            &[
                "username",
                "password",
                "fingerprint",
                "port",
                "encryption-key",
                "master-pubkey",
                "namespace",
                "prune-backups",
                "max-protected-backups",
                "fs-name",
            ],
        )),
        "dir" => Some((
            &["path"],
            &[
                "prune-backups",
                "max-protected-backups",
                "shared",
                "mkdir",
                "create-base-path",
                "create-subdirs",
                "is_mountpoint",
                "preallocation",
                "content-dirs",
            ],
        )),
        _ => None,
    }
}

const COMMON: &[&str] = &[
    "storage", "type", "content", "nodes", "disable", "bwlimit", "digest", "delete",
];

fn check_type_options(kind: &str, p: &Params, creating: bool) -> Result<(), (u16, String)> {
    let Some((required, optional)) = type_options(kind) else {
        return Ok(());
    };
    let mut errors = BTreeMap::new();
    for k in p.0.keys() {
        if !COMMON.contains(&k.as_str())
            && !required.contains(&k.as_str())
            && !optional.contains(&k.as_str())
        {
            errors.insert(
                k.clone(),
                format!("property is not allowed for storage type '{kind}'"),
            );
        }
    }
    if creating {
        for r in required {
            if !p.0.contains_key(*r) {
                errors.insert(
                    (*r).to_string(),
                    "property is missing and it is not optional".into(),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err((400, serde_json::to_string(&errors).unwrap_or_default()))
    }
}

fn storage_json(id: &str, cfg: &BTreeMap<String, String>) -> Value {
    let mut v = json!({"storage": id, "digest": "0"});
    for (k, val) in cfg {
        v[k] = json!(val);
    }
    v
}

fn list_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    Ok(Value::Array(
        cfs.storage
            .iter()
            .filter(|(_, c)| {
                p.get("type")
                    .is_none_or(|t| c.get("type").map(String::as_str) == Some(t))
            })
            .map(|(id, c)| storage_json(id, c))
            .collect(),
    ))
}

fn get_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    let id = p.str("storage");
    let cfg = cfs
        .storage
        .get(id)
        .ok_or((500, format!("storage '{id}' does not exist")))?;
    Ok(storage_json(id, cfg))
}

const SECRET_KEYS: &[&str] = &["password", "encryption-key"];

fn create_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let kind = p.str("type").to_string();
    check_type_options(&kind, p, true)?;
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.str("storage").to_string();
    if cfs.storage.contains_key(&id) {
        return fail(format!(
            "create storage failed: storage ID '{id}' already defined"
        ));
    }
    let mut cfg = BTreeMap::new();
    for (k, v) in &p.0 {
        if k == "storage" {
            continue;
        }
        if SECRET_KEYS.contains(&k.as_str()) {
            cfs.storage_secrets.insert(format!("{id}/{k}"), v.clone());
        } else {
            cfg.insert(k.clone(), v.clone());
        }
    }
    cfs.storage.insert(id.clone(), cfg);
    Ok(json!({"storage": id, "type": kind}))
}

fn update_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let id = p.str("storage").to_string();
    let kind = st
        .cfs_of(node)
        .and_then(|c| c.storage.get(&id))
        .and_then(|c| c.get("type").cloned())
        .ok_or((
            500,
            format!("update storage failed: storage '{id}' does not exist"),
        ))?;
    drop(st);
    check_type_options(&kind, p, false)?;
    let mut st = shared.lock();
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let mut secrets = Vec::new();
    let Some(cfg) = cfs.storage.get_mut(&id) else {
        return fail(format!(
            "update storage failed: storage '{id}' does not exist"
        ));
    };
    if let Some(del) = p.get("delete") {
        for k in del.split([',', ';', ' ']).filter(|k| !k.is_empty()) {
            cfg.remove(k);
        }
    }
    for (k, v) in &p.0 {
        if matches!(k.as_str(), "storage" | "delete" | "digest") {
            continue;
        }
        if SECRET_KEYS.contains(&k.as_str()) {
            secrets.push((format!("{id}/{k}"), v.clone()));
        } else {
            cfg.insert(k.clone(), v.clone());
        }
    }
    cfs.storage_secrets.extend(secrets);
    Ok(json!({"storage": id, "type": kind}))
}

fn delete_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let id = p.str("storage");
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.storage.remove(id).is_none() {
        return fail(format!(
            "delete storage failed: storage '{id}' does not exist"
        ));
    }
    cfs.storage_secrets
        .retain(|k, _| !k.starts_with(&format!("{id}/")));
    Ok(Value::Null)
}

// ---- jobs -----------------------------------------------------------------------------

fn list_jobs(shared: &Arc<Shared>, node: &str, backup: bool) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    let jobs = if backup {
        &cfs.backup_jobs
    } else {
        &cfs.replication_jobs
    };
    Ok(Value::Array(
        jobs.iter()
            .map(|(id, c)| {
                let mut v = json!({"id": id});
                for (k, val) in c {
                    v[k] = json!(val);
                }
                v
            })
            .collect(),
    ))
}

fn create_backup_job(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    if let Some(s) = p.get("storage") {
        if !st.cfs_of(node).is_some_and(|c| c.storage.contains_key(s)) {
            return fail(format!("storage '{s}' does not exist"));
        }
    }
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.get("id").map(str::to_string).unwrap_or_else(|| {
        format!(
            "backup-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..13]
        )
    });
    if cfs.backup_jobs.contains_key(&id) {
        return fail(format!("Job '{id}' already exists"));
    }
    let cfg =
        p.0.iter()
            .filter(|(k, _)| *k != "id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    cfs.backup_jobs.insert(id, cfg);
    Ok(Value::Null)
}

fn create_replication_job(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let target = p.str("target");
    let known = st
        .cfs_of(node)
        .and_then(|c| c.cluster.as_ref())
        .is_some_and(|c| c.nodes.contains_key(target));
    if !known {
        return fail(format!("unknown node '{target}'"));
    }
    if target == node && p.get("source").is_none() {
        return fail("cannot replicate to the node itself");
    }
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.str("id").to_string();
    if cfs.replication_jobs.contains_key(&id) {
        return fail(format!("replication job '{id}' already exists"));
    }
    let mut cfg: BTreeMap<String, String> =
        p.0.iter()
            .filter(|(k, _)| *k != "id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    cfg.entry("schedule".into())
        .or_insert_with(|| "*/15".into());
    if let Some((guest, jobnum)) = id.split_once('-') {
        cfg.insert("guest".into(), guest.into());
        cfg.insert("jobnum".into(), jobnum.into());
    }
    cfs.replication_jobs.insert(id, cfg);
    Ok(Value::Null)
}
