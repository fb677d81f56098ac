//! The real binary, run as a user would: exit codes, the README's commands, generated docs.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tappaas-installer"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run tappaas-installer")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

const EXAMPLE: &str = "docs/examples/three-node-site.toml";

#[test]
fn readme_main_job_plans_every_example_node() {
    for (node, role) in [
        ("tappaas1", "primary"),
        ("tappaas2", "member"),
        ("tappaas3", "backup"),
    ] {
        let o = run(&["plan", "--site", EXAMPLE, "--node", node]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{node}: {}", text(&o.stderr));
        assert!(
            out.starts_with(&format!(
                "TAPPaaS install plan: site {}, node {node} ({role}",
                "community-centre"
            )),
            "{out}"
        );
        assert!(out.contains("Disks that will NOT be touched"), "{out}");
        assert!(
            out.contains("boot medium"),
            "the USB stick must be listed: {out}"
        );
    }
}

#[test]
fn the_readme_names_the_commands_that_exist() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    assert!(readme.contains(
        "cargo run --release -p tappaas-installer -- plan --site docs/examples/three-node-site.toml --node tappaas1"
    ));
    assert!(readme.contains("./run-tests"));
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("./run-tests"),
        ".ci/run must call the README's test command"
    );
}

#[test]
fn validate_exit_codes() {
    let ok = run(&["validate", EXAMPLE]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("valid, 3 nodes"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "version = 1\n[site]\nnmae = \"x\"\n").expect("write");
    let o = run(&["validate", bad.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("bad.toml:3:1: error: site.nmae"), "{err}");
    assert!(err.contains("did you mean `name`?"), "{err}");

    let usage = run(&["validate"]);
    assert_eq!(usage.status.code(), Some(2));
    let missing = run(&["validate", "/nonexistent/site.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("reading site file /nonexistent/site.toml"));
}

#[test]
fn validate_json_lists_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "version = 2\n").expect("write");
    let o = run(&["validate", "--json", bad.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let diags = v["diagnostics"].as_array().expect("array");
    assert!(diags.iter().any(|d| d["path"] == "version"), "{v}");
}

#[test]
fn plan_that_does_not_fit_says_why_and_exits_1() {
    // The example's primary needs a Qotom; on the NUC fixture its disks are not there.
    let o = run(&[
        "plan",
        "--site",
        EXAMPLE,
        "--node",
        "tappaas1",
        "--profile",
        "intel-nuc13-pro",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("does not fit this machine"), "{err}");
    assert!(
        err.contains(&format!("{EXAMPLE}:")),
        "errors carry the file: {err}"
    );
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let o = run(&["probe", "--profile", "qotom"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("known profiles: "),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn probe_json_of_a_profile_fixture() {
    let o = run(&["probe", "--profile", "qemu-lab", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["schema"], 1);
    assert!(v["disks"].as_array().is_some_and(|d| d.len() >= 4));
}

fn check_generated(path: &str, generated: &str, command: &str) {
    let file = repo().join(path);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&file, generated).expect("write doc");
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale: regenerate it with `{command}` or `UPDATE_DOCS=1 cargo test`"
    );
}

#[test]
fn cli_reference_is_current() {
    let o = run(&["docs", "cli"]);
    assert_eq!(o.status.code(), Some(0));
    check_generated(
        "docs/cli.md",
        &text(&o.stdout),
        "cargo run -p tappaas-installer -- docs cli > docs/cli.md",
    );
}

#[test]
fn no_subcommand_without_a_terminal_prints_usage_and_exits_2() {
    for args in [&[][..], &["--simulate", "qemu-lab"][..]] {
        let o = run(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("Usage: tappaas-installer"), "{err}");
        assert!(err.contains("needs a terminal"), "{err}");
        assert!(o.stdout.is_empty());
    }
    // The guided installer's options do not mix with a subcommand.
    let o = run(&["--simulate", "qemu-lab", "profiles"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `join-keys` prints a `[cluster]` table that makes the example site installable unattended:
/// it validates, its fingerprint comment is what every node pins, the secret is fresh and long,
/// and nothing secret goes to stderr.
#[test]
fn join_keys_completes_a_multi_node_site() {
    let o = run(&[
        "join-keys",
        "--cluster-name",
        "lab-cluster",
        "--primary-address",
        "10.0.0.10",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let snippet = text(&o.stdout);
    let stderr = text(&o.stderr);

    let example = std::fs::read_to_string(repo().join(EXAMPLE)).unwrap();
    assert!(
        !example.contains("\n[cluster]"),
        "the example gained a [cluster] table"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, format!("{example}\n{snippet}")).unwrap();
    let v = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}{}",
        text(&v.stdout),
        text(&v.stderr)
    );

    let site = tappaas_site::parse(
        &std::fs::read_to_string(&path).unwrap(),
        &tappaas_site::ParseOptions::default(),
    )
    .unwrap_or_else(|d| panic!("{}", tappaas_site::render_all(&d, "site.toml")));
    let c = &site.cluster;
    assert_eq!(c.name, "lab-cluster");
    let commented = snippet
        .lines()
        .find_map(|l| l.strip_prefix("# primary-fingerprint: "))
        .expect("a fingerprint comment");
    assert_eq!(c.primary_fingerprint, None);
    assert_eq!(c.pinned_fingerprint().as_deref(), Some(commented));
    assert!(stderr.contains(commented), "{stderr}");
    let secret = c.join_secret.clone().expect("a join secret");
    assert!(secret.len() >= 24, "{secret}");
    let key = c.primary_key.clone().expect("a key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key}");
    assert!(c.primary_certificate.is_some());

    // Nothing secret on stderr.
    assert!(!stderr.contains(&secret), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!stderr.contains(line), "{stderr}");
    }

    // Every run makes new keys.
    let again = text(&run(&["join-keys"]).stdout);
    assert!(!again.contains(&secret));
    assert!(!again.contains(commented));
    assert!(!again.contains("name = "), "{again}");
}

#[test]
fn join_keys_refuses_a_bad_cluster_name_without_printing_keys() {
    let o = run(&["join-keys", "--cluster-name", "a name with blanks"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("--cluster-name"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["join-keys", "--primary-address", "10.0.0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}
