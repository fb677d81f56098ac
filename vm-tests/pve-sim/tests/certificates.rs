//! `POST /nodes/{node}/certificates/custom`: pveproxy's custom certificate, as PVE handles it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{create_cluster, join, Pve};
use tappaas_pve_sim::{Latencies, NodeCert, SimConfig, SimSite};

const UNDEFINED: &str =
    "property is not defined in schema and the schema does not allow additional properties";

async fn site(nodes: u8, restart: Duration) -> SimSite {
    let mut config = SimConfig::with_nodes(nodes);
    config.latencies = Latencies {
        pveproxy_restart: restart,
        ..Latencies::default()
    };
    SimSite::start(config).await.unwrap()
}

const PATH: &str = "/nodes/tappaas1/certificates/custom";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_certificate_is_served_after_pveproxy_restarts() {
    let site = site(1, Duration::from_millis(300)).await;
    let n1 = site.node("tappaas1").unwrap();
    let own = n1.fingerprint();
    let new = NodeCert::generate("tappaas1").unwrap();
    assert_ne!(new.fingerprint(), own);
    let pve = Pve::login(&n1).await;
    let (cert, key) = (new.cert_pem(), new.key_pem());
    // Text before the PEM block is ignored, as PVE strips it.
    let chain = format!("subject=CN = tappaas1\n{cert}");
    let info = pve
        .ok(
            "POST",
            PATH,
            &[("certificates", &chain), ("key", &key), ("restart", "1")],
        )
        .await;
    assert_eq!(info["fingerprint"], new.fingerprint());
    assert_eq!(info["filename"], "pveproxy-ssl.pem");
    assert_eq!(info["pem"], cert);
    // Written at once; served only once pveproxy has restarted.
    assert_eq!(n1.custom_cert_pem().as_deref(), Some(cert.as_str()));
    assert_eq!(n1.fingerprint(), own);
    assert_eq!(pve.ok("GET", "/version", &[]).await["release"], "9.1");
    assert!(
        site.wait_for(Duration::from_secs(5), |_| n1.fingerprint()
            == new.fingerprint())
            .await
    );
    // The old connection is gone and the old certificate with it: a client pinning it fails.
    assert!(pve.call("GET", "/version", &[]).await.is_err());
    // A client pinning the new one gets in, and the cluster reports the new fingerprint.
    let pve = Pve::login(&n1).await;
    let nodes = pve.ok("GET", "/nodes", &[]).await;
    assert_eq!(nodes[0]["ssl_fingerprint"], new.fingerprint());
    // The private key never reaches the request log.
    let upload = site
        .requests()
        .into_iter()
        .find(|r| r.path == PATH)
        .unwrap();
    assert_eq!(upload.params["key"], "***");
    assert_eq!(upload.status, 200);
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_custom_certificate_is_replaced_only_with_force() {
    let site = site(1, Duration::from_millis(20)).await;
    let n1 = site.node("tappaas1").unwrap();
    let (first, second) = (
        NodeCert::generate("tappaas1").unwrap(),
        NodeCert::generate("tappaas1").unwrap(),
    );
    let pve = Pve::login(&n1).await;
    pve.ok(
        "POST",
        PATH,
        &[
            ("certificates", &first.cert_pem()),
            ("key", &first.key_pem()),
            ("restart", "1"),
        ],
    )
    .await;
    assert!(
        site.wait_for(Duration::from_secs(5), |_| n1.fingerprint()
            == first.fingerprint())
            .await
    );
    let pve = Pve::login(&n1).await;
    let params = [
        ("certificates", second.cert_pem()),
        ("key", second.key_pem()),
        ("restart", "1".to_string()),
    ];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = pve.call("POST", PATH, &params).await.unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(
        r.body["message"],
        "Custom certificate file exists but force flag is not set.\n"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n1.fingerprint(), first.fingerprint());
    assert_eq!(n1.custom_cert_pem(), Some(first.cert_pem()));

    let mut forced = params.clone();
    forced.push(("force", "1"));
    let info = pve.ok("POST", PATH, &forced).await;
    assert_eq!(info["fingerprint"], second.fingerprint());
    assert!(
        site.wait_for(Duration::from_secs(5), |_| n1.fingerprint()
            == second.fingerprint())
            .await
    );
    // Without `key`, the existing key is kept: re-uploading the same certificate works.
    let pve = Pve::login(&n1).await;
    let info = pve
        .ok(
            "POST",
            PATH,
            &[("certificates", &second.cert_pem()), ("force", "1")],
        )
        .await;
    assert_eq!(info["fingerprint"], second.fingerprint());
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_the_certificates_is_refused_and_nothing_changes() {
    let site = site(1, Duration::from_millis(20)).await;
    let n1 = site.node("tappaas1").unwrap();
    let own = n1.fingerprint();
    let (cert, other) = (
        NodeCert::generate("tappaas1").unwrap(),
        NodeCert::generate("tappaas1").unwrap(),
    );
    let pve = Pve::login(&n1).await;
    let r = pve
        .call(
            "POST",
            PATH,
            &[
                ("certificates", &cert.cert_pem()),
                ("key", &other.key_pem()),
                ("force", "1"),
                ("restart", "1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.error("key")
            .starts_with("Failed to validate private key and certificate"),
        "{r:?}"
    );
    // Without a key and without an existing one there is nothing to serve with.
    let r = pve
        .call("POST", PATH, &[("certificates", &cert.cert_pem())])
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.error("key"),
        "Attempted to upload custom certificate without (existing) key."
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n1.fingerprint(), own);
    assert_eq!(n1.custom_cert_pem(), None);
    pve.ok("GET", "/version", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberately_wrong_uploads_are_rejected_by_the_schema_check() {
    let site = site(1, Duration::from_millis(20)).await;
    let n1 = site.node("tappaas1").unwrap();
    let cert = NodeCert::generate("tappaas1").unwrap();
    let pve = Pve::login(&n1).await;
    // The certificate is not optional.
    let r = pve
        .call("POST", PATH, &[("key", &cert.key_pem())])
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error("certificates"),
        "property is missing and it is not optional"
    );
    // Not PEM; a key where the certificate chain belongs; an unknown parameter.
    for (param, value, message) in [
        (
            "certificates",
            "MIIBszCCAVmg",
            "not a valid PEM-formatted string.",
        ),
        (
            "certificates",
            cert.key_pem().as_str(),
            "not a valid PEM-formatted string.",
        ),
        ("key", "just text", "not a valid PEM-formatted string."),
    ] {
        let mut params = vec![("certificates", cert.cert_pem()), ("key", cert.key_pem())];
        params.retain(|(k, _)| *k != param);
        params.push((param, value.to_string()));
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = pve.call("POST", PATH, &params).await.unwrap();
        assert_eq!(r.status, 400, "{param}: {r:?}");
        assert_eq!(r.error(param), message, "{r:?}");
    }
    let r = pve
        .call(
            "POST",
            PATH,
            &[("certificates", &cert.cert_pem()), ("reload", "1")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.error("reload"), UNDEFINED);
    let r = pve
        .call(
            "POST",
            PATH,
            &[("certificates", &cert.cert_pem()), ("force", "perhaps")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(!r.error("force").is_empty(), "{r:?}");
    assert_eq!(site.rejected_requests().len(), 6);
    assert_eq!(n1.custom_cert_pem(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_pin_the_uploaded_certificate_and_a_join_keeps_theirs() {
    let site = site(2, Duration::from_millis(20)).await;
    let (n1, n2) = (
        site.node("tappaas1").unwrap(),
        site.node("tappaas2").unwrap(),
    );
    let (c1, c2) = (
        NodeCert::generate("tappaas1").unwrap(),
        NodeCert::generate("tappaas2").unwrap(),
    );
    Pve::login(&n1)
        .await
        .ok(
            "POST",
            PATH,
            &[
                ("certificates", &c1.cert_pem()),
                ("key", &c1.key_pem()),
                ("restart", "1"),
            ],
        )
        .await;
    assert!(
        site.wait_for(Duration::from_secs(5), |_| n1.fingerprint()
            == c1.fingerprint())
            .await
    );
    assert_eq!(create_cluster(&n1).await["exitstatus"], "OK");
    // tappaas2 gets its custom certificate without a restart: written, not served yet.
    let own2 = n2.fingerprint();
    Pve::login(&n2)
        .await
        .ok(
            "POST",
            "/nodes/tappaas2/certificates/custom",
            &[("certificates", &c2.cert_pem()), ("key", &c2.key_pem())],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n2.fingerprint(), own2);
    // The join pins tappaas1's uploaded certificate; the join's pveproxy restart loads
    // tappaas2's, and keeps it (a custom certificate is not re-issued).
    let (status, log) = join(&n2, &n1, &[]).await;
    assert_eq!(status["exitstatus"], "OK", "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains(&c1.fingerprint())),
        "{log:#?}"
    );
    assert_eq!(n2.fingerprint(), c2.fingerprint());
    assert_eq!(n1.fingerprint(), c1.fingerprint());
    let nodes = Pve::login(&n1).await.ok("GET", "/nodes", &[]).await;
    let fps: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ssl_fingerprint"].as_str().unwrap())
        .collect();
    assert!(fps.contains(&c1.fingerprint().as_str()), "{fps:?}");
    assert!(fps.contains(&c2.fingerprint().as_str()), "{fps:?}");
    assert_eq!(site.return_violations(), Vec::<String>::new());
}
