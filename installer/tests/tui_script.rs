//! The TUI driven by keys from start to confirmation, on two profiles: the answers must give
//! exactly the Site of a given site file, and the same plan `tappaas-installer plan` prints for
//! that file. Then the simulated install runs to the end on the progress screen.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod tui_common;

use crossterm::event::KeyCode;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tappaas_installer::progress::Outcome;
use tappaas_installer::tui::sitefile;
use tappaas_installer::tui::state::{Modal, Purpose, Screen, StepState};
use tappaas_installer::tui::App;
use tui_common::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tui");

/// The plan `tappaas-installer plan --json` prints for `site` on `profile`'s fixture.
fn cli_plan(site: &Path, profile: &str, node: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tappaas-installer"))
        .args([
            "plan",
            "--json",
            "--profile",
            profile,
            "--node",
            node,
            "--site",
        ])
        .arg(site)
        .output()
        .expect("run plan");
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

/// The TUI's answers must be the site of `expected` (the password checked against its hash
/// first, since the salt is fresh), and its plan the CLI's plan of that file.
fn assert_answers(app: &App, expected: &Path, password: Option<&str>, profile: &str) {
    let src = std::fs::read_to_string(expected).expect("read expected site");
    let want = sitefile::parse(&src, "expected").unwrap_or_else(|e| panic!("{e}"));
    let mut got = app.state.site.clone();
    if let Some(pw) = password {
        let hash = &got.credentials.root_password_hash;
        let salt = hash.split('$').nth(2).expect("a $6$salt$hash");
        assert_eq!(
            &sitefile::hash_password_with_salt(pw, salt).expect("hash"),
            hash,
            "the hash is not the typed password's"
        );
        got.credentials.root_password_hash = want.credentials.root_password_hash.clone();
    }
    // The TUI gives every new site its join settings, and a machine added to a site a fresh
    // secret: random values the expected file cannot hold. Check they form a usable set, then
    // compare the rest. (A loaded site's own settings are kept: compared as they are.)
    let made = app.state.loaded_from.is_none() || app.state.added_node;
    if made && want.cluster.join_secret.is_none() {
        let c = &got.cluster;
        let secret = c
            .join_secret
            .as_deref()
            .expect("the site gets a join secret");
        assert!(secret.len() >= 32, "a short join secret");
        let cert = c
            .primary_certificate
            .as_deref()
            .expect("a primary certificate");
        let key = c.primary_key.as_deref().expect("the certificate's key");
        assert_eq!(
            tappaas_site::pem::key_belongs_to_certificate(cert, key),
            Some(true),
            "the key is not the certificate's"
        );
        got.cluster.join_secret = None;
        got.cluster.primary_certificate = None;
        got.cluster.primary_key = None;
    }
    assert_eq!(
        sitefile::without_positions(&got),
        sitefile::without_positions(&want),
        "the answers differ from {}; they save as:\n{}",
        expected.display(),
        sitefile::to_toml(&got)
    );
    let node = &got.nodes[app.state.node].name;
    let plan = app.state.plan.as_ref().expect("a plan");
    assert_eq!(
        serde_json::to_value(plan).expect("plan to JSON"),
        cli_plan(expected, profile, node),
        "the TUI's plan differs from `plan --site {}`",
        expected.display()
    );
}

/// Confirms, then lets the simulated install run to its end and checks the progress screen
/// saw every planned step end.
fn confirm_and_install(app: &mut App, host: &str) {
    assert_eq!(app.state.screen, Screen::Confirm);
    typ(app, "not-the-name");
    press(app, KeyCode::Enter);
    assert_eq!(
        app.state.screen,
        Screen::Confirm,
        "a wrong name must not install"
    );
    assert!(app.state.errors[0].contains("not the host name"));
    clear(app);
    typ(app, host);
    press(app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Progress);
    assert!(
        app.pump_until(Duration::from_secs(300), |s| s.progress.finished.is_some()),
        "the simulated install did not end"
    );
    let p = &app.state.progress;
    assert_eq!(
        p.finished,
        Some(Outcome::Done),
        "log:\n{}",
        p.log.join("\n")
    );
    let planned: Vec<String> = app
        .state
        .plan
        .as_ref()
        .expect("plan")
        .steps
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let seen: Vec<String> = p.steps.iter().map(|s| s.id.clone()).collect();
    assert_eq!(seen, planned);
    assert!(p
        .steps
        .iter()
        .all(|s| matches!(s.state, StepState::Ended(_))));
    press(app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Done);
}

#[test]
fn qemu_lab_with_the_defaults() {
    let mut app = app("qemu-lab", None, false);
    press(&mut app, KeyCode::Enter); // keyboard: us
    assert_eq!(app.state.screen, Screen::Hardware);
    press_n(&mut app, KeyCode::Enter, 4); // hardware, new site, disks, network as suggested
    assert_eq!(app.state.screen, Screen::Site);
    clear(&mut app);
    typ(&mut app, "lab");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "example.org");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "admin@example.org");
    press_n(&mut app, KeyCode::Tab, 2);
    typ(&mut app, "lab-password-1");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "lab-password-2");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.state.screen,
        Screen::Site,
        "different passwords must stop"
    );
    assert!(app.state.errors[0].contains("differ"));
    clear(&mut app);
    typ(&mut app, "lab-password-1");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Summary, "{:?}", app.state.errors);
    press(&mut app, KeyCode::Enter);
    assert_answers(
        &app,
        &Path::new(FIXTURES).join("qemu-lab.toml"),
        Some("lab-password-1"),
        "qemu-lab",
    );
    confirm_and_install(&mut app, "tappaas1");
}

#[test]
fn qotom_with_changed_disks_ports_and_names() {
    let keydir = tempfile::tempdir().expect("tempdir");
    let key = keydir.path().join("id_ed25519.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICs4Fy8pLyxMdPeEqWAR0+mKt2tSQM+9lAT1IhRwwGkc admin@laptop\n",
    )
    .expect("write key");

    let mut app = app("qotom-q20300g9", None, false);
    press_n(&mut app, KeyCode::Down, 3);
    press(&mut app, KeyCode::Enter); // Danish keyboard
    press_n(&mut app, KeyCode::Enter, 2); // hardware, new site
    assert_eq!(app.state.screen, Screen::Disks);
    // This profile suggests no disks: the user picks them. Rows: loop0 (the installer's),
    // nvme0n1 2 TB, sda 256 GB, sdb and sdc 1 TB, sdd (the stick).
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.state.screen,
        Screen::Disks,
        "no disks chosen: must stay"
    );
    press(&mut app, KeyCode::Down);
    press_n(&mut app, KeyCode::Char(' '), 3); // nvme0n1: boot, tank1, tank2
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' ')); // sda: boot
    press(&mut app, KeyCode::Down);
    press_n(&mut app, KeyCode::Char(' '), 2); // sdb: tank1
    press(&mut app, KeyCode::Down);
    press_n(&mut app, KeyCode::Char(' '), 2); // sdc: tank1
    assert!(app.state.plan.is_ok(), "{:?}", app.state.plan);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Network, "{:?}", app.state.errors);
    // The focus starts on the host name, below the nine ports; enp3s0 is the third port.
    press_n(&mut app, KeyCode::Up, 7);
    press(&mut app, KeyCode::Char('w'));
    let (wan, _) = app.state.nic_roles();
    assert_eq!(app.state.inv.nics[wan.expect("a WAN port")].name, "enp3s0");
    press_n(&mut app, KeyCode::Down, 7);
    clear(&mut app);
    typ(&mut app, "centre1");
    press(&mut app, KeyCode::Down);
    clear(&mut app);
    typ(&mut app, "10.0.0.21");
    // The centre's internet router wants a fixed address.
    press(&mut app, KeyCode::Down);
    typ(&mut app, "192.168.1.50");
    press(&mut app, KeyCode::Enter);
    assert!(
        app.state.errors[0].contains("WAN address"),
        "{:?}",
        app.state.errors
    );
    typ(&mut app, "/24");
    press(&mut app, KeyCode::Down);
    typ(&mut app, "192.168.1.1");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Site, "{:?}", app.state.errors);
    clear(&mut app);
    typ(&mut app, "community-centre");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "centre.example");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "it@centre.example");
    press(&mut app, KeyCode::Tab);
    clear(&mut app);
    typ(&mut app, "Europe/Copenhagen");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "Centre-Pass-2026");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "Centre-Pass-2026");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, &key.display().to_string());
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Summary, "{:?}", app.state.errors);
    press(&mut app, KeyCode::Enter);
    assert_answers(
        &app,
        &Path::new(FIXTURES).join("qotom-q20300g9.toml"),
        Some("Centre-Pass-2026"),
        "qotom-q20300g9",
    );
    confirm_and_install(&mut app, "centre1");
}

#[test]
fn back_and_forth_keeps_the_answers() {
    let mut app = app("qemu-lab", None, false);
    press_n(&mut app, KeyCode::Enter, 5);
    typ(&mut app, "-x");
    press(&mut app, KeyCode::Tab);
    typ(&mut app, "my.example");
    press_n(&mut app, KeyCode::Esc, 5);
    assert_eq!(app.state.screen, Screen::Welcome);
    press_n(&mut app, KeyCode::Enter, 5);
    assert_eq!(app.state.screen, Screen::Site);
    assert_eq!(app.state.fields.site_name.text, "tappaas-x");
    assert_eq!(app.state.fields.domain.text, "my.example");
}

#[test]
fn the_chosen_layout_is_switched_on_the_console() {
    let mut a = app("qemu-lab", None, false);
    press_n(&mut a, KeyCode::Down, 2); // German
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.state.screen, Screen::Hardware);
    assert_eq!(a.state.site.site.keyboard, "de");
    let notice = a.state.notice.clone().unwrap_or_default();
    assert!(notice.contains("loadkeys de"), "{notice:?}");
}

#[test]
fn ctrl_c_asks_before_quitting() {
    let mut app = app("qemu-lab", None, false);
    ctrl(&mut app, 'c');
    assert_eq!(app.state.modal, Some(Modal::Quit));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.state.modal, None);
    assert!(!app.state.quit);
    ctrl(&mut app, 'c');
    press(&mut app, KeyCode::Char('y'));
    assert!(app.state.quit);
}

#[test]
fn joining_needs_the_site_file() {
    let mut app = app("qemu-lab", None, false);
    press_n(&mut app, KeyCode::Enter, 2);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Role);
    assert!(app.state.errors[0].contains("load its site file first"));
}

#[test]
fn a_loaded_site_file_prefills_every_screen_and_replays_unchanged() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/three-node-site.toml");
    let mut app = app("minisforum-ms-01", None, false);
    press_n(&mut app, KeyCode::Enter, 2);
    press_n(&mut app, KeyCode::Down, 4);
    typ(&mut app, &example.display().to_string());
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.state.loaded_from.as_deref(),
        Some(example.to_str().unwrap())
    );
    // The site's identify = { profile = "minisforum-ms-01" } picks the member node.
    assert_eq!(app.state.fields.hostname.text, "tappaas2");
    assert_eq!(app.state.purpose, Purpose::Join);
    assert_eq!(app.state.fields.domain.text, "centre.example");
    assert_eq!(app.state.fields.timezone.text, "Europe/Copenhagen");
    assert!(app.state.password_set);
    assert_eq!(
        tappaas_installer::tui::state::KEYBOARDS[app.state.keyboard].0,
        "dk"
    );
    // Through every screen without a change: the password stays the file's hash.
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Disks, "{:?}", app.state.errors);
    press_n(&mut app, KeyCode::Enter, 4);
    assert_eq!(app.state.screen, Screen::Confirm, "{:?}", app.state.errors);
    assert_answers(&app, &example, None, "minisforum-ms-01");

    // Saved, it is a private file that loads back to the same site.
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = dir.path().join("site.toml");
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('s'));
    press_n(&mut app, KeyCode::Backspace, 40);
    typ(&mut app, &saved.display().to_string());
    press(&mut app, KeyCode::Enter);
    assert!(app.state.errors.is_empty(), "{:?}", app.state.errors);
    assert!(app.state.notice.as_deref().unwrap_or("").contains("Saved"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved)
        .expect("saved")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_answers(&app, &saved, None, "minisforum-ms-01");
}

#[test]
fn plugging_a_cable_in_makes_that_port_wan() {
    let dir = tempfile::tempdir().expect("tempdir");
    tappaas_installer::probe::embedded_fixture("qotom-q20300g9")
        .expect("fixture")
        .write_to_dir(dir.path())
        .expect("write fixture");
    let mut app = app("qotom-q20300g9", Some(dir.path().to_path_buf()), false);
    press_n(&mut app, KeyCode::Enter, 3);
    // Boot on sda, nothing else: enough to go on.
    press_n(&mut app, KeyCode::Down, 2);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Network, "{:?}", app.state.errors);
    let before = app
        .state
        .nic_roles()
        .0
        .map(|i| app.state.inv.nics[i].name.clone());
    assert_ne!(before.as_deref(), Some("enp5s0"));
    let net = dir.path().join("sys/class/net/enp5s0");
    std::fs::write(net.join("carrier"), "1\n").expect("plug in");
    std::fs::write(net.join("operstate"), "up\n").expect("plug in");
    let followed = app.pump_until(Duration::from_secs(10), |s| {
        s.nic_roles().0.map(|i| s.inv.nics[i].name.as_str()) == Some("enp5s0")
    });
    assert!(followed, "the WAN port did not follow the cable");
    assert!(app.state.notice.as_deref().unwrap_or("").contains("enp5s0"));
    assert_eq!(
        app.state.links.get("enp5s0"),
        Some(&tappaas_installer::inventory::LinkState::Up)
    );
}

#[test]
fn site_files_and_keys_on_the_stick_are_offered() {
    let dir = tempfile::tempdir().expect("tempdir");
    tappaas_installer::probe::embedded_fixture("qemu-lab")
        .expect("fixture")
        .write_to_dir(dir.path())
        .expect("write fixture");
    // The fixture's installer stick (sda1) is mounted at /iso.
    let iso = dir.path().join("iso");
    std::fs::create_dir_all(&iso).expect("mkdir");
    std::fs::copy(
        Path::new(FIXTURES).join("qemu-lab.toml"),
        iso.join("site.toml"),
    )
    .expect("copy site");
    std::fs::write(iso.join("admin.pub"), "ssh-ed25519 AAAA admin\n").expect("key");
    std::fs::write(iso.join("notes.txt"), "not offered").expect("notes");

    let mut app = app("qemu-lab", Some(dir.path().to_path_buf()), false);
    let site = iso.join("site.toml").display().to_string();
    assert_eq!(app.state.found_site_files, vec![site.clone()]);
    assert_eq!(
        app.state.found_keys,
        vec![iso.join("admin.pub").display().to_string()]
    );
    assert_eq!(app.state.fields.load_path.text, site);
    press_n(&mut app, KeyCode::Enter, 2);
    press_n(&mut app, KeyCode::Down, 4);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.loaded_from.as_deref(), Some(site.as_str()));
    assert_eq!(app.state.fields.site_name.text, "lab");
}

#[test]
fn the_next_machine_joins_the_saved_site_as_a_new_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = dir.path().join("site.toml");
    // The first machine: a new site, saved at the summary.
    let mut first = app("qemu-lab", None, false);
    press_n(&mut first, KeyCode::Enter, 5);
    clear(&mut first);
    typ(&mut first, "lab");
    press(&mut first, KeyCode::Tab);
    typ(&mut first, "example.org");
    press(&mut first, KeyCode::Tab);
    typ(&mut first, "admin@example.org");
    press_n(&mut first, KeyCode::Tab, 2);
    typ(&mut first, "lab-password-1");
    press(&mut first, KeyCode::Tab);
    typ(&mut first, "lab-password-1");
    press(&mut first, KeyCode::Enter);
    press(&mut first, KeyCode::Char('s'));
    press_n(&mut first, KeyCode::Backspace, 40);
    typ(&mut first, &saved.display().to_string());
    press(&mut first, KeyCode::Enter);
    assert!(saved.is_file(), "{:?}", first.state.errors);
    let notice = first.state.notice.clone().unwrap_or_default();
    assert!(notice.contains("join secret"), "{notice}");
    assert!(!notice.contains("join-window open"), "{notice}");

    // The next machine loads it and joins.
    let mut next = app("qemu-lab", None, false);
    press_n(&mut next, KeyCode::Enter, 2);
    press_n(&mut next, KeyCode::Down, 4);
    typ(&mut next, &saved.display().to_string());
    press(&mut next, KeyCode::Enter);
    assert_eq!(next.state.fields.hostname.text, "tappaas1");
    // Loading puts the focus on this node's answer (the primary: "new site"); one down is
    // "Join an existing site".
    assert_eq!(next.state.focus, 0);
    press(&mut next, KeyCode::Down);
    press(&mut next, KeyCode::Enter);
    assert_eq!(next.state.screen, Screen::Disks, "{:?}", next.state.errors);
    assert_eq!(next.state.fields.hostname.text, "tappaas2");
    press_n(&mut next, KeyCode::Enter, 4);
    assert_eq!(
        next.state.screen,
        Screen::Confirm,
        "{:?}",
        next.state.errors
    );
    // The new node gets a fresh join secret (the first one was used up when the primary formed
    // its cluster) and keeps the primary's certificate, which the new node pins.
    let first_site = sitefile::parse(&std::fs::read_to_string(&saved).expect("saved"), "saved")
        .unwrap_or_else(|e| panic!("{e}"));
    let (was, now) = (&first_site.cluster, &next.state.site.cluster);
    assert!(was.join_secret.is_some() && now.join_secret.is_some());
    assert_ne!(
        was.join_secret, now.join_secret,
        "the join secret was not renewed"
    );
    assert_eq!(was.primary_certificate, now.primary_certificate);
    assert_eq!(was.primary_key, now.primary_key);
    assert_answers(
        &next,
        &Path::new(FIXTURES).join("qemu-lab-joined.toml"),
        Some("lab-password-1"),
        "qemu-lab",
    );
    let plan = next.state.plan.as_ref().expect("plan");
    assert_eq!(plan.system.cluster.primary_address.to_string(), "10.0.0.10");
    assert_eq!(plan.system.address, "10.0.0.11/24");
    // Saved, the file says to open the primary's join window for the new node.
    let second = dir.path().join("site2.toml");
    press(&mut next, KeyCode::Esc); // back to the summary
    assert_eq!(next.state.screen, Screen::Summary);
    press(&mut next, KeyCode::Char('s'));
    press_n(&mut next, KeyCode::Backspace, 80);
    typ(&mut next, &second.display().to_string());
    press(&mut next, KeyCode::Enter);
    assert!(second.is_file(), "{:?}", next.state.errors);
    let notice = next.state.notice.clone().unwrap_or_default();
    assert!(
        notice.contains(&format!(
            "on tappaas1: tappaas-bootstrap join-window open --site {}",
            second.display()
        )),
        "{notice}"
    );
}

#[test]
fn n_adds_this_machine_as_another_member() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/three-node-site.toml");
    let mut app = app("qemu-lab", None, false);
    press(&mut app, KeyCode::Char('n'));
    press_n(&mut app, KeyCode::Enter, 2);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('n'));
    assert!(app.state.errors[0].contains("load the site's file first"));
    press_n(&mut app, KeyCode::Down, 3);
    typ(&mut app, &example.display().to_string());
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.focus, 0);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.state.site.nodes.len(), 4, "{:?}", app.state.errors);
    let node = app.state.this_node().expect("node");
    assert_eq!(
        (node.name.as_str(), node.id, node.role),
        ("tappaas4", 4, tappaas_site::Role::Member)
    );
    assert_eq!(node.address.to_string(), "10.0.0.13");
    assert_eq!(app.state.fields.hostname.text, "tappaas4");
}

#[test]
fn the_answers_can_be_saved_after_the_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = dir.path().join("after.toml");
    let mut app = app("qemu-lab", None, false);
    lab_defaults_to_confirm(&mut app);
    confirm_and_install(&mut app, "tappaas1");
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.state.modal, Some(Modal::Save));
    press_n(&mut app, KeyCode::Backspace, 40);
    typ(&mut app, &saved.display().to_string());
    press(&mut app, KeyCode::Enter);
    let text = std::fs::read_to_string(&saved).expect("saved");
    let back = sitefile::parse(&text, "after").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sitefile::without_positions(&back),
        sitefile::without_positions(&app.state.site)
    );
}

/// qemu-lab's suggested answers with a domain, an e-mail and a password, up to the Confirm
/// screen.
fn lab_defaults_to_confirm(app: &mut App) {
    press_n(app, KeyCode::Enter, 5);
    press(app, KeyCode::Tab);
    typ(app, "example.org");
    press(app, KeyCode::Tab);
    typ(app, "admin@example.org");
    press_n(app, KeyCode::Tab, 2);
    typ(app, "lab-password-1");
    press(app, KeyCode::Tab);
    typ(app, "lab-password-1");
    press_n(app, KeyCode::Enter, 2);
}

/// The qemu-lab app, simulated, keeping its journal and site copy in `run_dir`.
fn app_keeping_a_journal(run_dir: &Path) -> App {
    let o = tappaas_installer::tui::Options {
        simulate: Some("qemu-lab".into()),
        run_dir: Some(run_dir.to_path_buf()),
        ..Default::default()
    };
    App::start(&o, false, Duration::from_millis(20)).expect("start the TUI")
}

/// A simulated install of qemu-lab's defaults, run to its end in `run_dir`, then cut back to
/// what a power cut after its first `keep` steps leaves: the engine's own journal with only
/// those steps completed. Gives the node's planned step ids.
fn cut_off_install(run_dir: &Path, keep: usize) -> Vec<String> {
    let mut app = app_keeping_a_journal(run_dir);
    assert_eq!(app.state.screen, Screen::Welcome, "nothing to resume yet");
    lab_defaults_to_confirm(&mut app);
    confirm_and_install(&mut app, "tappaas1");
    let files = tappaas_installer::frontdoor::RunFiles::under(run_dir);
    let mut j = tappaas_installer::install::InstallJournal::load(&files.journal)
        .expect("read the journal")
        .expect("the install kept a journal");
    let ids: Vec<String> = j.plan.steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(j.completed.len(), ids.len(), "every step completed");
    j.completed.truncate(keep);
    j.store(&files.journal).expect("store the cut journal");
    ids
}

#[test]
fn an_interrupted_install_is_resumed_with_its_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Cut after the first wipe: the dry-run host starts from the probed disks, not from what
    // skipped steps would have written, so a cut after a partition step could not be read
    // back in a simulation (on real disks it is; the engine's resume tests cover that).
    let keep = 2;
    let ids = cut_off_install(dir.path(), keep);
    assert_eq!(ids[..keep], ["preflight", "wipe:boot-0"]);

    let mut app = app_keeping_a_journal(dir.path());
    assert_eq!(app.state.screen, Screen::Resume);
    let text = render(&app.state, 80, 24);
    assert!(
        text.contains(&format!(
            "The install of node tappaas1 was interrupted: {keep} of its {} steps",
            ids.len()
        )),
        "{text}"
    );
    assert!(text.contains("Enter: resume the install"), "{text}");
    press(&mut app, KeyCode::Enter);
    // The plan resumed is the journal's; the user confirms with the host name as before.
    confirm_and_install(&mut app, "tappaas1");
    let p = &app.state.progress;
    assert!(
        p.log
            .iter()
            .any(|l| l.contains("resuming the install of this plan from the journal")),
        "log:\n{}",
        p.log.join("\n")
    );
    let skipped: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| {
            matches!(&s.state, StepState::Ended(Outcome::Skipped { reason })
                if reason.contains("completed by an earlier run"))
        })
        .map(|s| s.id.as_str())
        .collect();
    // The completed steps are not run again (preflight always re-checks the machine).
    let expected: Vec<&str> = ids[..keep]
        .iter()
        .map(String::as_str)
        .filter(|id| *id != "preflight")
        .collect();
    assert_eq!(skipped, expected);

    // It finished: a third start has nothing to resume.
    let again = app_keeping_a_journal(dir.path());
    assert_eq!(again.state.screen, Screen::Welcome);
}

#[test]
fn an_interrupted_install_can_be_left_for_a_fresh_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    cut_off_install(dir.path(), 2);
    let mut app = app_keeping_a_journal(dir.path());
    assert_eq!(app.state.screen, Screen::Resume);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.state.screen, Screen::Confirm);
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        app.state.screen,
        Screen::Resume,
        "back to the choice, not the answers"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.state.screen, Screen::Welcome);
    assert!(app.state.resume.is_none());
    let notice = app.state.notice.clone().unwrap_or_default();
    assert!(notice.contains("allow erasing"), "{notice}");
}

#[test]
fn a_journal_without_its_site_is_said_and_not_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    cut_off_install(dir.path(), 2);
    let files = tappaas_installer::frontdoor::RunFiles::under(dir.path());
    std::fs::remove_file(&files.site_copy).expect("remove the site copy");
    let app = app_keeping_a_journal(dir.path());
    assert_eq!(app.state.screen, Screen::Welcome);
    let notice = app.state.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("cannot be resumed") && notice.contains("was not kept"),
        "{notice}"
    );
}
