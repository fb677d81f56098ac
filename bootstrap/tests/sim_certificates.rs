#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The primary's pre-made API certificate, end to end against the PVE simulator: the site file
//! carries `primary-certificate` and `primary-key` (made as `tappaas-installer join-keys`
//! makes them), the installer left them in the primary's `/etc/tappaas/tls/`, the primary's
//! Proxmox starts with its own self-signed certificate, and the real `api-certificate` step
//! installs the site's, so the members can pin it from the site file alone.

mod common;

use common::*;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tappaas_bootstrap::state::StepState;
use tappaas_pve_sim::Latencies;

const CUSTOM: &str = "/nodes/tappaas1/certificates/custom";

/// An ECDSA P-256 self-signed certificate for the primary and its PKCS#8 key, as `join-keys`.
fn primary_certificate() -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = CertificateParams::new(vec![
        "tappaas1".to_string(),
        "tappaas1.mgmt.internal".to_string(),
        "10.0.0.10".to_string(),
    ])
    .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn run_all(lab: &Lab) {
    std::thread::scope(|s| {
        let handles: Vec<_> = [1u8, 2, 3]
            .into_iter()
            .map(|n| s.spawn(move || (n, lab.run_until_done(n, 5))))
            .collect();
        // Every node's failure, not only the first one joined: a member's is usually the cause.
        let failed: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter_map(|(n, (r, errors))| {
                r.err()
                    .map(|e| format!("tappaas{n}: {e:#}\nearlier: {errors:#?}"))
            })
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    });
}

fn pinned(lab: &Lab) -> String {
    lab.config(2).site.cluster.pinned_fingerprint().unwrap()
}

fn uploads(lab: &Lab) -> Vec<tappaas_pve_sim::RequestRecord> {
    lab.site
        .requests()
        .into_iter()
        .filter(|r| r.path == CUSTOM)
        .collect()
}

#[test]
fn the_primary_serves_the_sites_certificate_and_the_members_pin_it() {
    let (cert, key) = primary_certificate();
    let latencies = Latencies {
        pveproxy_restart: std::time::Duration::from_millis(200),
        ..Latencies::default()
    };
    let lab = Lab::with_primary_certificate(latencies, &cert, &key, &key);
    let pin = pinned(&lab);
    let n1 = lab.site.node("tappaas1").unwrap();
    assert_ne!(
        n1.fingerprint(),
        pin,
        "the primary starts with its own certificate"
    );
    // What the installer wrote: the key on the primary only, and in no site copy.
    assert!(lab.root(1).join("etc/tappaas/tls/api.key").exists());
    for n in 1..=3 {
        let site = std::fs::read_to_string(lab.root(n).join("etc/tappaas/site.toml")).unwrap();
        assert!(!site.contains("PRIVATE KEY"), "tappaas{n}'s site copy");
        assert!(site.contains(&pin), "tappaas{n}'s site copy pins {pin}");
        if n > 1 {
            assert!(!lab.root(n).join("etc/tappaas/tls").exists());
        }
    }

    run_all(&lab);

    // The primary serves the pinned certificate, and Proxmox holds the key, not our file.
    assert_eq!(n1.fingerprint(), pin);
    assert_eq!(n1.custom_cert_pem().as_deref(), Some(cert.as_str()));
    assert!(!lab.root(1).join("etc/tappaas/tls/api.key").exists());
    assert!(lab.root(1).join("etc/tappaas/tls/api.pem").exists());
    // One upload, accepted, with the key kept out of the request log.
    let up = uploads(&lab);
    assert_eq!(up.len(), 1, "{up:#?}");
    assert_eq!(up[0].status, 200);
    assert_eq!(up[0].params["key"], "***");
    assert_eq!(up[0].params["force"], "1");
    assert_eq!(up[0].params["restart"], "1");
    // The members pinned it and joined: one quorate cluster of three.
    for n in ["tappaas1", "tappaas2", "tappaas3"] {
        assert!(lab.site.quorate(n), "{n} not quorate");
        assert!(lab.site.same_cluster("tappaas1", n), "{n} not a member");
    }
    assert_eq!(
        lab.site.cluster_members("tappaas1"),
        ["tappaas1", "tappaas2", "tappaas3"]
    );
    for n in 1..=3 {
        let st = lab.state(n);
        assert!(st.all_done(), "{st:#?}");
        if n == 1 {
            assert_eq!(st.step("api-certificate").unwrap().attempts, 1, "{st:#?}");
        }
    }
    // The joins kept the primary's custom certificate.
    assert_eq!(n1.fingerprint(), pin);
    assert_no_request_rejected(&lab);
    assert_eq!(lab.site.return_violations(), Vec::<String>::new());

    // A rerun changes nothing: no second upload, the same certificate.
    lab.run_once(1).unwrap();
    assert_eq!(uploads(&lab).len(), 1);
    assert_eq!(n1.fingerprint(), pin);
}

#[test]
fn a_key_that_is_not_the_certificates_is_a_clear_persisted_error_and_nothing_changes() {
    let (cert, key) = primary_certificate();
    let (_, other_key) = primary_certificate();
    let lab = Lab::with_primary_certificate(Latencies::default(), &cert, &key, &other_key);
    let n1 = lab.site.node("tappaas1").unwrap();
    let own = n1.fingerprint();
    for attempt in 1..=2 {
        let err = format!("{:#}", lab.run_once(1).unwrap_err());
        assert!(err.contains("step api-certificate failed"), "{err}");
        assert!(
            err.contains("Proxmox refused /etc/tappaas/tls/api.key: it is not the key of /etc/tappaas/tls/api.pem"),
            "{err}"
        );
        assert!(err.contains("Failed to validate private key"), "{err}");
        assert!(
            !err.contains("PRIVATE KEY"),
            "the key leaked into the error: {err}"
        );
        // Persisted for `status`, and nothing after the step ran.
        let st = lab.state(1);
        let step = st.step("api-certificate").unwrap();
        assert_eq!(step.state, StepState::Failed);
        assert_eq!(step.attempts, attempt);
        assert!(
            step.last_error
                .as_deref()
                .unwrap()
                .contains("is not the key of"),
            "{step:?}"
        );
        assert_eq!(
            st.step("create-cluster").unwrap().state,
            StepState::Pending,
            "{st:#?}"
        );
        let state_file =
            std::fs::read_to_string(lab.root(1).join("var/lib/tappaas/state.json")).unwrap();
        assert!(!state_file.contains("PRIVATE KEY"));
        // Nothing half-done: the node serves its own certificate, has no custom one, is in no
        // cluster, and the files are there for the operator to fix.
        assert_eq!(n1.fingerprint(), own);
        assert_eq!(n1.custom_cert_pem(), None);
        assert_eq!(lab.site.cluster_name("tappaas1"), None);
        assert!(lab.root(1).join("etc/tappaas/tls/api.key").exists());
        assert!(!lab.root(1).join("etc/pve/local/pveproxy-ssl.pem").exists());
    }
    let up = uploads(&lab);
    assert_eq!(up.len(), 2, "{up:#?}");
    assert!(up
        .iter()
        .all(|r| r.status == 400 && r.params["key"] == "***"));
}

#[test]
fn a_key_left_behind_by_an_interrupted_run_is_removed_without_a_second_upload() {
    let (cert, key) = primary_certificate();
    let lab = Lab::with_primary_certificate(Latencies::default(), &cert, &key, &key);
    let pin = pinned(&lab);
    let n1 = lab.site.node("tappaas1").unwrap();
    // An earlier run got the certificate installed and was cut off before removing the key.
    let root_pw = n1.root_password();
    let client = tappaas_bootstrap::pve::PveClient::new(
        &n1.url(),
        tappaas_bootstrap::pve::Fingerprint::parse(&n1.fingerprint()).unwrap(),
        tappaas_bootstrap::pve::Credentials::Password {
            user: "root@pam".into(),
            password: tappaas_bootstrap::pve::Secret::new(root_pw),
        },
        lab.options,
    )
    .unwrap();
    tappaas_bootstrap::pve::PveApi::set_custom_certificate(&client, "tappaas1", &cert, &key)
        .unwrap();
    assert!(lab.rt.block_on(
        lab.site
            .wait_for(std::time::Duration::from_secs(5), |_| n1.fingerprint()
                == pin)
    ));
    let pveproxy = lab.root(1).join("etc/pve/local/pveproxy-ssl.pem");
    assert!(lab.rt.block_on(
        lab.site
            .wait_for(std::time::Duration::from_secs(5), |_| pveproxy.exists())
    ));
    assert!(lab.root(1).join("etc/tappaas/tls/api.key").exists());

    run_all(&lab);
    assert!(!lab.root(1).join("etc/tappaas/tls/api.key").exists());
    assert_eq!(uploads(&lab).len(), 1, "the agent uploaded again");
    assert_eq!(n1.fingerprint(), pin);
    assert!(lab.site.same_cluster("tappaas1", "tappaas3"));
}
