#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The API client against a real TLS server (rcgen certificate, rustls server): the pinned
//! fingerprint is accepted, any other is refused before a byte of the request is sent, and
//! Proxmox's error messages come through.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tappaas_bootstrap::pve::*;

struct Server {
    url: String,
    fingerprint: Fingerprint,
    /// Request lines (method and path) the server saw, with the auth headers it got.
    seen: Arc<Mutex<Vec<String>>>,
}

fn serve() -> Server {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let fingerprint = Fingerprint::of_der(cert.cert.der());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let _ = handle(&mut tls, &seen);
            });
        }
    });
    Server {
        url,
        fingerprint,
        seen,
    }
}

fn handle(tls: &mut impl ReadWrite, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    loop {
        let mut reader = BufReader::new(&mut *tls);
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request = line.trim().to_string();
        let mut len = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim().to_string();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("cookie:")
                || lower.starts_with("csrfpreventiontoken:")
                || lower.starts_with("authorization:")
            {
                auth.push_str(&format!(" [{h}]"));
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        drop(reader);
        let body = String::from_utf8_lossy(&body).to_string();
        seen.lock().unwrap().push(format!("{request}{auth} {body}"));
        let (status, json) = if request.starts_with("POST /api2/json/access/ticket") {
            if body.contains("password=right") {
                (
                    "200 OK",
                    r#"{"data":{"ticket":"PVE:root@pam:T","CSRFPreventionToken":"C","username":"root@pam"}}"#,
                )
            } else {
                ("401 authentication failure", r#"{"data":null}"#)
            }
        } else if request.starts_with("GET /api2/json/cluster/status") {
            (
                "200 OK",
                r#"{"data":[{"type":"cluster","name":"TAPPaaS","id":"cluster","quorate":1,"nodes":1},{"type":"node","name":"tappaas1","id":"node/tappaas1","online":1,"nodeid":1,"local":1}]}"#,
            )
        } else if request.starts_with("POST /api2/json/cluster/config ") {
            (
                "500 cluster config '/etc/pve/corosync.conf' already exists",
                r#"{"data":null,"message":"cluster config '/etc/pve/corosync.conf' already exists\n"}"#,
            )
        } else if request.starts_with("POST /api2/json/storage") {
            (
                "400 Parameter verification failed.",
                r#"{"data":null,"errors":{"pool":"property is missing and it is not optional"}}"#,
            )
        } else {
            ("404 Not Found", r#"{"data":null}"#)
        };
        write!(
            tls,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        )?;
        tls.flush()?;
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn opts() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
    }
}

fn password(p: &str) -> Credentials {
    Credentials::Password {
        user: "root@pam".into(),
        password: Secret::new(p),
    }
}

#[test]
fn the_pinned_certificate_is_accepted_and_the_ticket_is_used() {
    let s = serve();
    let c = PveClient::new(&s.url, s.fingerprint, password("right"), opts()).unwrap();
    let view = ClusterView::from_entries(&c.cluster_status().unwrap());
    assert_eq!(view.cluster.as_deref(), Some("TAPPaaS"));
    assert!(view.quorate && view.node_online("tappaas1"));
    let seen = s.seen.lock().unwrap().clone();
    assert!(seen[0].starts_with("POST /api2/json/access/ticket"));
    assert!(seen[1].contains("PVEAuthCookie=PVE:root@pam:T"), "{seen:?}");
}

#[test]
fn another_certificate_is_refused_before_anything_is_sent() {
    let s = serve();
    let mut wrong = s.fingerprint;
    wrong.0[0] ^= 0xff;
    let c = PveClient::new(&s.url, wrong, password("right"), opts()).unwrap();
    match c.cluster_status() {
        Err(PveError::FingerprintMismatch { expected, got, .. }) => {
            assert_eq!(expected, wrong);
            assert_eq!(got, s.fingerprint);
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    // Not even the log-in (with the password) reached the server.
    assert!(s.seen.lock().unwrap().is_empty());
    let err = c.cluster_status().unwrap_err();
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains(&s.fingerprint.to_string()),
        "{err}"
    );
}

#[test]
fn proxmox_messages_come_through() {
    let s = serve();
    let c = PveClient::new(&s.url, s.fingerprint, password("wrong"), opts()).unwrap();
    let err = c.cluster_status().unwrap_err();
    assert!(
        matches!(&err, PveError::Login { user, .. } if user == "root@pam"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"), "{err}");

    let c = PveClient::new(&s.url, s.fingerprint, password("right"), opts()).unwrap();
    let err = c
        .create_cluster(&CreateCluster {
            clustername: "TAPPaaS".into(),
            nodeid: Some(1),
            link0: "address=10.0.0.10".into(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = c
        .storage_create(&StorageCreate::zfspool(
            "tank1",
            "tank1",
            &["tappaas1".into()],
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pool: property is missing"), "{msg}");
    // The CSRF token goes with every write.
    let seen = s.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("POST /api2/json/cluster/config ")
                && l.to_ascii_lowercase().contains("[csrfpreventiontoken: c]")),
        "{seen:?}"
    );
}

#[test]
fn a_closed_port_is_transient() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = PveClient::new(
        &format!("https://127.0.0.1:{port}"),
        Fingerprint([0; 32]),
        password("x"),
        opts(),
    )
    .unwrap();
    let err = c.cluster_status().unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[test]
fn an_api_token_goes_in_the_authorization_header_without_a_login() {
    let s = serve();
    let c = PveClient::new(
        &s.url,
        s.fingerprint,
        Credentials::Token {
            id: "root@pam!tappaas-bootstrap".into(),
            secret: Secret::new("0e9a0c6a-6c44-4b5e-8f1a-4c4a0d1f2e3b"),
        },
        opts(),
    )
    .unwrap();
    c.cluster_status().unwrap();
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "no ticket request: {seen:?}");
    assert!(
        seen[0].to_ascii_lowercase().contains(
            "[authorization: pveapitoken=root@pam!tappaas-bootstrap=0e9a0c6a-6c44-4b5e-8f1a-4c4a0d1f2e3b]"
        ),
        "{seen:?}"
    );
    assert!(!format!("{c:?}").contains("0e9a0c6a"));
}
