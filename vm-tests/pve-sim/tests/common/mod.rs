//! A small PVE API client for the tests: reqwest over rustls (ring), pinning the node's
//! certificate by its SHA-256 fingerprint the way the agent does.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tappaas_pve_sim::tls::fingerprint_of;
use tappaas_pve_sim::NodeHandle;

#[derive(Debug)]
struct Pin {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint_of(end_entity).eq_ignore_ascii_case(&self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint mismatch".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTP client that trusts exactly the certificate with `fingerprint`.
pub fn pinned_client(fingerprint: &str, timeout: Duration) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pin {
            fingerprint: fingerprint.to_string(),
            provider,
        }))
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A logged-in (or not) session with one simulated node.
pub struct Pve {
    pub base: String,
    pub http: reqwest::Client,
    pub ticket: Option<(String, String)>,
    pub token: Option<String>,
}

/// What an API call returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub reason: String,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub fn error(&self, param: &str) -> &str {
        self.body["errors"][param].as_str().unwrap_or("")
    }
}

impl Pve {
    pub fn new(node: &NodeHandle) -> Self {
        Self::with_timeout(node, Duration::from_secs(10))
    }

    pub fn with_timeout(node: &NodeHandle, timeout: Duration) -> Self {
        Self {
            base: node.api_url(),
            http: pinned_client(&node.fingerprint(), timeout),
            ticket: None,
            token: None,
        }
    }

    /// Log in as root@pam; panics unless it works.
    pub async fn login(node: &NodeHandle) -> Self {
        let mut pve = Self::new(node);
        let r = pve.try_login(&node.root_password()).await;
        assert_eq!(r.status, 200, "login on {}: {r:?}", node.name());
        pve
    }

    /// Log in as root@pam; `None` on a transport error or a refused login.
    pub async fn login_opt(node: &NodeHandle) -> Option<Self> {
        let mut pve = Self::new(node);
        let r = pve
            .call(
                "POST",
                "/access/ticket",
                &[
                    ("username", "root@pam"),
                    ("password", &node.root_password()),
                ],
            )
            .await
            .ok()?;
        (r.status == 200).then(|| {
            pve.ticket = Some((
                r.data()["ticket"].as_str().unwrap().to_string(),
                r.data()["CSRFPreventionToken"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
            pve
        })
    }

    pub async fn try_login(&mut self, password: &str) -> Reply {
        let r = self
            .call(
                "POST",
                "/access/ticket",
                &[("username", "root@pam"), ("password", password)],
            )
            .await
            .unwrap();
        if r.status == 200 {
            let d = r.data();
            self.ticket = Some((
                d["ticket"].as_str().unwrap().to_string(),
                d["CSRFPreventionToken"].as_str().unwrap().to_string(),
            ));
        }
        r
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
    ) -> reqwest::Result<Reply> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m.clone(), &url);
        req = if m == reqwest::Method::GET || m == reqwest::Method::DELETE {
            req.query(params)
        } else {
            req.form(params)
        };
        if let Some((ticket, csrf)) = &self.ticket {
            req = req
                .header("Cookie", format!("PVEAuthCookie={}", urlencode(ticket)))
                .header("CSRFPreventionToken", csrf);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("PVEAPIToken={t}"));
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let reason = resp.status().canonical_reason().unwrap_or("").to_string();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Ok(Reply {
            status,
            reason,
            body,
        })
    }

    /// Call and insist on HTTP 200; returns `data`.
    pub async fn ok(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Value {
        let r = self.call(method, path, params).await.unwrap();
        assert_eq!(r.status, 200, "{method} {path}: {r:?}");
        r.body["data"].clone()
    }

    /// Poll a task until it stops; returns its final status object.
    pub async fn wait_task(&self, upid: &str) -> Value {
        let node = upid.split(':').nth(1).unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = format!("/nodes/{node}/tasks/{}/status", urlencode(upid));
            let r = self.call("GET", &path, &[]).await.unwrap();
            assert_eq!(r.status, 200, "task status: {r:?}");
            if r.data()["status"] == "stopped" {
                return r.data().clone();
            }
            assert!(Instant::now() < deadline, "task {upid} did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn task_log(&self, upid: &str) -> Vec<String> {
        let node = upid.split(':').nth(1).unwrap().to_string();
        let path = format!("/nodes/{node}/tasks/{}/log", urlencode(upid));
        let data = self.ok("GET", &path, &[("limit", "500")]).await;
        data.as_array()
            .unwrap()
            .iter()
            .map(|l| l["t"].as_str().unwrap().to_string())
            .collect()
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Create the cluster on `primary` and wait for the task; returns the final task status.
pub async fn create_cluster(primary: &NodeHandle) -> Value {
    let pve = Pve::login(primary).await;
    let link0 = primary.address();
    let upid = pve
        .ok(
            "POST",
            "/cluster/config",
            &[("clustername", "TAPPaaS"), ("link0", &link0)],
        )
        .await;
    pve.wait_task(upid.as_str().unwrap()).await
}

/// Join `node` to the cluster of `primary` through `node`'s own endpoint, as the agent does;
/// re-logs in after the join (the node's auth key is now the cluster's) to read the result.
pub async fn join(
    node: &NodeHandle,
    primary: &NodeHandle,
    extra: &[(&str, &str)],
) -> (Value, Vec<String>) {
    join_with(
        node,
        primary,
        &primary.fingerprint(),
        &primary.root_password(),
        extra,
    )
    .await
}

pub async fn join_with(
    node: &NodeHandle,
    primary: &NodeHandle,
    fingerprint: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> (Value, Vec<String>) {
    let pve = Pve::login(node).await;
    let addr = primary.address();
    let link0 = node.address();
    let mut params = vec![
        ("hostname", addr.as_str()),
        ("fingerprint", fingerprint),
        ("password", password),
    ];
    if !extra.iter().any(|(k, _)| *k == "link0") {
        params.push(("link0", link0.as_str()));
    }
    params.extend_from_slice(extra);
    let upid = pve.ok("POST", "/cluster/config/join", &params).await;
    let upid = upid.as_str().unwrap().to_string();
    // Poll with fresh logins: once the join syncs, the old ticket no longer verifies.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The join restarts the node's API with a new certificate (unless it has a custom
        // one) and a new auth key: a transport error or 401 here means "try again".
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Some(pve) = Pve::login_opt(node).await else {
            continue;
        };
        let path = format!("/nodes/{}/tasks/{}/status", node.name(), urlencode(&upid));
        let Ok(r) = pve.call("GET", &path, &[]).await else {
            continue;
        };
        // 401: the join switched the node to the cluster's auth key between our login and
        // this call; log in again.
        if r.status != 401 {
            assert_eq!(r.status, 200, "{r:?}");
            if r.data()["status"] == "stopped" {
                let log = pve.task_log(&upid).await;
                return (r.data().clone(), log);
            }
        }
        assert!(Instant::now() < deadline, "join task did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Pve {
    /// A login that must fail at the transport level; returns the error.
    pub async fn try_login_err(&self) -> reqwest::Error {
        self.call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam"), ("password", "x")],
        )
        .await
        .unwrap_err()
    }
}
