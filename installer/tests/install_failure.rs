//! Failure paths of `install::execute` on a scripted fake host (the dry-run host plus a script
//! that answers `zpool` with output captured from real ZFS, `tests/fixtures/zfs/`, and fails
//! chosen commands): the original error first, cleanup, the journal, resuming, keep-on-error.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod golden;
mod install_common;

use install_common::*;
use tappaas_installer::exec::{CmdError, DryRunHost, Effect, Output};
use tappaas_installer::install::{
    self, InstallError, InstallJournal, Machine, SimulatedZfs, DRY_RUN_ASSUMED,
};
use tappaas_installer::inventory::Partition;
use tappaas_installer::plan::DiskRoleKind;
use tappaas_installer::progress::{Event, Level, Outcome};
use tappaas_installer::system::GeneratedIds;

/// Runs the lab's plan on `host` with `ctx`, discarding the events.
fn run_with(
    lab: &Lab,
    ctx: &tappaas_installer::install::InstallContext,
    host: &dyn tappaas_installer::exec::Host,
) -> anyhow::Result<tappaas_installer::install::InstallReport> {
    install::execute(
        &lab.plan,
        &lab.site,
        &lab.src,
        ctx,
        host,
        &mut Collect::default(),
    )
}

type Answer = Option<Result<Output, CmdError>>;

/// The fake: blank planned disks, a complete Proxmox root, `script` first (given the command
/// line), then the simulated ZFS of the plan.
fn fake(lab: &Lab, script: impl Fn(&str) -> Answer + Send + Sync + 'static) -> DryRunHost {
    let sim = SimulatedZfs::new(&lab.plan, &lab.ctx.target);
    DryRunHost::for_plan(&lab.plan)
        .with_paths(DRY_RUN_ASSUMED.iter().map(|p| lab.ctx.target.join(p)))
        .respond_with(move |c| script(&c.to_string()).or_else(|| sim.answer(c)))
}

/// Nothing imported and nothing to import, as real ZFS says it on a fresh machine.
fn fresh_zfs(line: &str) -> Answer {
    match line {
        "zpool status -P" => stdout("no pools available\n"),
        "zpool import -d /dev/disk/by-id" => Some(Ok(Output {
            code: 1,
            stdout: Vec::new(),
            stderr: b"no pools available to import\n".to_vec(),
        })),
        _ => None,
    }
}

/// A fresh machine whose ESP cannot be formatted: the run stops at `esp`, after the disks
/// and pools were made, as a crash there would leave them.
fn esp_fails(line: &str) -> Answer {
    if line.starts_with("mkfs.vfat") {
        return failed(line.to_string(), "no device\n");
    }
    fresh_zfs(line)
}

fn install_error(e: &anyhow::Error) -> &InstallError {
    e.downcast_ref::<InstallError>()
        .unwrap_or_else(|| panic!("not an InstallError: {e:#}"))
}

fn completed(lab: &Lab) -> Vec<String> {
    InstallJournal::load(&lab.journal_path())
        .unwrap()
        .expect("a journal")
        .completed
        .into_iter()
        .map(|c| c.id)
        .collect()
}

fn lines(host: &DryRunHost) -> Vec<String> {
    host.effects().iter().map(ToString::to_string).collect()
}

const TANK1_STDERR: &str = "cannot create 'tank1': one or more vdevs refer to the same device\n";

#[test]
fn a_failing_zpool_create_stops_with_the_command_and_stderr_and_cleans_up() {
    let lab = lab(0);
    let host = fake(&lab, |line| {
        if line.starts_with("zpool create") && line.contains(" tank1 mirror ") {
            return failed(line.to_string(), TANK1_STDERR);
        }
        fresh_zfs(line)
    });
    let mut sink = Collect::default();
    let err = install::execute(&lab.plan, &lab.site, &lab.src, &lab.ctx, &host, &mut sink)
        .expect_err("tank1 cannot be created");
    let ie = install_error(&err);
    assert_eq!(ie.step.as_deref(), Some("pool:tank1"));
    assert!(ie.cleanup.is_empty() && !ie.kept, "{err:#}");
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with(
            "step pool:tank1 failed: creating pool tank1: `zpool create -o ashift=12 -o \
             autotrim=on"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("tank1 mirror /dev/disk/by-id/virtio-tank1a-part1 /dev/disk/by-id/virtio-tank1b-part1` failed (exit code 1)"),
        "{msg}"
    );
    assert!(msg.contains(TANK1_STDERR.trim()), "{msg}");

    // Cleanup exported what this run created, and nothing ran after it.
    let effects = lines(&host);
    let at = effects
        .iter()
        .position(|e| e.starts_with("run zpool create") && e.contains(" tank1 "))
        .unwrap();
    assert_eq!(
        effects[at + 1..],
        ["run zpool export rpool"],
        "{effects:#?}"
    );

    // The journal has every step up to the one that failed.
    let mut want = vec!["preflight".to_string()];
    for d in ["boot-0", "tank1-0", "tank1-1", "tank2-0"] {
        want.push(format!("wipe:{d}"));
        want.push(format!("partition:{d}"));
    }
    want.push("pool:rpool".into());
    assert_eq!(completed(&lab), want);
    assert_eq!(ie.completed, want);

    // The events: the failed step with the same error, then the failed install.
    let ev = sink.events();
    let failed_at = ev
        .iter()
        .position(|e| {
            matches!(e, Event::StepFinished { step, outcome: Outcome::Failed { error }, .. }
                if step == "pool:tank1" && error.starts_with("creating pool tank1: `zpool create"))
        })
        .expect("a failed step-finished event");
    let cleanup: Vec<&Event> = ev[failed_at + 1..].iter().collect();
    assert!(
        matches!(cleanup[0], Event::Log { step: None, message, .. } if message == "$ zpool export rpool"),
        "{cleanup:?}"
    );
    assert!(matches!(
        cleanup.last(),
        Some(Event::Finished {
            outcome: Outcome::Failed { .. },
            ..
        })
    ));
}

/// An import listing in `zpool import`'s format, for a pool with single-disk vdevs.
fn importable(name: &str, id: &str, members: &[&str]) -> String {
    let mut s = format!(
        "   pool: {name}\n     id: {id}\n  state: ONLINE\n action: The pool can be imported \
         using its name or numeric identifier.\n config:\n\n\t{name}  ONLINE\n"
    );
    for m in members {
        s.push_str(&format!("\t  {m}  ONLINE\n"));
    }
    s.push('\n');
    s
}

#[test]
fn a_rerun_resumes_after_the_last_completed_step_and_imports_the_pools_again() {
    let lab = lab(0);
    let first = fake(&lab, |line| {
        if line.starts_with("mkfs.vfat") {
            return failed(line.to_string(), "mkfs.fat: unable to open the device\n");
        }
        fresh_zfs(line)
    });
    let err = run_with(&lab, &lab.ctx, &first).expect_err("esp fails");
    assert_eq!(install_error(&err).step.as_deref(), Some("esp"));
    let effects = lines(&first);
    let tail: Vec<&str> = effects.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "run zpool export rpool",
            "run zpool export tank1",
            "run zpool export tank2"
        ],
        "cleanup exports the data pools first"
    );
    assert_eq!(
        completed(&lab).last().map(String::as_str),
        Some("pool:tank2")
    );

    // The rerun: ZFS shows the exported pools (tank1 as captured from real ZFS) and answers
    // tank1's verification with the captured status and properties. It has new ids, which
    // the journal's replace.
    let mut ctx = lab.ctx.clone();
    ctx.ids = GeneratedIds {
        hostid: 0x1234_5678,
        ..golden::ids()
    };
    let listing = format!(
        "{}{}\n{}",
        importable("rpool", "4242", &["virtio-boot0-part3"]),
        fixture("import.txt"),
        importable("tank2", "4343", &["virtio-tank2a-part1"]),
    );
    let second = fake(&lab, move |line| match line {
        "zpool status -P" => stdout("no pools available\n"),
        "zpool import -d /dev/disk/by-id" => stdout(listing.clone()),
        "zpool status -P tank1" => stdout(fixture("status-P.txt")),
        "zfs list -Hp -o name -r tank1" => stdout(fixture("zfs-list.txt")),
        l if l.ends_with(" tank1") && l.contains(" get -Hp ") => stdout(fixture("get.txt")),
        l if l.starts_with("zfs list -H -o name -r ") => {
            stdout(format!("{}\n", l.rsplit(' ').next().unwrap()))
        }
        _ => None,
    })
    .with_disks_from(&first);
    let mut sink = Collect::default();
    let report = install::execute(&lab.plan, &lab.site, &lab.src, &ctx, &second, &mut sink)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", second.render()));
    let effects = lines(&second);
    let text = second.render();
    // No disk is wiped or partitioned again; the only disk writes are finish's, after the
    // pools are exported, dropping the install marker from the partition names.
    let last_export = effects
        .iter()
        .rposition(|e| e.starts_with("run zpool export"))
        .unwrap();
    for (i, e) in second.effects().iter().enumerate() {
        if let Effect::WriteDisk { len, .. } = e {
            assert!(i > last_export, "{i}: {e} before the export: {text}");
            assert!(*len <= 16 << 10, "{i}: {e} is more than a GPT copy: {text}");
            assert!(
                !matches!(e, Effect::WriteDisk { zeros: true, .. }),
                "{i}: {e} wipes: {text}"
            );
        }
    }
    assert!(!text.contains("zpool create"), "{text}");
    let target = lab.ctx.target.display();
    for id in ["4242", "17769879925444718715", "4343"] {
        assert!(
            effects.contains(&format!(
                "run zpool import -d /dev/disk/by-id -N -R {target} {id}"
            )),
            "{text}"
        );
    }
    assert!(
        effects.contains(&"run zgenhostid -f 00c0ffee".to_string()),
        "{text}"
    );
    assert!(
        !text.contains("12345678"),
        "the journal's hostid, not the new one: {text}"
    );
    assert_eq!(report.ids.hostid, 0x00c0_ffee);
    // The datasets rpool already has are not created again; its file systems are mounted.
    assert!(
        text.contains("run zfs create -u -o mountpoint=none rpool/ROOT"),
        "the fake lists none"
    );
    assert!(text.contains("run zfs mount rpool/ROOT/pve-1"));

    let outcome = |id: &str| {
        report
            .steps
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.outcome.clone())
            .unwrap()
    };
    assert_eq!(
        outcome("wipe:boot-0"),
        Outcome::Skipped {
            reason: "completed by an earlier run (journal)".into()
        }
    );
    assert_eq!(
        outcome("pool:tank1"),
        Outcome::Skipped {
            reason: "created by an earlier run: imported and verified again".into()
        }
    );
    assert_eq!(outcome("esp"), Outcome::Done);
    assert_eq!(
        report.resumed.last().map(String::as_str),
        Some("pool:tank2")
    );
    assert_eq!(completed(&lab).last().map(String::as_str), Some("finish"));

    // A third run of the completed install does nothing at all.
    let third = fake(&lab, |_| None);
    let report = run_with(&lab, &ctx, &third).unwrap();
    assert!(third.effects().is_empty(), "{}", third.render());
    assert!(
        report.notices[0].contains("nothing to do"),
        "{:?}",
        report.notices
    );
}

#[test]
fn a_pool_the_journal_says_exists_but_zfs_lost_stops_the_resume() {
    let lab = lab(0);
    let first = fake(&lab, esp_fails);
    run_with(&lab, &lab.ctx, &first).expect_err("esp fails");
    let second = fake(&lab, fresh_zfs);
    let err = run_with(&lab, &lab.ctx, &second).expect_err("rpool is gone");
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with("step pool:rpool failed: an earlier run created pool rpool (journal)"),
        "{msg}"
    );
    assert!(
        msg.contains("remove /run/tappaas/install-journal.json"),
        "{msg}"
    );
}

#[test]
fn keep_on_error_leaves_pools_and_mounts_alone() {
    let mut lab = lab(0);
    lab.ctx.keep_on_error = true;
    let host = fake(&lab, |line| {
        if line.contains("chpasswd") {
            return failed(
                line.to_string(),
                "chpasswd: (user root) pam_chauthtok() failed\n",
            );
        }
        fresh_zfs(line)
    });
    let mut sink = Collect::default();
    let err = install::execute(&lab.plan, &lab.site, &lab.src, &lab.ctx, &host, &mut sink)
        .expect_err("chpasswd fails");
    let ie = install_error(&err);
    assert_eq!(ie.step.as_deref(), Some("configure"));
    assert!(ie.kept);
    let effects = lines(&host);
    let last = effects.last().unwrap();
    assert!(last.contains("chpasswd -e (with secret stdin)"), "{last}");
    assert!(!effects
        .iter()
        .any(|e| e.starts_with("run zpool export") || e.starts_with("run umount")));
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with("step configure failed: setting the root password: `chroot "),
        "{msg}"
    );
    assert!(msg.contains("--keep-on-error"), "{msg}");
    assert!(sink.events().iter().any(|e| matches!(e,
        Event::Log { level: Level::Warning, message, .. } if message.starts_with("--keep-on-error: left pools rpool, tank1, tank2 imported"))));
}

#[test]
fn cleanup_errors_come_after_the_original_error() {
    let lab = lab(0);
    let host = fake(&lab, |line| {
        if line.starts_with("mkfs.vfat") {
            return failed(line.to_string(), "mkfs.fat: no such device\n");
        }
        if line == "zpool export tank1" {
            return failed(
                line.to_string(),
                "cannot unmount '/mnt/tank1': pool or dataset is busy\n",
            );
        }
        fresh_zfs(line)
    });
    let err = run_with(&lab, &lab.ctx, &host).expect_err("esp fails");
    let ie = install_error(&err);
    assert_eq!(ie.cleanup.len(), 1);
    let msg = format!("{err:#}");
    let original = msg.find("formatting the EFI system partition").unwrap();
    let cleanup = msg
        .find("cleanup after the failure also failed: exporting pool tank1: `zpool export tank1` failed")
        .unwrap_or_else(|| panic!("{msg}"));
    assert!(original < cleanup, "{msg}");
    assert!(msg.contains("pool or dataset is busy"), "{msg}");
    // The other pools were still exported.
    let effects = lines(&host);
    assert!(effects.contains(&"run zpool export rpool".to_string()));
}

#[test]
fn a_resume_accepts_disks_that_hold_the_earlier_runs_partitions_and_nothing_else() {
    let lab = lab(0);
    let first = fake(&lab, esp_fails);
    run_with(&lab, &lab.ctx, &first).expect_err("esp fails");

    // The machine as a re-probe now sees it: the boot disk holds a GPT and a ZFS label.
    let Machine::Inventory(inv) = &lab.ctx.machine else {
        panic!("fixture inventory")
    };
    let mut inv = inv.clone();
    let boot = inv
        .disks
        .iter_mut()
        .find(|d| d.by_id.iter().any(|l| l == "virtio-boot0"))
        .unwrap();
    boot.content.partition_table = Some("gpt".into());
    boot.content.fs_type = None;
    let mut ctx = lab.ctx.clone();
    ctx.machine = Machine::Inventory(inv.clone());

    // A fresh install of the same plan (no journal) refuses the disk: no consent.
    let mut fresh_ctx = ctx.clone();
    fresh_ctx.journal = None;
    let err = install::execute(
        &lab.plan,
        &lab.site,
        &lab.src,
        &fresh_ctx,
        &fake(&lab, fresh_zfs),
        &mut Collect::default(),
    )
    .expect_err("no consent without the journal");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("which the plan did not have consent to erase"),
        "{msg}"
    );

    // A fresh run without the journal (a power cut took it) accepts the disk when its
    // partitions carry this install's marker, as the first run's GPT left them.
    let mut marked = inv.clone();
    let boot = marked
        .disks
        .iter_mut()
        .find(|d| d.by_id.iter().any(|l| l == "virtio-boot0"))
        .unwrap();
    let planned = lab
        .plan
        .disks
        .iter()
        .find(|d| d.role == DiskRoleKind::Boot)
        .unwrap();
    boot.partitions = planned
        .partitions
        .iter()
        .map(|p| Partition {
            name: format!("vda{}", p.number),
            number: p.number,
            part_label: Some(format!("{}~{}", p.label, lab.plan.install_marker)),
            ..Partition::default()
        })
        .collect();
    let mut cut_ctx = fresh_ctx.clone();
    cut_ctx.machine = Machine::Inventory(marked);
    let after_cut = fake(&lab, fresh_zfs).with_disks_from(&first);
    install::execute(
        &lab.plan,
        &lab.site,
        &lab.src,
        &cut_ctx,
        &after_cut,
        &mut Collect::default(),
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", after_cut.render()));
    assert!(
        after_cut
            .render()
            .contains("write 17 MiB of zeros to /dev/disk/by-id/virtio-boot0"),
        "the interrupted install is wiped and made again: {}",
        after_cut.render()
    );

    // The resume accepts it (its own wipe made it), and goes on to the pools.
    let second = fake(&lab, |line| match line {
        "zpool status -P" => stdout("no pools available\n"),
        "zpool import -d /dev/disk/by-id" => stdout(format!(
            "{}{}\n{}",
            importable("rpool", "1", &["virtio-boot0-part3"]),
            fixture("import.txt"),
            importable("tank2", "2", &["virtio-tank2a-part1"])
        )),
        _ => None,
    })
    .with_disks_from(&first);
    run_with(&lab, &ctx, &second).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn preflight_refuses_a_live_system_without_a_tool_before_any_write() {
    let lab = lab(0);
    let host = fake(&lab, fresh_zfs).without_program("mkfs.vfat");
    let err = run_with(&lab, &lab.ctx, &host).expect_err("no mkfs.vfat");
    assert_eq!(install_error(&err).step.as_deref(), Some("preflight"));
    let msg = format!("{err:#}");
    assert!(
        msg.contains("nothing was written") && msg.contains("the live system: has no `mkfs.vfat`"),
        "{msg}"
    );
    assert_eq!(lines(&host), ["run zpool status -P"], "reads only");
}

#[test]
fn without_zgenhostid_the_hostid_is_written_before_the_first_pool() {
    let lab = lab(0);
    let host = fake(&lab, fresh_zfs).without_program("zgenhostid");
    run_with(&lab, &lab.ctx, &host).unwrap_or_else(|e| panic!("{e:#}"));
    let effects = lines(&host);
    let hostid = effects
        .iter()
        .position(|e| e == "write file /etc/hostid (4 bytes, mode 0644)")
        .expect("/etc/hostid written");
    let create = effects
        .iter()
        .position(|e| e.starts_with("run zpool create"))
        .unwrap();
    assert!(hostid < create);
    assert!(!effects.iter().any(|e| e.contains("zgenhostid")));
}
