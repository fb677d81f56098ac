#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `[cluster]`'s join settings: defaults, checks, and that the secret never shows.

use tappaas_site::{parse, ParseOptions};

const SITE: &str = include_str!("../../../docs/examples/three-node-site.toml");

/// The three-node example with a `[cluster]` table holding `extra` and, unless `extra` sets
/// one, a join secret (without one the site draws a warning of its own).
fn with_cluster(extra: &str) -> String {
    let secret = if extra.contains("join-secret") {
        ""
    } else {
        "join-secret = \"Zx8-one-time-secret-42\"\n"
    };
    format!("{SITE}\n[cluster]\n{secret}{extra}\n")
}

#[test]
fn several_nodes_without_a_join_secret_draw_a_warning() {
    let (site, diags) = tappaas_site::parse_with_warnings(SITE, &ParseOptions::default());
    assert!(site.is_some());
    let text = tappaas_site::render_all(&diags, "site.toml");
    assert_eq!(diags.len(), 1, "{text}");
    assert_eq!(diags[0].severity, tappaas_site::Severity::Warning);
    assert_eq!(diags[0].path, "cluster.join-secret");
    assert!(text.contains("3 nodes and no join-secret"), "{text}");
    assert!(text.contains("tappaas-installer join-keys"), "{text}");
    // With a secret, nothing to say (one node forms no cluster: see valid.rs).
    let (_, diags) = tappaas_site::parse_with_warnings(&with_cluster(""), &ParseOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
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

/// A test-only certificate and its key (made with openssl; never used outside the tests).
const CERT: &str = include_str!("data/primary.pem");
const KEY: &str = include_str!("data/primary.key");
/// `openssl x509 -in tests/data/primary.pem -noout -fingerprint -sha256`.
const CERT_FP: &str = "FB:12:6F:27:0B:78:B5:B3:65:62:84:0E:81:22:E9:93:D7:B5:20:F5:F8:39:A0:91:22:15:07:85:CB:C2:FA:24";

/// The body of the key (between its armour lines): what must never show.
fn key_body() -> String {
    KEY.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn a_certificate_without_a_fingerprint_pins_the_certificates_own() {
    let src = with_cluster(&format!(
        "primary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"\"\"\n{KEY}\"\"\""
    ));
    let site = parse(&src, &ParseOptions::default()).unwrap();
    assert_eq!(site.cluster.primary_fingerprint, None);
    assert_eq!(site.cluster.primary_certificate.as_deref(), Some(CERT));
    assert_eq!(site.cluster.primary_key.as_deref(), Some(KEY));
    assert_eq!(site.cluster.pinned_fingerprint().as_deref(), Some(CERT_FP));
    let debug = format!("{site:?}");
    for line in KEY.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!debug.contains(line), "Debug shows the key: {debug}");
    }
    assert!(
        debug.contains("primary_key: Some(\"<redacted>\")"),
        "{debug}"
    );
}

#[test]
fn a_fingerprint_given_with_the_certificate_must_be_its_own() {
    // The same fingerprint in lower case is the same fingerprint.
    let src = with_cluster(&format!(
        "primary-fingerprint = \"{}\"\nprimary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"\"\"\n{KEY}\"\"\"",
        CERT_FP.to_lowercase()
    ));
    let site = parse(&src, &ParseOptions::default()).unwrap();
    assert_eq!(site.cluster.pinned_fingerprint().as_deref(), Some(CERT_FP));

    let other = vec!["AB"; 32].join(":");
    let src = with_cluster(&format!(
        "primary-fingerprint = \"{other}\"\nprimary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"\"\"\n{KEY}\"\"\""
    ));
    let diags = parse(&src, &ParseOptions::default()).unwrap_err();
    let text = tappaas_site::render_all(&diags, "site.toml");
    assert_eq!(diags.len(), 1, "{text}");
    assert_eq!(diags[0].path, "cluster.primary-fingerprint");
    assert!(text.contains(&format!("which is {CERT_FP}")), "{text}");
}

#[test]
fn a_bad_key_is_refused_without_showing_it() {
    // One line, so that the source line of the diagnostic is the key's line.
    let broken = KEY.replace("-----END PRIVATE KEY-----", "-----END PRIVATE KEYS-----");
    let src = with_cluster(&format!(
        "primary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"{}\"",
        broken.replace('\n', "\\n")
    ));
    let diags = parse(&src, &ParseOptions::default()).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].path, "cluster.primary-key");
    assert!(
        diags[0].message.contains("-----END PRIVATE KEY-----"),
        "{diags:?}"
    );
    let body = key_body();
    let shown = [
        tappaas_site::render_all(&diags, "site.toml"),
        tappaas_site::render_with_source(&diags, "site.toml", &src),
        format!("{diags:?}"),
    ];
    for text in shown {
        for chunk in body.as_bytes().chunks(16) {
            let chunk = std::str::from_utf8(chunk).unwrap();
            assert!(!text.contains(chunk), "the key shows: {text}");
        }
    }
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_its_line() {
    let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let src = with_cluster(&format!(
        "primary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"\"\"\n{other}\"\"\""
    ));
    let diags = parse(&src, &ParseOptions::default()).unwrap_err();
    let text = tappaas_site::render_all(&diags, "site.toml");
    assert_eq!(diags.len(), 1, "{text}");
    assert_eq!(diags[0].path, "cluster.primary-key");
    let key_line = src
        .lines()
        .position(|l| l.starts_with("primary-key"))
        .unwrap()
        + 1;
    assert_eq!(diags[0].pos.line as usize, key_line, "{text}");
    assert!(
        text.contains("primary-key is not the key of primary-certificate"),
        "{text}"
    );
    assert!(text.contains("join-keys"), "{text}");
    let body: String = other.lines().filter(|l| !l.starts_with("-----")).collect();
    for chunk in body.as_bytes().chunks(16) {
        let chunk = std::str::from_utf8(chunk).unwrap();
        assert!(!text.contains(chunk), "the key shows: {text}");
    }
}

/// The example site with `line` added to the node whose role line starts with `role`.
fn with_node_line(src: &str, role: &str, line: &str) -> String {
    let at = format!("role = \"{role}\"");
    let i = src.find(&at).unwrap();
    let end = i + src[i..].find('\n').unwrap();
    format!("{}\n{line}{}", &src[..end], &src[end..])
}

#[test]
fn a_node_may_give_its_api_fingerprint_which_is_read_in_upper_case() {
    let fp = vec!["cd"; 32].join(":");
    let src = with_node_line(SITE, "member", &format!("api-fingerprint = \"{fp}\""));
    let site = parse(&src, &ParseOptions::default()).unwrap();
    assert_eq!(site.nodes[0].api_fingerprint, None);
    assert_eq!(site.nodes[1].api_fingerprint, Some(fp.to_uppercase()));
    let bad = with_node_line(SITE, "member", "api-fingerprint = \"CD:EF\"");
    let text = tappaas_site::render_all(
        &parse(&bad, &ParseOptions::default()).unwrap_err(),
        "site.toml",
    );
    assert!(text.contains("is not a SHA-256 fingerprint"), "{text}");
    assert!(text.contains("api-fingerprint"), "{text}");
}

#[test]
fn the_primarys_api_fingerprint_must_be_the_one_the_cluster_pins() {
    let other = vec!["CD"; 32].join(":");
    // Against primary-fingerprint.
    let pinned = vec!["AB"; 32].join(":");
    let base = with_cluster(&format!("primary-fingerprint = \"{pinned}\""));
    let ok = with_node_line(&base, "primary", &format!("api-fingerprint = \"{pinned}\""));
    parse(&ok, &ParseOptions::default()).unwrap();
    let bad = with_node_line(&base, "primary", &format!("api-fingerprint = \"{other}\""));
    let text = tappaas_site::render_all(
        &parse(&bad, &ParseOptions::default()).unwrap_err(),
        "site.toml",
    );
    assert!(
        text.contains("not the fingerprint the cluster pins"),
        "{text}"
    );
    assert!(text.contains(&pinned), "{text}");
    // Against the fingerprint of primary-certificate.
    let base = with_cluster(&format!(
        "primary-certificate = \"\"\"\n{CERT}\"\"\"\nprimary-key = \"\"\"\n{KEY}\"\"\""
    ));
    let ok = with_node_line(
        &base,
        "primary",
        &format!("api-fingerprint = \"{CERT_FP}\""),
    );
    parse(&ok, &ParseOptions::default()).unwrap();
    let bad = with_node_line(&base, "primary", &format!("api-fingerprint = \"{other}\""));
    let text = tappaas_site::render_all(
        &parse(&bad, &ParseOptions::default()).unwrap_err(),
        "site.toml",
    );
    assert!(text.contains(CERT_FP), "{text}");
    // Without a pin in [cluster] nothing is compared; a member's value is its own.
    let alone = with_node_line(SITE, "primary", &format!("api-fingerprint = \"{other}\""));
    parse(&alone, &ParseOptions::default()).unwrap();
    let member = with_node_line(
        &with_cluster(&format!("primary-fingerprint = \"{pinned}\"")),
        "member",
        &format!("api-fingerprint = \"{other}\""),
    );
    parse(&member, &ParseOptions::default()).unwrap();
}

#[test]
fn a_replaced_primary_without_a_survivor_to_pin_is_warned_about() {
    let warnings = |src: &str| -> String {
        let (site, diags) = tappaas_site::parse_with_warnings(src, &ParseOptions::default());
        assert!(
            site.is_some(),
            "{}",
            tappaas_site::render_all(&diags, "site.toml")
        );
        tappaas_site::render_all(&diags, "site.toml")
    };
    let replaced = with_node_line(SITE, "primary", "replace = true");
    let text = warnings(&replaced);
    assert!(
        text.contains("no other node has an api-fingerprint"),
        "{text}"
    );
    assert!(text.contains("join-window open"), "{text}");
    let fp = vec!["CD"; 32].join(":");
    let pinned = with_node_line(&replaced, "backup", &format!("api-fingerprint = \"{fp}\""));
    assert!(!warnings(&pinned).contains("api-fingerprint"));
    // A replaced member joins through the primary: nothing to say.
    let member = with_node_line(SITE, "member", "replace = true");
    assert!(!warnings(&member).contains("api-fingerprint"));
}
