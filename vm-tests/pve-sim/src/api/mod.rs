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
use crate::site::{FaultKind, RequestRecord, SiteState};

mod access;
mod certificates;
mod cluster;
mod nodes;
mod storage;

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
                // Passwords, token values, private keys (certificate upload, PBS encryption).
                let secret = k.contains("password")
                    || matches!(k.as_str(), "value" | "key" | "encryption-key");
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
            if v.root_only {
                // PVE's RPCEnvironment: a method without `permissions` is for root@pam itself.
                return ApiResponse::error(403, "Permission check failed (user != root@pam)");
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
        Ok(data) => {
            let problems =
                crate::returns::check(shared.schema.returns(&req.method, &v.template), &data);
            if !problems.is_empty() {
                let mut st = shared.lock();
                for p in problems {
                    st.return_violations
                        .push(format!("{} {}: {p}", req.method, req.path));
                }
            }
            ApiResponse::ok(data)
        }
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
        ("POST", "/access/ticket") => access::login(shared, node, p),
        ("PUT", "/access/password") => access::change_password(shared, node, p),
        ("POST", "/access/users/{userid}/token/{tokenid}") => access::create_token(shared, node, p),
        ("DELETE", "/access/users/{userid}/token/{tokenid}") => {
            access::delete_token(shared, node, p)
        }
        ("GET", "/version") => Ok(
            json!({"version": "9.1.1", "release": "9.1", "repoid": "5c6a3e0f", "console": "xtermjs"}),
        ),
        ("GET", "/nodes") => Ok(nodes::list_nodes(&shared.lock(), node)),
        ("GET", "/nodes/{node}/status") => nodes::node_status(shared, node, p),
        ("GET", "/nodes/{node}/network") => nodes::node_network(shared, node, p),
        ("GET", "/nodes/{node}/tasks") => nodes::list_tasks(shared, node, p),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => nodes::task_status(shared, node, p),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => nodes::task_log(shared, node, p),
        ("POST", "/nodes/{node}/certificates/custom") => {
            certificates::upload_custom_cert(shared, node, p)
        }
        ("GET", "/cluster/status") => Ok(cluster::cluster_status(&shared.lock(), node)),
        ("GET", "/cluster/config/nodes") => cluster::cluster_nodes(shared, node),
        ("GET", "/cluster/config/join") => cluster::join_info(shared, node, p),
        ("POST", "/cluster/config") => cluster::create_cluster(shared, node, p, user),
        ("POST", "/cluster/config/join") => cluster::join_cluster(shared, node, p, user),
        ("DELETE", "/cluster/config/nodes/{node}") => cluster::delete_node(shared, node, p),
        ("GET", "/storage") => storage::list_storage(shared, node, p),
        ("POST", "/storage") => storage::create_storage(shared, node, p),
        ("GET", "/storage/{storage}") => storage::get_storage(shared, node, p),
        ("PUT", "/storage/{storage}") => storage::update_storage(shared, node, p),
        ("DELETE", "/storage/{storage}") => storage::delete_storage(shared, node, p),
        ("GET", "/cluster/backup") => storage::list_jobs(shared, node, true),
        ("POST", "/cluster/backup") => storage::create_backup_job(shared, node, p),
        ("GET", "/cluster/replication") => storage::list_jobs(shared, node, false),
        ("POST", "/cluster/replication") => storage::create_replication_job(shared, node, p),
        ("DELETE", "/cluster/replication/{id}") => storage::delete_replication_job(shared, node, p),
        _ => Err((501, format!("Method '{method} {template}' not implemented"))),
    }
}

/// The endpoints `route` implements; a test checks this equals the vendored schema's list.
pub const IMPLEMENTED: &[(&str, &str)] = &[
    ("DELETE", "/access/users/{userid}/token/{tokenid}"),
    ("DELETE", "/cluster/config/nodes/{node}"),
    ("DELETE", "/cluster/replication/{id}"),
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
    ("POST", "/nodes/{node}/certificates/custom"),
    ("POST", "/storage"),
    ("PUT", "/access/password"),
    ("PUT", "/storage/{storage}"),
];

/// A step of a task: runs under the site lock after its delay; `Ok(false)` ends the task.
pub(crate) type Step =
    Box<dyn FnOnce(&mut SiteState, &mut Vec<String>) -> Result<bool, String> + Send>;

pub(crate) fn spawn_task(
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
            let finished = {
                let mut st = shared2.lock();
                let mut log = Vec::new();
                match step(&mut st, &mut log) {
                    Ok(true) => {
                        if let Some(t) = st.task_mut(&node, &upid2) {
                            t.log.extend(log);
                        }
                        false
                    }
                    Ok(false) => {
                        st.finish_task(&node, &upid2, log, Ok(()));
                        true
                    }
                    Err(e) => {
                        st.finish_task(&node, &upid2, log, Err(e));
                        true
                    }
                }
            };
            // A step may have changed a certificate or membership: wake the listeners.
            shared2.changed.send_modify(|g| *g += 1);
            if finished {
                return;
            }
        }
        shared2
            .lock()
            .finish_task(&node, &upid2, Vec::new(), Ok(()));
    });
    Ok(json!(upid))
}
