#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The command line: `status --json` has the documented shape, `plan` lists the steps,
//! `fingerprint` prints the node's, and bad input is a message, never a panic.

mod common;

use common::*;
use std::process::Command;
use tappaas_pve_sim::Latencies;

fn agent(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tappaas-bootstrap"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn status_plan_and_fingerprint() {
    let lab = Lab::new(Latencies::default(), &[]);
    // Before the first run: every step pending.
    let out = agent(&lab.root(2), &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node"], "tappaas2");
    assert_eq!(v["role"], "member");
    assert_eq!(v["finished"], false);
    assert!(v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "pending"));

    // After a run that fails (the primary has no cluster yet, and we do not wait).
    let mut lab = lab;
    lab.timing.join_wait = std::time::Duration::from_millis(100);
    lab.run_once(2).unwrap_err();
    let out = agent(&lab.root(2), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    let wait = steps
        .iter()
        .find(|s| s["name"] == "wait-for-primary")
        .unwrap();
    assert_eq!(wait["state"], "failed");
    assert_eq!(wait["attempts"], 1);
    assert!(wait["last_error"]
        .as_str()
        .unwrap()
        .contains("the primary refuses the join secret"));
    for key in [
        "name",
        "description",
        "state",
        "started_at",
        "finished_at",
        "duration_ms",
        "attempts",
        "last_error",
    ] {
        assert!(wait.get(key).is_some(), "missing {key}");
    }
    let text = agent(&lab.root(2), &["status"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("first boot of tappaas2 (member): 3 of 8 steps done\n"),
        "{text}"
    );
    assert!(text.contains("last error: "), "{text}");

    let plan = String::from_utf8(agent(&lab.root(3), &["plan"]).stdout).unwrap();
    assert!(
        plan.contains("pbs-datastore") && plan.contains("backup-job"),
        "{plan}"
    );

    let fp = String::from_utf8(agent(&lab.root(1), &["fingerprint"]).stdout).unwrap();
    assert_eq!(fp.trim(), lab.site.node("tappaas1").unwrap().fingerprint());
}

#[test]
fn missing_or_broken_files_are_messages_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etc/tappaas/node.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    std::fs::create_dir_all(dir.path().join("etc/tappaas")).unwrap();
    std::fs::write(
        dir.path().join("etc/tappaas/node.toml"),
        "format = \"one\"\n",
    )
    .unwrap();
    let out = agent(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node.toml") && !err.contains("panicked"),
        "{err}"
    );

    let out = agent(dir.path(), &["fingerprint"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pve-ssl.pem"));
}

#[test]
fn plan_of_a_replaced_primary_rejoins_through_a_survivor() {
    let lab = Lab::new(Latencies::default(), &[]);
    lab.install(1, true);
    let out = agent(&lab.root(1), &["plan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.contains("wait-for-survivor"), "{plan}");
    assert!(plan.contains("remove-old-node"), "{plan}");
    assert!(!plan.contains("create-cluster"), "{plan}");
    assert!(!plan.contains("not supported"), "{plan}");
}
