//! The binary's control endpoint: plain HTTP on loopback, JSON in and out.
//!
//! | method + path | effect |
//! | --- | --- |
//! | `GET /state` | snapshot: nodes, membership, quorum, storage, pending faults |
//! | `GET /requests` | every API request so far, rejected ones included |
//! | `POST /faults` | inject: `{"path": "/cluster/config/join", "count": 2, "status": 500, "message": "boom"}`, or `"delay_ms": 30000` instead of status; optional `"node"`, `"method"` |
//! | `DELETE /faults` | clear pending faults |
//! | `POST /nodes/{name}/down?mode=refuse` (or `hang`) | take a node down |
//! | `POST /nodes/{name}/up` | bring it back |
//! | `POST /nodes/{name}/fail-join-halfway?count=1` | next join on that node fails half-way |
//! | `POST /nodes/{name}/expected?votes=N` | `pvecm expected N` on that node |
//! | `POST /nodes/{name}/reinstall` | `{"root_password": "..."}`: fresh node, new certificate |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::{DownMode, Fault, FaultKind, SimSite};

#[derive(Debug, Deserialize)]
struct FaultRequest {
    node: Option<String>,
    method: Option<String>,
    path: String,
    #[serde(default = "one")]
    count: u32,
    status: Option<u16>,
    message: Option<String>,
    delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Serve the control endpoint on `127.0.0.1:port` (0 = any free port); returns the bound
/// address and the server task.
pub async fn serve(
    site: Arc<SimSite>,
    port: u16,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let site = Arc::clone(&site);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let site = Arc::clone(&site);
                    async move { Ok::<_, std::convert::Infallible>(control(&site, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn control(site: &SimSite, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let q = |k: &str| query.iter().find(|(qk, _)| qk == k).map(|(_, v)| v.clone());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let bad = |msg: String| reply(StatusCode::BAD_REQUEST, &json!({"error": msg}));
    let ok = || reply(StatusCode::OK, &json!({"ok": true}));
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["state"]) => reply(StatusCode::OK, &site.snapshot()),
        ("GET", ["requests"]) => reply(StatusCode::OK, &json!(site.requests())),
        ("DELETE", ["faults"]) => {
            site.clear_faults();
            ok()
        }
        ("POST", ["faults"]) => {
            let f: FaultRequest = match serde_json::from_slice(&body) {
                Ok(f) => f,
                Err(e) => return bad(format!("fault: {e}")),
            };
            let kind = match (f.status, f.delay_ms) {
                (Some(status), None) => FaultKind::Status {
                    status,
                    message: f.message.unwrap_or_else(|| "injected fault".into()),
                },
                (None, Some(ms)) => FaultKind::Delay(Duration::from_millis(ms)),
                _ => return bad("give exactly one of 'status' and 'delay_ms'".into()),
            };
            site.inject(Fault {
                node: f.node,
                method: f.method,
                path: f.path,
                remaining: f.count,
                kind,
            });
            ok()
        }
        ("POST", ["nodes", name, action]) => {
            let Some(node) = site.node(name) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    &json!({"error": format!("no node '{name}'")}),
                );
            };
            match *action {
                "down" => {
                    let mode = match q("mode").as_deref() {
                        None | Some("refuse") => DownMode::Refuse,
                        Some("hang") => DownMode::Hang,
                        Some(m) => return bad(format!("mode '{m}': use refuse or hang")),
                    };
                    node.set_down(mode).await;
                    ok()
                }
                "up" => {
                    node.set_up().await;
                    ok()
                }
                "expected" => match q("votes").and_then(|v| v.parse().ok()) {
                    Some(votes) => {
                        site.set_expected_votes(name, votes);
                        ok()
                    }
                    None => bad("give ?votes=N".into()),
                },
                "fail-join-halfway" => {
                    node.fail_next_joins_halfway(
                        q("count").and_then(|c| c.parse().ok()).unwrap_or(1),
                    );
                    ok()
                }
                "reinstall" => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let pw = v["root_password"]
                        .as_str()
                        .map_or_else(|| node.root_password(), str::to_string);
                    match node.reinstall(&pw, None).await {
                        Ok(()) => reply(StatusCode::OK, &json!(node.endpoint())),
                        Err(e) => bad(e.to_string()),
                    }
                }
                other => bad(format!("unknown action '{other}'")),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no control route {method} {path}")}),
        ),
    }
}
