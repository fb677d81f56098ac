#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `[cluster]`'s join settings: defaults, checks, and that the secret never shows.

use tappaas_site::{parse, ParseOptions};

const SITE: &str = include_str!("../../../docs/examples/three-node-site.toml");

fn with_cluster(extra: &str) -> String {
    format!("{SITE}\n[cluster]\n{extra}\n")
}

#[test]
fn join_settings_default_to_absent_and_two_hours() {
    let site = parse(SITE, &ParseOptions::default()).unwrap();
    assert_eq!(site.cluster.name, "TAPPaaS");
    assert_eq!(site.cluster.join_secret, None);
    assert_eq!(site.cluster.primary_fingerprint, None);
    assert_eq!(site.cluster.join_wait_minutes, 120);
}

#[test]
fn join_settings_are_read_and_the_secret_is_redacted() {
    let fp = vec!["ab"; 32].join(":");
    let src = with_cluster(&format!(
        "join-secret = \"Zx8-one-time-secret-42\"\nprimary-fingerprint = \"{fp}\"\njoin-wait-minutes = 30"
    ));
    let site = parse(&src, &ParseOptions::default()).unwrap();
    assert_eq!(
        site.cluster.join_secret.as_deref(),
        Some("Zx8-one-time-secret-42")
    );
    assert_eq!(site.cluster.primary_fingerprint, Some(fp.to_uppercase()));
    assert_eq!(site.cluster.join_wait_minutes, 30);
    assert!(!format!("{site:?}").contains("Zx8-one-time"));
}

#[test]
fn bad_join_settings_are_refused_without_echoing_the_secret() {
    let src = with_cluster(
        "join-secret = \"short-secret\"\nprimary-fingerprint = \"AB:CD\"\njoin-wait-minutes = 0",
    );
    let diags = parse(&src, &ParseOptions::default()).unwrap_err();
    let text = tappaas_site::render_all(&diags, "site.toml");
    assert!(text.contains("at least 16 are needed"), "{text}");
    assert!(!text.contains("short-secret\" is"), "{text}");
    assert!(text.contains("is not a SHA-256 fingerprint"), "{text}");
    assert!(text.contains("join-wait-minutes"), "{text}");
}
