//! The write side: sites written back as site-file TOML, compared byte for byte with the files
//! the guided installer has always saved (`tests/data/write/*.saved.toml`), and read back to
//! the same site. `UPDATE_FIXTURES=1 cargo test -p tappaas-site --test write` rewrites the
//! expected files after an intended change; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use tappaas_site::{parse, render_all, write, ParseOptions, Site};

/// The comment the guided installer heads its files with (installer/src/tui/sitefile.rs).
const COMMENT: &str = "TAPPaaS site file, saved by the guided installer. Every key is explained in
docs/site-file.md. Install the next node unattended from it, or load it in the
installer to start from these answers.";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/write")
}

fn read(path: &Path) -> Site {
    let src = std::fs::read_to_string(path).unwrap();
    parse(&src, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("{}", render_all(&d, &path.display().to_string())))
}

#[test]
fn written_sites_match_the_saved_files_and_read_back() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples");
    let update = std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, input) in [
        ("one-node", examples.join("one-node-site.toml")),
        ("three-node", examples.join("three-node-site.toml")),
        ("kinds", data().join("kinds.toml")),
        ("keys", data().join("keys.toml")),
    ] {
        let site = read(&input);
        let text = write::site_file(&site, COMMENT);
        let back = parse(&text, &ParseOptions::default())
            .unwrap_or_else(|d| panic!("{}\n{text}", render_all(&d, name)));
        assert_eq!(back.without_positions(), site.without_positions(), "{text}");
        let expected = data().join(format!("{name}.saved.toml"));
        if update {
            std::fs::write(&expected, &text).unwrap();
        } else if std::fs::read_to_string(&expected).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{}:\n{text}", expected.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "the writer's output changed; rerun with UPDATE_FIXTURES=1 and review the diff:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_primarys_key_and_certificate_survive_byte_for_byte() {
    let site = read(&data().join("keys.toml"));
    let back = parse(&write::site_file(&site, ""), &ParseOptions::default()).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let key = std::fs::read_to_string(dir.join("primary.key")).unwrap();
    let cert = std::fs::read_to_string(dir.join("primary.pem")).unwrap();
    assert_eq!(back.cluster.primary_key.as_deref(), Some(key.as_str()));
    assert_eq!(
        back.cluster.primary_certificate.as_deref(),
        Some(cert.as_str())
    );
}

#[test]
fn no_comment_means_no_comment_lines() {
    let site = read(&data().join("kinds.toml"));
    let text = write::site_file(&site, "");
    assert!(text.starts_with("version = 1\n"), "{text}");
    assert!(!text.contains('#'), "{text}");
}
