//! Unit tests of the orchestrator's parts; whole runs are in `tests/install_*.rs`.

use super::journal::{plan_sha256, sha256_hex, InstallJournal};
use super::pools::{parse_fs_list, Fs};
use super::*;
use crate::system::FileContent;

use crate::testutil::{lab_plan, LAB_SITE as SITE};

fn lab() -> (Plan, Site) {
    let (plan, site, _) = lab_plan();
    (plan, site)
}

fn ids() -> GeneratedIds {
    GeneratedIds {
        machine_id: [7; 16],
        hostid: 0xdead_beef,
        installed_at: 1_767_225_600,
    }
}

#[test]
fn journal_round_trips_and_keeps_the_ids() {
    let (plan, _) = lab();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/tappaas/install-journal.json");
    assert!(InstallJournal::load(&path).unwrap().is_none());
    let mut j = InstallJournal::new(&plan, SITE, &ids());
    let preflight = StepId::from(StepKind::Preflight);
    j.complete(&preflight, "done", 12, 1_767_225_601);
    j.complete(&preflight, "done", 99, 1_767_225_999);
    j.store(&path).unwrap();
    let back = InstallJournal::load(&path).unwrap().unwrap();
    assert_eq!(back, j);
    assert_eq!(back.completed.len(), 1, "a step is recorded once");
    assert_eq!(
        back.completed[0].id, "preflight",
        "the journal keeps the stable string"
    );
    assert!(back.is_complete(&preflight) && !back.is_complete(&StepKind::Esp.into()));
    assert_eq!(back.generated_ids().unwrap(), ids());
    assert!(back.is_for(SITE, "tappaas1"));
    assert!(!back.is_for(SITE, "tappaas2"));
    assert!(!back.is_for(&SITE.replace("lab@test", "x@test"), "tappaas1"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_journal_whose_plan_was_changed_is_refused() {
    let (plan, _) = lab();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.json");
    let mut j = InstallJournal::new(&plan, SITE, &ids());
    j.plan.pools[0].name = "other".into();
    j.store(&path).unwrap();
    let e = InstallJournal::load(&path).unwrap_err();
    assert!(
        format!("{e:#}").contains("does not match its plan-sha256"),
        "{e:#}"
    );
    std::fs::write(&path, "{").unwrap();
    assert!(InstallJournal::load(&path).is_err());
}

#[test]
fn the_journals_plan_sha256_is_the_one_the_installed_system_records() {
    let (plan, site) = lab();
    let files = crate::system::render(&plan, &site, SITE, &ids()).unwrap();
    let node = files
        .iter()
        .find(|f| f.path.ends_with("etc/tappaas/node.toml"))
        .unwrap();
    let FileContent::Bytes(b) = &node.content else {
        panic!("node.toml is a file")
    };
    let text = String::from_utf8_lossy(b);
    assert!(
        text.contains(&format!("plan-sha256 = \"{}\"", plan_sha256(&plan))),
        "{text}"
    );
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn zfs_list_rows_say_what_to_mount() {
    let text = "rpool\t/mnt/t/rpool\ton\tyes\nrpool/ROOT\tnone\ton\tno\n\
                rpool/ROOT/pve-1\t/mnt/t\tnoauto\tno\nrpool/data\t/mnt/t/rpool/data\ton\tno\n\
                rpool/old\tlegacy\ton\tno\n";
    let fs = parse_fs_list(text).unwrap();
    let wanted: Vec<&str> = fs
        .iter()
        .filter(|f| f.wanted)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(wanted, ["rpool", "rpool/data"]);
    assert_eq!(
        fs[0],
        Fs {
            name: "rpool".into(),
            mountpoint: "/mnt/t/rpool".into(),
            wanted: true,
            mounted: true,
        }
    );
    assert!(parse_fs_list("rpool\t/x\ton\n").is_err());
}

#[test]
fn an_install_error_shows_the_original_error_first() {
    let e = InstallError {
        step: Some("pool:tank1".into()),
        error: anyhow!("`zpool create tank1` failed (exit code 1)").context("creating pool tank1"),
        cleanup: vec![anyhow!("`zpool export rpool` failed").context("exporting pool rpool")],
        kept: false,
        completed: vec!["preflight".into()],
    };
    assert_eq!(
        e.to_string(),
        "step pool:tank1 failed: creating pool tank1: `zpool create tank1` failed (exit code 1)\n\
         cleanup after the failure also failed: exporting pool rpool: `zpool export rpool` failed"
    );
}

#[test]
fn every_planned_step_is_known() {
    // A plan can only hold steps this installer runs: each planned id reads back as itself.
    let (plan, _) = lab();
    for s in &plan.steps {
        assert_eq!(s.id.as_str().parse::<StepId>().as_ref(), Ok(&s.id));
    }
    assert!("reboot".parse::<StepId>().is_err());
    let id = |s: &str| s.parse::<StepId>().unwrap();
    assert!(reruns(&id("pool:rpool")) && reruns(&id("preflight")) && !reruns(&id("wipe:boot-0")));
}

#[test]
fn a_journal_whose_plan_has_an_unknown_step_is_refused_clearly() {
    let (plan, _) = lab();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.json");
    let j = InstallJournal::new(&plan, SITE, &ids());
    let text = serde_json::to_string_pretty(&j)
        .unwrap()
        .replace("\"id\": \"esp\"", "\"id\": \"reboot\"");
    assert!(text.contains("\"reboot\""), "{text}");
    std::fs::write(&path, text).unwrap();
    let e = format!("{:#}", InstallJournal::load(&path).unwrap_err());
    assert!(
        e.starts_with(&format!("parsing the install journal {}", path.display()))
            && e.contains("the plan has a step this installer does not know: \"reboot\""),
        "{e}"
    );
}

#[test]
fn leftover_mounts_below_the_target_are_found_but_not_its_pools() {
    let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                90 1 0:50 / /mnt/t rw - zfs rpool/ROOT/pve-1 rw\n\
                91 90 0:21 / /mnt/t/proc rw - proc proc rw\n\
                92 90 0:5 / /mnt/t/dev rw - devtmpfs udev rw\n\
                93 90 0:51 / /mnt/t/rpool rw - zfs rpool rw\n\
                94 1 0:52 / /mnt/tx rw - tmpfs tmpfs rw\n\
                95 90 0:53 / /mnt/t/my\\040dir rw - tmpfs tmpfs rw\n";
    let found = super::check::mounts_below(info, std::path::Path::new("/mnt/t"));
    let found: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(found, ["/mnt/t/proc", "/mnt/t/dev", "/mnt/t/my dir"]);
}
