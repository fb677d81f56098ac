//! Shared by the TUI tests: start the app on a profile, press keys, render screens as text.

#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;
use std::time::Duration;
use tappaas_installer::tui::state::State;
use tappaas_installer::tui::{view, App, Options};

/// The app on `profile`'s embedded fixture (or `root`), simulated.
pub fn app(profile: &str, root: Option<PathBuf>, ascii: bool) -> App {
    let o = Options {
        simulate: Some(profile.to_string()),
        root,
        ascii,
        payload: None,
        run_dir: None,
    };
    App::start(&o, ascii, Duration::from_millis(20)).expect("start the TUI")
}

/// A key without modifiers.
pub fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Presses `code` once.
pub fn press(app: &mut App, code: KeyCode) {
    app.key(k(code));
}

/// Presses `code` `n` times.
pub fn press_n(app: &mut App, code: KeyCode, n: usize) {
    for _ in 0..n {
        press(app, code);
    }
}

/// Types `text` into the focused field.
pub fn typ(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// Clears the focused field (Backspace until empty; fields are short).
pub fn clear(app: &mut App) {
    press_n(app, KeyCode::Backspace, 80);
}

/// Ctrl + `c`.
pub fn ctrl(app: &mut App, c: char) {
    app.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
}

/// The state drawn into a `w` x `h` test terminal, as text lines.
pub fn render(s: &State, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| view::view(s, f)).expect("draw");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
