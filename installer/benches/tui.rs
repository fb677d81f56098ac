//! One TUI frame at 120x40 for each screen, drawn into ratatui's TestBackend (the drawing and
//! the diff; no terminal I/O). Target: well under a millisecond per frame.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness
#![allow(missing_docs)] // criterion_main! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tappaas_installer::probe;
use tappaas_installer::tui::state::{Screen, State};
use tappaas_installer::tui::view;

fn state(profile: &str) -> State {
    let fixture = probe::embedded_fixture(profile).expect("fixture");
    let inv = probe::probe(&fixture).expect("probe");
    State::new(inv, Some(profile.into()), true, false)
}

fn frames(c: &mut Criterion) {
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    for (profile, screen) in [
        ("qemu-lab", Screen::Welcome),
        ("qotom-q20300g9", Screen::Hardware),
        ("qemu-lab", Screen::Disks),
        ("qotom-q20300g9", Screen::Network),
        ("qemu-lab", Screen::Summary),
    ] {
        let mut s = state(profile);
        s.screen = screen;
        let name = format!("frame 120x40 {screen:?} {profile}");
        c.bench_function(&name, |b| {
            b.iter(|| {
                term.draw(|f| view::view(black_box(&s), f)).expect("draw");
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = frames
}
criterion_main!(benches);
