//! `tappaas-installer install` run as a user (or the lab) would: the dry run of an example node
//! against a fixture machine, the refusal to run unattended without `--yes`, and the JSON
//! lines on `--progress-fd` against docs/progress-json.md.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod golden;
mod install_common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const EXAMPLE: &str = "docs/examples/three-node-site.toml";
/// The example's (public, throwaway) root password hash.
const EXAMPLE_HASH: &str = "$6$erNM9Gso4420Jdng$";
const BIN: &str = env!("CARGO_BIN_EXE_tappaas-installer");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture_root(profile: &str) -> String {
    repo()
        .join("hardware-profiles/fixtures")
        .join(profile)
        .display()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the installer with stdin closed (not a terminal) and descriptor 3 open on `fd3`.
fn run_with_fd3(args: &[&str], fd3: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(r#"f=$1; shift; exec "$@" 3>"$f""#)
        .arg("sh")
        .arg(fd3)
        .arg(BIN)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn dry_run(extra: &[&str], fd3: &Path) -> Output {
    let root = fixture_root("qotom-q20300g9");
    let mut args = vec![
        "install",
        "--dry-run",
        "--site",
        EXAMPLE,
        "--node",
        "tappaas1",
        "--root",
        &root,
    ];
    args.extend_from_slice(extra);
    run_with_fd3(&args, fd3)
}

#[test]
fn dry_run_of_an_example_node_prints_every_effect_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let payload = install_common::make_payload(&dir.path().join("payload"), 1);
    let target = dir.path().join("target");
    let o = dry_run(
        &[
            "--payload",
            payload.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ],
        &dir.path().join("progress.jsonl"),
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{err}\n{out}");
    assert!(
        out.starts_with("Dry run of the install of tappaas1: "),
        "{out}"
    );
    let t = target.display();
    for want in [
        "  1. run zpool status -P\n".to_string(),
        "write 17 MiB of zeros to /dev/disk/by-id/ata-TS256GMSA230S_G000000001 at byte 0".into(),
        format!("-R {t} rpool /dev/disk/by-id/ata-TS256GMSA230S_G000000001-part3\n"),
        "tank1 mirror /dev/disk/by-id/".to_string(),
        format!("extract {}/pve-base.squashfs onto {t}\n", payload.display()),
        format!("write file {t}/etc/hostname (9 bytes, mode 0644)\n"),
        format!("run chroot {t} /usr/sbin/chpasswd -e (with secret stdin)\n"),
        format!("run chroot {t} /usr/sbin/proxmox-boot-tool init /dev/disk/by-id/ata-TS256GMSA230S_G000000001-part2\n"),
        "run zpool export rpool\n".into(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }
    assert!(err.contains("payload verified (sizes and sha256)"), "{err}");
    for stream in [&out, &err] {
        assert!(
            !stream.contains(EXAMPLE_HASH),
            "the password hash was shown"
        );
    }
    assert!(!target.exists(), "a dry run creates nothing");
}

#[test]
fn dry_run_without_a_payload_still_shows_the_effects_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = dry_run(&[], &dir.path().join("progress.jsonl"));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: dry run: the payload is not usable, a real install stops here: docs/examples/payload/manifest.toml: cannot be read"), "{err}");
    assert!(err.contains("payload NOT verified (dry run)"), "{err}");
    assert!(
        out.contains(
            "extract docs/examples/payload/<root-squashfs payload> onto /mnt/tappaas-target"
        ),
        "{out}"
    );
}

#[test]
fn install_without_yes_and_without_a_terminal_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let journal_existed = Path::new("/run/tappaas/install-journal.json").exists();
    let o = run_with_fd3(
        &[
            "install",
            "--site",
            EXAMPLE,
            "--node",
            "tappaas1",
            "--target",
            target.to_str().unwrap(),
            "--progress-fd",
            "3",
        ],
        &dir.path().join("progress.jsonl"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("standard input is not a terminal; pass --yes"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(o.stdout.is_empty());
    assert!(!target.exists());
    assert_eq!(
        std::fs::read(dir.path().join("progress.jsonl")).unwrap(),
        b""
    );
    assert_eq!(
        Path::new("/run/tappaas/install-journal.json").exists(),
        journal_existed
    );
}

#[test]
fn profile_is_for_dry_runs_only() {
    let o = Command::new(BIN)
        .args([
            "install",
            "--site",
            EXAMPLE,
            "--profile",
            "qotom-q20300g9",
            "--yes",
        ])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--dry-run"), "{}", text(&o.stderr));
}

#[test]
fn a_captured_root_is_for_dry_runs_only() {
    // A real install re-probes the live system: consent, mounted and boot-medium checks on
    // last week's capture would be checks of another machine, while the writes hit this one.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let root = fixture_root("qotom-q20300g9");
    let o = Command::new(BIN)
        .args(["install", "--site", EXAMPLE, "--node", "tappaas1", "--yes"])
        .args(["--root", &root, "--target"])
        .arg(&target)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--root") && err.contains("--dry-run"), "{err}");
    assert!(!target.exists());
}

#[test]
fn the_guided_installer_reads_a_captured_root_only_in_a_simulation() {
    let o = Command::new(BIN)
        .args(["--root", "/nonexistent"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // Refused by the argument check itself, before the terminal check could say anything.
    assert!(
        err.contains("--simulate") && !err.contains("needs a terminal"),
        "{err}"
    );
}

#[test]
fn progress_fd_carries_json_lines_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("progress.jsonl");
    let o = dry_run(&["--progress-fd", "3"], &jsonl);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc = std::fs::read_to_string(repo().join("docs/progress-json.md")).unwrap();
    let body = std::fs::read_to_string(&jsonl).unwrap();
    assert!(!body.contains(EXAMPLE_HASH));
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 20, "{body}");
    let mut events = BTreeSet::new();
    let mut last_t = 0;
    for v in &lines {
        let o = v.as_object().unwrap();
        assert_eq!(v["v"], 1, "{v}");
        let t = v["t_ms"].as_u64().unwrap();
        assert!(t >= last_t, "t_ms goes back: {v}");
        last_t = t;
        for (k, val) in o {
            assert!(
                doc.contains(&format!("`{k}`")),
                "field {k} undocumented: {v}"
            );
            if ["event", "outcome", "unit", "level"].contains(&k.as_str()) {
                let name = val.as_str().unwrap();
                assert!(
                    doc.contains(&format!("`{name}`")),
                    "value {name} undocumented"
                );
            }
        }
        events.insert(v["event"].as_str().unwrap().to_string());
    }
    // started first, with every step; each step started and finished in order; finished last.
    let steps: Vec<String> = lines[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(lines[0]["event"], "started");
    assert_eq!(lines[0]["node"], "tappaas1");
    assert_eq!(steps.first().map(String::as_str), Some("preflight"));
    assert_eq!(steps.last().map(String::as_str), Some("finish"));
    let started: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["event"] == "step-started")
        .collect();
    assert_eq!(started.len(), steps.len());
    for (i, s) in started.iter().enumerate() {
        assert_eq!(s["step"], steps[i].as_str());
        assert_eq!(s["index"], i + 1);
        assert_eq!(s["total"], steps.len());
    }
    let finished: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["event"] == "step-finished")
        .collect();
    assert_eq!(finished.len(), steps.len());
    for f in &finished {
        match f["outcome"].as_str() {
            Some("done") => assert!(f.get("reason").is_none(), "{f}"),
            // No payload in this dry run: no packages to unpack.
            Some("skipped") => {
                assert_eq!(f["step"], "packages");
                assert_eq!(f["reason"], "no packages in the payload");
            }
            _ => panic!("{f}"),
        }
        assert!(f["duration_ms"].is_u64(), "{f}");
    }
    let end = lines.last().unwrap();
    assert_eq!(end["event"], "finished");
    assert_eq!(end["outcome"], "done");
    for e in [
        "started",
        "step-started",
        "step-progress",
        "log",
        "step-finished",
        "finished",
    ] {
        assert!(events.contains(e), "no {e} event");
    }
}
