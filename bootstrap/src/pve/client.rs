//! The HTTPS client: pinned TLS, ticket or API-token authentication, Proxmox's error messages,
//! and retries with backoff on transient failures.

use super::api::*;
use super::tls::pinned_client_config;
use super::{Fingerprint, PveError, Secret};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A password log-in (`POST /access/ticket`), e.g. `root@pam`.
    Password {
        /// `user@realm`
        user: String,
        /// The password.
        password: Secret,
    },
    /// An API token: `user@realm!tokenid` and its secret.
    Token {
        /// `user@realm!tokenid`
        id: String,
        /// The token's secret (a UUID).
        secret: Secret,
    },
}

/// Retries with exponential backoff for transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Runs `f` until it succeeds, fails permanently, or the attempts are used up.
    pub fn run<T>(&self, mut f: impl FnMut() -> Result<T, PveError>) -> Result<T, PveError> {
        let mut n = 0;
        loop {
            n += 1;
            match f() {
                Err(e) if e.is_transient() && n < self.attempts.max(1) => {
                    tracing::debug!("transient error, retry {n}: {e}");
                    std::thread::sleep(self.delay(n));
                }
                other => return other,
            }
        }
    }
}

/// Per-client settings.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Retry policy for transient errors.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Clone)]
enum Session {
    None,
    Ticket { ticket: Secret, csrf: Secret },
}

/// A Proxmox VE API client for one node.
pub struct PveClient {
    http: Client,
    base: String,
    expected: Fingerprint,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    creds: Credentials,
    session: Mutex<Session>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for PveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveClient")
            .field("base", &self.base)
            .field("fingerprint", &self.expected)
            .field("creds", &self.creds)
            .finish()
    }
}

impl PveClient {
    /// A client for the API at `base` (`https://host:8006`), trusting only the certificate
    /// with `fingerprint`. Nothing is sent until the first call.
    pub fn new(
        base: &str,
        fingerprint: Fingerprint,
        creds: Credentials,
        opts: ClientOptions,
    ) -> Result<PveClient, PveError> {
        let seen = Arc::new(Mutex::new(None));
        let unreachable = |message: String| PveError::Unreachable {
            url: base.to_string(),
            message,
        };
        let tls = pinned_client_config(fingerprint, seen.clone())
            .map_err(|e| unreachable(format!("TLS setup: {e}")))?;
        let http = Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .build()
            .map_err(|e| unreachable(format!("HTTP client setup: {e}")))?;
        Ok(PveClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            expected: fingerprint,
            seen,
            creds,
            session: Mutex::new(Session::None),
            retry: opts.retry,
        })
    }

    fn session(&self) -> Session {
        self.session
            .lock()
            .map(|s| s.clone())
            .unwrap_or(Session::None)
    }

    fn set_session(&self, s: Session) {
        if let Ok(mut g) = self.session.lock() {
            *g = s;
        }
    }

    /// Logs in with the password credentials (no-op for tokens). Called on demand.
    pub fn login(&self) -> Result<(), PveError> {
        let Credentials::Password { user, password } = &self.creds else {
            return Ok(());
        };
        let params = vec![
            ("username".to_string(), user.clone()),
            ("password".to_string(), password.expose().to_string()),
        ];
        let req = self
            .http
            .post(format!("{}/api2/json/access/ticket", self.base))
            .form(&params);
        let res = self.send(req, "POST", "/access/ticket");
        let data = match res {
            Ok(v) => v,
            Err(PveError::Api {
                status, message, ..
            }) if status == 401 || status == 403 => {
                return Err(PveError::Login {
                    url: self.base.clone(),
                    user: user.clone(),
                    message,
                })
            }
            Err(e) => return Err(e),
        };
        let field = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .map(|s| Secret::new(s.to_string()))
                .ok_or_else(|| PveError::Decode {
                    method: "POST".into(),
                    path: "/access/ticket".into(),
                    message: format!("no {k} in the answer"),
                })
        };
        self.set_session(Session::Ticket {
            ticket: field("ticket")?,
            csrf: field("CSRFPreventionToken")?,
        });
        Ok(())
    }

    /// One API call with retries: `params` go in the query (GET, DELETE) or the form body.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Value, PveError> {
        self.retry.run(|| self.call_once(&method, path, params))
    }

    fn call_once(
        &self,
        method: &Method,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Value, PveError> {
        let mut relogged = false;
        loop {
            if matches!(self.creds, Credentials::Password { .. })
                && matches!(self.session(), Session::None)
            {
                self.login()?;
            }
            let url = format!("{}/api2/json{}", self.base, path);
            let mut req = self.http.request(method.clone(), &url);
            req = if *method == Method::GET || *method == Method::DELETE {
                req.query(params)
            } else {
                req.form(params)
            };
            req = match (&self.creds, self.session()) {
                (Credentials::Token { id, secret }, _) => req.header(
                    "Authorization",
                    format!("PVEAPIToken={id}={}", secret.expose()),
                ),
                (_, Session::Ticket { ticket, csrf }) => {
                    let r = req.header("Cookie", format!("PVEAuthCookie={}", ticket.expose()));
                    if *method == Method::GET {
                        r
                    } else {
                        r.header("CSRFPreventionToken", csrf.expose())
                    }
                }
                _ => req,
            };
            match self.send(req, method.as_str(), path) {
                // A ticket expires after two hours; the join restarts pve-cluster, which may
                // invalidate it too. Log in again, once.
                Err(PveError::Api { status: 401, .. })
                    if !relogged && matches!(self.creds, Credentials::Password { .. }) =>
                {
                    relogged = true;
                    self.set_session(Session::None);
                }
                other => return other,
            }
        }
    }

    fn send(&self, req: RequestBuilder, method: &str, path: &str) -> Result<Value, PveError> {
        if let Ok(mut s) = self.seen.lock() {
            *s = None;
        }
        let res = match req.send() {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(&e)),
        };
        let status = res.status();
        let reason = status.canonical_reason().unwrap_or("").to_string();
        let body = res.text().map_err(|e| self.transport_error(&e))?;
        let json: Option<Value> = serde_json::from_str(&body).ok();
        if status.is_success() {
            let json = json.ok_or_else(|| PveError::Decode {
                method: method.into(),
                path: path.into(),
                message: format!("not JSON: {}", truncate(&body, 200)),
            })?;
            return Ok(json.get("data").cloned().unwrap_or(Value::Null));
        }
        let mut message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Value::as_str)
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        if message.is_empty() {
            message = if body.trim().is_empty() || json.is_some() {
                reason
            } else {
                truncate(body.trim(), 300)
            };
        }
        let errors: BTreeMap<String, String> = json
            .as_ref()
            .and_then(|j| j.get("errors"))
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Err(PveError::Api {
            method: method.into(),
            path: path.into(),
            status: status.as_u16(),
            message,
            errors,
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> PveError {
        let seen = self.seen.lock().ok().and_then(|s| *s);
        if let Some(got) = seen.filter(|g| *g != self.expected) {
            return PveError::FingerprintMismatch {
                url: self.base.clone(),
                expected: self.expected,
                got,
            };
        }
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        PveError::Unreachable {
            url: self.base.clone(),
            message,
        }
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<T, PveError> {
        let v = self.call(Method::GET, path, params)?;
        decode("GET", path, v)
    }
}

fn decode<T: DeserializeOwned>(method: &str, path: &str, v: Value) -> Result<T, PveError> {
    serde_json::from_value(v).map_err(|e| PveError::Decode {
        method: method.into(),
        path: path.into(),
        message: e.to_string(),
    })
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Percent-encodes one path segment (a UPID holds ':' and '@').
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PveApi for PveClient {
    fn url(&self) -> String {
        self.base.clone()
    }

    fn version(&self) -> Result<String, PveError> {
        let v: Value = self.get("/version", &[])?;
        Ok(v.get("release")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    fn set_custom_certificate(
        &self,
        node: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<String, PveError> {
        let path = format!("/nodes/{}/certificates/custom", seg(node));
        let v = self.call(
            Method::POST,
            &path,
            &[
                p("certificates", cert_pem),
                p("key", key_pem),
                p("force", 1),
                p("restart", 1),
            ],
        )?;
        Ok(v.get("fingerprint")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    fn cluster_status(&self) -> Result<Vec<ClusterStatusEntry>, PveError> {
        self.get("/cluster/status", &[])
    }

    fn create_cluster(&self, req: &CreateCluster) -> Result<Upid, PveError> {
        let mut params = vec![p("clustername", &req.clustername), p("link0", &req.link0)];
        if let Some(id) = req.nodeid {
            params.push(p("nodeid", id));
        }
        let v = self.call(Method::POST, "/cluster/config", &params)?;
        decode("POST", "/cluster/config", v)
    }

    fn join_info(&self) -> Result<JoinInfo, PveError> {
        self.get("/cluster/config/join", &[])
    }

    fn join_cluster(&self, req: &JoinCluster) -> Result<Upid, PveError> {
        let mut params = vec![
            p("hostname", &req.hostname),
            p("fingerprint", &req.fingerprint),
            p("password", &req.password),
            p("link0", &req.link0),
        ];
        if let Some(id) = req.nodeid {
            params.push(p("nodeid", id));
        }
        if req.force {
            params.push(p("force", 1));
        }
        let v = self.call(Method::POST, "/cluster/config/join", &params)?;
        decode("POST", "/cluster/config/join", v)
    }

    fn delete_node(&self, node: &str) -> Result<(), PveError> {
        self.call(
            Method::DELETE,
            &format!("/cluster/config/nodes/{}", seg(node)),
            &[],
        )
        .map(|_| ())
    }

    fn task_status(&self, node: &str, upid: &Upid) -> Result<TaskStatus, PveError> {
        self.get(
            &format!("/nodes/{}/tasks/{}/status", seg(node), seg(&upid.0)),
            &[],
        )
    }

    fn task_log(&self, node: &str, upid: &Upid) -> Result<Vec<String>, PveError> {
        let v: Vec<Value> = self.get(
            &format!("/nodes/{}/tasks/{}/log", seg(node), seg(&upid.0)),
            &[p("limit", 500)],
        )?;
        Ok(v.iter()
            .filter_map(|l| l.get("t").and_then(Value::as_str).map(String::from))
            .collect())
    }

    fn storage_list(&self) -> Result<Vec<StorageEntry>, PveError> {
        self.get("/storage", &[])
    }

    fn storage_create(&self, req: &StorageCreate) -> Result<(), PveError> {
        self.call(Method::POST, "/storage", &req.params).map(|_| ())
    }

    fn storage_set_nodes(&self, id: &str, nodes: &[String]) -> Result<(), PveError> {
        self.call(
            Method::PUT,
            &format!("/storage/{}", seg(id)),
            &[p("nodes", nodes.join(","))],
        )
        .map(|_| ())
    }

    fn replication_list(&self) -> Result<Vec<ReplicationJob>, PveError> {
        self.get("/cluster/replication", &[])
    }

    fn replication_create(&self, job: &ReplicationJob) -> Result<(), PveError> {
        let mut params = vec![
            p("id", &job.id),
            p("type", "local"),
            p("target", &job.target),
        ];
        if let Some(s) = &job.schedule {
            params.push(p("schedule", s));
        }
        if let Some(r) = job.rate {
            params.push(p("rate", r));
        }
        if let Some(c) = &job.comment {
            params.push(p("comment", c));
        }
        self.call(Method::POST, "/cluster/replication", &params)
            .map(|_| ())
    }

    fn backup_jobs(&self) -> Result<Vec<BackupJob>, PveError> {
        self.get("/cluster/backup", &[])
    }

    fn backup_job_create(&self, id: &str, storage: &str, schedule: &str) -> Result<(), PveError> {
        let params = vec![
            p("id", id),
            p("storage", storage),
            p("schedule", schedule),
            p("all", 1),
            p("mode", "snapshot"),
            p("compress", "zstd"),
            p("enabled", 1),
        ];
        self.call(Method::POST, "/cluster/backup", &params)
            .map(|_| ())
    }
}
