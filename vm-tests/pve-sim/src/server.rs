//! One HTTPS listener per simulated node (hyper 1 over tokio-rustls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::api::{self, ApiRequest, ApiResponse, Shared};
use crate::schema::percent_decode;
use crate::site::DownMode;

/// PVE's API root; everything else answers 501.
const PREFIX: &str = "/api2/json";

/// A node's port: listening, or bound without listening. A bound port that does not listen
/// refuses connections (RST) like a powered-off node, while no other program can take it, so
/// the node comes back on the same port.
#[derive(Debug)]
pub enum Port {
    /// Accepting connections.
    Listening(TcpListener),
    /// Bound, not listening.
    Reserved(socket2::Socket),
}

/// Bind `127.0.0.1:port` (0: any free port) without listening yet.
pub fn reserve(port: u16) -> std::io::Result<socket2::Socket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // Connections the node closed linger in TIME_WAIT on this port; they must not block it.
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(s)
}

/// Start listening on a reserved socket (needs the tokio runtime).
pub fn listen(s: socket2::Socket) -> std::io::Result<TcpListener> {
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// Serve `node` until the task is aborted, following its up/down state.
pub async fn serve_node(shared: Arc<Shared>, node: String, first: Port) {
    let mut changed = shared.changed.subscribe();
    let mut port_state = Some(first);
    loop {
        let (down, port) = {
            let st = shared.lock();
            match st.nodes.get(&node) {
                Some(n) => (n.down, n.port),
                None => return,
            }
        };
        port_state = match (down, port_state.take()) {
            (Some(DownMode::Refuse), Some(Port::Listening(l))) => {
                drop(l);
                reserve(port).ok().map(Port::Reserved)
            }
            (Some(DownMode::Refuse), other) => other,
            (_, Some(Port::Reserved(s))) => listen(s).ok().map(Port::Listening),
            (_, Some(Port::Listening(l))) => Some(Port::Listening(l)),
            (_, None) => reserve(port).and_then(listen).ok().map(Port::Listening),
        };
        let listening = matches!(port_state, Some(Port::Listening(_)));
        if let Some(n) = shared.lock().nodes.get_mut(&node) {
            n.listening = listening;
        }
        match &port_state {
            Some(Port::Listening(l)) => {
                tokio::select! {
                    accepted = l.accept() => {
                        if let Ok((tcp, _)) = accepted {
                            tokio::spawn(serve_connection(Arc::clone(&shared), node.clone(), tcp));
                        }
                    }
                    r = changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                    }
                }
            }
            Some(Port::Reserved(_)) => {
                if changed.changed().await.is_err() {
                    return;
                }
            }
            None if down == Some(DownMode::Refuse) => {
                if changed.changed().await.is_err() {
                    return;
                }
            }
            None => {
                // The port is taken for the moment (by whoever grabbed it while we were down);
                // try again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Counts a node's open connections while alive.
struct Open {
    shared: Arc<Shared>,
    node: String,
}

impl Open {
    fn new(shared: &Arc<Shared>, node: &str) -> Self {
        if let Some(n) = shared.lock().nodes.get_mut(node) {
            n.connections += 1;
        }
        Self {
            shared: Arc::clone(shared),
            node: node.to_string(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().nodes.get_mut(&self.node) {
            n.connections = n.connections.saturating_sub(1);
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, node: String, tcp: tokio::net::TcpStream) {
    let _open = Open::new(&shared, &node);
    let config = {
        let st = shared.lock();
        match st.nodes.get(&node).map(|n| n.cert.server_config()) {
            Some(Ok(c)) => c,
            _ => return,
        }
    };
    let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else {
        return;
    };
    let mut changed = shared.changed.subscribe();
    let (shared2, node2) = (Arc::clone(&shared), node.clone());
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared2);
        let node = node2.clone();
        async move { answer(shared, node, req).await }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    // A node going down (Refuse) drops its open connections too, so clients with pooled
    // keep-alive connections see it at once instead of on their next request; so does a new
    // certificate (pveproxy restarts to load it).
    let generation = shared.lock().nodes.get(&node).map(|n| n.generation);
    let refused = async {
        loop {
            let (down, gen) = {
                let st = shared.lock();
                let n = st.nodes.get(&node);
                (n.and_then(|n| n.down), n.map(|n| n.generation))
            };
            if down == Some(DownMode::Refuse)
                || gen != generation
                || changed.changed().await.is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        _ = conn => {}
        () = refused => {}
    }
}

/// An error here closes the connection (what a node going down does to open connections).
#[derive(Debug)]
struct NodeDown;

impl std::fmt::Display for NodeDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("node is down")
    }
}

impl std::error::Error for NodeDown {}

async fn answer(
    shared: Arc<Shared>,
    node: String,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, NodeDown> {
    // A down node in Hang mode never answers; in Refuse mode it drops the connection.
    loop {
        let down = shared.lock().nodes.get(&node).and_then(|n| n.down);
        match down {
            None => break,
            Some(DownMode::Refuse) => return Err(NodeDown),
            Some(DownMode::Hang) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let api_req = match parse_request(req).await {
        Ok(r) => r,
        Err(resp) => return Ok(to_http(resp)),
    };
    let resp = api::handle(&shared, &node, api_req).await;
    Ok(to_http(resp))
}

async fn parse_request(req: Request<Incoming>) -> Result<ApiRequest, ApiResponse> {
    let method = req.method().as_str().to_string();
    let uri = req.uri().clone();
    let Some(path) = uri.path().strip_prefix(PREFIX) else {
        return Err(ApiResponse::error(
            501,
            format!("Method '{method} {}' not implemented", uri.path()),
        ));
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ticket = header("cookie").and_then(|c| {
        c.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "PVEAuthCookie")
            .map(|(_, v)| percent_decode(v))
    });
    let csrf = header("csrfpreventiontoken");
    let api_token = header("authorization").and_then(|a| {
        a.strip_prefix("PVEAPIToken=")
            .or_else(|| a.strip_prefix("PVEAPIToken "))
            .map(str::to_string)
    });
    let json_body = header("content-type").is_some_and(|c| c.starts_with("application/json"));
    let mut params: Vec<(String, String)> = match uri.query() {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiResponse::error(400, format!("unable to parse query string: {e}")))?,
        None => Vec::new(),
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiResponse::error(400, format!("reading request body: {e}")))?
        .to_bytes();
    if !body.is_empty() {
        if json_body {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiResponse::error(400, format!("unable to parse JSON body: {e}")))?;
            let Value::Object(map) = v else {
                return Err(ApiResponse::error(400, "JSON body must be an object"));
            };
            for (k, v) in map {
                let s = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => u8::from(b).to_string(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                params.push((k, s));
            }
        } else {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiResponse::error(400, format!("unable to parse form body: {e}")))?;
            params.extend(form);
        }
    }
    Ok(ApiRequest {
        method,
        path: path.to_string(),
        params,
        ticket,
        csrf,
        api_token,
    })
}

fn to_http(resp: ApiResponse) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&resp.body).unwrap_or_default();
    let mut out = Response::new(Full::new(Bytes::from(body)));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Some(msg) = resp.message {
        // PVE puts the error in the status line; keep it to one printable line.
        let line: String = msg
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(line.into_bytes()) {
            out.extensions_mut().insert(reason);
        }
    }
    out
}
