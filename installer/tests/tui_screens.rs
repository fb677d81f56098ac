//! Snapshots of every TUI screen at 80x24 (the VGA console) and 120x40, including the problem
//! and warning states and the ASCII fallback. Review changed `.snap` files by eye: they are
//! what the volunteer sees.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod tui_common;

use crossterm::event::KeyCode;
use tappaas_installer::install::{self, InstallContext, Machine};
use tappaas_installer::progress::{Event, Sink};
use tappaas_installer::tui::state::{Screen, State};
use tappaas_installer::tui::update::{update, Msg};
use tappaas_installer::tui::App;
use tui_common::*;

/// Snapshots `s` at both sizes.
fn snap(name: &str, s: &State) {
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let text = render(s, w, h);
        // Every line fits: nothing is cut at the right edge by a wrong width.
        assert!(text.lines().all(|l| l.chars().count() <= usize::from(w)));
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
    }
}

/// qemu-lab up to the site screen with everything typed in.
fn lab_to_site(app: &mut App) {
    press_n(app, KeyCode::Enter, 5);
    assert_eq!(app.state.screen, Screen::Site);
    press(app, KeyCode::Tab);
    typ(app, "centre.example");
    press(app, KeyCode::Tab);
    typ(app, "it@centre.example");
    press_n(app, KeyCode::Tab, 2);
    typ(app, "Centre-Pass-2026");
    press(app, KeyCode::Tab);
    typ(app, "Centre-Pass-2026");
}

#[test]
fn welcome_hardware_role() {
    let mut app = app("qemu-lab", None, false);
    snap("welcome", &app.state);
    press_n(&mut app, KeyCode::Down, 3);
    snap("welcome_danish", &app.state);
    press(&mut app, KeyCode::Enter);
    snap("hardware", &app.state);
    press(&mut app, KeyCode::Enter);
    snap("role", &app.state);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    snap("role_join_needs_site_file", &app.state);
}

#[test]
fn hardware_warnings() {
    let fixture = tappaas_installer::probe::embedded_fixture("qotom-q20300g9").unwrap();
    let mut inv = tappaas_installer::probe::probe(&fixture).unwrap();
    inv.cpu.virtualization = None;
    inv.memory.total_bytes = 2_000_000_000;
    let mut s = State::new(inv, Some("qotom-q20300g9".into()), true, false);
    s.screen = Screen::Hardware;
    snap("hardware_warnings", &s);
}

#[test]
fn loaded_site_file() {
    let mut app = app("minisforum-ms-01", None, false);
    press_n(&mut app, KeyCode::Enter, 2);
    press_n(&mut app, KeyCode::Down, 4);
    // Relative to the package directory, where tests run: the snapshot has no machine path.
    typ(&mut app, "../docs/examples/three-node-site.toml");
    press(&mut app, KeyCode::Enter);
    snap("role_loaded", &app.state);
}

#[test]
fn disks() {
    let mut app = app("qemu-lab", None, false);
    press_n(&mut app, KeyCode::Enter, 3);
    snap("disks", &app.state);
    let mut q = app_at_disks("qotom-q20300g9");
    press(&mut q, KeyCode::Enter);
    snap("disks_none_chosen", &q.state);
    press(&mut q, KeyCode::Down);
    press(&mut q, KeyCode::Char(' '));
    snap("disks_one_chosen", &q.state);
}

fn app_at_disks(profile: &str) -> App {
    let mut a = app(profile, None, false);
    press_n(&mut a, KeyCode::Enter, 3);
    a
}

#[test]
fn network() {
    let mut app = app("qemu-lab", None, false);
    press_n(&mut app, KeyCode::Enter, 4);
    snap("network", &app.state);
    clear(&mut app);
    press(&mut app, KeyCode::Down);
    clear(&mut app);
    typ(&mut app, "10.0.0.300");
    press(&mut app, KeyCode::Enter);
    snap("network_bad_address", &app.state);

    let mut q = app_at_disks("qotom-q20300g9");
    press_n(&mut q, KeyCode::Down, 2);
    press(&mut q, KeyCode::Char(' '));
    press(&mut q, KeyCode::Enter);
    press_n(&mut q, KeyCode::Up, 7);
    press(&mut q, KeyCode::Char('w'));
    snap("network_qotom_wan_eth3", &q.state);
}

#[test]
fn site_summary_confirm() {
    let mut app = app("qemu-lab", None, false);
    lab_to_site(&mut app);
    snap("site", &app.state);
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    snap("site_passwords_differ", &app.state);
    typ(&mut app, "6");
    press(&mut app, KeyCode::Up);
    clear(&mut app);
    typ(&mut app, "short");
    snap("site_weak_password", &app.state);
    clear(&mut app);
    typ(&mut app, "Centre-Pass-2026");
    press(&mut app, KeyCode::Enter);
    snap("summary", &app.state);
    press_n(&mut app, KeyCode::PageDown, 2);
    snap("summary_scrolled", &app.state);
    press(&mut app, KeyCode::Char('s'));
    snap("summary_save", &app.state);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Enter);
    snap("confirm", &app.state);
    typ(&mut app, "tappaas2");
    press(&mut app, KeyCode::Enter);
    snap("confirm_wrong_name", &app.state);
    ctrl(&mut app, 'c');
    snap("quit", &app.state);
}

/// The real event stream of the simulated install of the state's plan.
fn events(s: &State) -> Vec<Event> {
    struct Collect(Vec<Event>);
    impl Sink for Collect {
        fn event(&mut self, e: &Event) {
            self.0.push(e.clone());
        }
    }
    let plan = s.plan.clone().expect("plan");
    let mut ctx = InstallContext::new("payload", Machine::Inventory(Box::new(s.inv.clone())));
    ctx.dry_run = true;
    let host = install::dry_run_host(&plan, &ctx);
    let mut sink = Collect(Vec::new());
    let src = tappaas_installer::tui::sitefile::to_toml(&s.site);
    install::execute(&plan, &s.site, &src, &ctx, &host, &mut sink).expect("dry run");
    sink.0
}

#[test]
fn progress_and_done() {
    for ascii in [false, true] {
        let mut app = app("qemu-lab", None, ascii);
        lab_to_site(&mut app);
        press(&mut app, KeyCode::Enter);
        let mut s = app.state.clone();
        let evs = events(&s);
        s.screen = Screen::Progress;
        // Up to the start of the middle step. A dry run has no payload to copy, so it counts
        // nothing; the count a real root-image extraction reports is added to show the bar.
        let n_steps = s.plan.as_ref().unwrap().steps.len();
        let cut = evs
            .iter()
            .position(|e| matches!(e, Event::StepStarted { index, .. } if *index == n_steps / 2))
            .expect("the middle step starts");
        for e in &evs[..=cut] {
            let _ = update(&mut s, Msg::Install(e.clone()));
        }
        let Event::StepStarted { step, .. } = &evs[cut] else {
            unreachable!()
        };
        let _ = update(
            &mut s,
            Msg::Install(Event::StepProgress {
                step: step.clone(),
                done: 3 << 30,
                total: Some(8 << 30),
                unit: tappaas_installer::progress::Unit::Bytes,
            }),
        );
        let tag = if ascii { "_ascii" } else { "" };
        snap(&format!("progress_running{tag}"), &s);
        for e in &evs[cut + 1..] {
            let _ = update(&mut s, Msg::Install(e.clone()));
        }
        let _ = update(&mut s, Msg::InstallEnded(Ok(())));
        snap(&format!("progress_ended{tag}"), &s);
        let _ = update(&mut s, Msg::Key(k(KeyCode::Enter)));
        assert_eq!(s.screen, Screen::Done);
        snap(&format!("done{tag}"), &s);
    }
}

#[test]
fn done_after_a_failure() {
    let mut app = app("qemu-lab", None, false);
    lab_to_site(&mut app);
    press(&mut app, KeyCode::Enter);
    let mut s = app.state.clone();
    s.screen = Screen::Progress;
    let _ = update(
        &mut s,
        Msg::InstallEnded(Err(
            "step pools failed: zpool create tank1: cannot create 'tank1': no such device".into(),
        )),
    );
    let _ = update(&mut s, Msg::Key(k(KeyCode::Enter)));
    snap("done_failed", &s);
    // The same end of a real install: how to try again.
    s.simulate = false;
    snap("done_failed_real", &s);
}

#[test]
fn ascii_has_no_box_drawing() {
    let mut app = app("qemu-lab", None, true);
    press_n(&mut app, KeyCode::Enter, 3);
    for (w, h) in [(80, 24), (120, 40)] {
        let text = render(&app.state, w, h);
        assert!(text.is_ascii(), "{text}");
    }
    snap("disks_ascii", &app.state);
}

#[test]
fn tiny_terminals_do_not_panic() {
    // A serial console may report any size, and resizes pass through every size on the way.
    let mut app = app("qotom-q20300g9", None, false);
    for screen in Screen::ALL {
        app.state.screen = screen;
        for (w, h) in [(1, 1), (10, 3), (20, 6), (40, 10), (79, 23)] {
            let text = render(&app.state, w, h);
            assert_eq!(text.lines().count(), usize::from(h));
        }
    }
    ctrl(&mut app, 'c');
    for (w, h) in [(1, 1), (10, 3), (30, 8)] {
        assert_eq!(render(&app.state, w, h).lines().count(), usize::from(h));
    }
}

#[test]
fn resume_after_an_interrupted_install() {
    use tappaas_installer::frontdoor::{self, RunFiles};
    let mut app = app("qemu-lab", None, false);
    lab_to_site(&mut app);
    press(&mut app, KeyCode::Enter);
    let mut s = app.state.clone();
    let plan = s.plan.clone().expect("plan");
    let src = tappaas_installer::tui::sitefile::to_toml(&s.site);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = RunFiles::under(dir.path());
    let mut j = install::InstallJournal::new(
        &plan,
        &src,
        &tappaas_installer::system::GeneratedIds::generate(),
    );
    for st in &plan.steps[..5] {
        j.complete(&st.id, "done", 1, 1);
    }
    j.store(&files.journal).expect("journal");
    frontdoor::keep_site_copy(&files, &src).expect("site copy");
    let found = frontdoor::interrupted(&files)
        .expect("resumable")
        .expect("interrupted");
    tappaas_installer::tui::update::offer_resume(&mut s, found);
    assert_eq!(s.screen, Screen::Resume);
    snap("resume", &s);
    for (w, h) in [(1, 1), (10, 3), (20, 6), (40, 10)] {
        assert_eq!(render(&s, w, h).lines().count(), usize::from(h));
    }
}
