//! `view(state, frame)`: draws the state, changes nothing. Every screen has the same frame: a
//! title line with the step number, a one-line explanation, the screen's body, the problems
//! or notice of the moment, and the key hints on the last line.
//!
//! Nothing is told by colour alone: problems start with "Problem:", warnings with
//! "Warning:", disks to be erased say ERASE, the focused row starts with ">". With
//! [`State::ascii`] only ASCII is drawn (the Linux VT font and serial consoles).

mod disks;
mod hardware;
mod network;
mod progress;
mod resume;
mod role;
mod site;
mod summary;
mod welcome;

use super::state::{Input, Modal, Screen, State};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Box-drawing in plain ASCII.
const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// A bordered block in the state's character set.
pub(crate) fn block(s: &State, title: &str) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL);
    let b = if s.ascii {
        b.border_set(ASCII_BORDER)
    } else {
        b.border_set(border::PLAIN)
    };
    if title.is_empty() {
        b
    } else {
        b.title(format!(" {title} "))
    }
}

/// Style of a problem line (red, and the text says "Problem:").
pub(crate) fn problem_style() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Style of a warning line (yellow, and the text says "Warning:").
pub(crate) fn warning_style() -> Style {
    Style::default().fg(Color::Yellow)
}

/// A list row: "> " and reversed when focused, two spaces otherwise.
pub(crate) fn row(focused: bool, spans: Vec<Span<'static>>) -> Line<'static> {
    let mut v = vec![Span::raw(if focused { "> " } else { "  " })];
    v.extend(spans);
    let line = Line::from(v);
    if focused {
        line.style(Style::default().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

/// A labelled text field: `> Label ........: value_`.
pub(crate) fn field(focused: bool, label: &str, input: &Input, width: usize) -> Line<'static> {
    let mut shown = input.shown();
    if focused {
        shown.push('_');
    }
    row(
        focused,
        vec![
            Span::raw(format!("{label:<width$} ")),
            Span::styled(shown, Style::default().add_modifier(Modifier::BOLD)),
        ],
    )
}

/// A progress bar `[####....]` of `width` cells, in the state's character set.
pub(crate) fn bar(s: &State, done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        let f = u128::from(done.min(total)) * width as u128 / u128::from(total);
        usize::try_from(f).unwrap_or(width)
    };
    let (on, off) = if s.ascii { ('#', '.') } else { ('█', '░') };
    let mut out = String::with_capacity(width + 2);
    out.push('[');
    out.extend(std::iter::repeat_n(on, filled));
    out.extend(std::iter::repeat_n(off, width - filled));
    out.push(']');
    out
}

/// The key hints of the current screen.
fn hints(s: &State) -> String {
    if let Some(m) = &s.modal {
        return match m {
            Modal::Quit => "y: quit   n or Esc: stay".into(),
            Modal::Save => "type the path   Enter: save   Esc: cancel".into(),
        };
    }
    let nav = "Enter: next  Esc: back  Ctrl-C: quit";
    match s.screen {
        Screen::Welcome => "Up/Down: choose  Enter: next  Ctrl-C: quit".into(),
        Screen::Hardware => nav.into(),
        Screen::Role if s.loaded_from.is_some() => {
            "Up/Down  Enter: next  Esc: back  Left/Right: node  n: new node  Ctrl-C: quit".into()
        }
        Screen::Role => format!("Up/Down: choose  {nav}"),
        Screen::Disks => format!("Up/Down: disk  Space: role  w: allow erase  {nav}"),
        Screen::Network => format!("Up/Down: move  w: WAN  l: LAN  f: follow  {nav}"),
        Screen::Site => format!("Tab/Up/Down: field  type to edit  {nav}"),
        Screen::Summary => format!("PgUp/PgDn: scroll  s: save as site file  {nav}"),
        Screen::Confirm => format!("type the host name  {nav}"),
        Screen::Progress if s.progress.finished.is_some() => "Enter: continue".into(),
        Screen::Progress => "the install runs; Ctrl-C: quit (asks first)".into(),
        Screen::Done => "s: save as site file  Enter or q: leave the installer".into(),
        Screen::Resume => "Enter: resume the install  Esc: start afresh  Ctrl-C: quit".into(),
    }
}

/// Draws the whole state.
pub fn view(s: &State, f: &mut Frame) {
    let area = f.area();
    let [top, expl, body, msg, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(message_height(s, area)),
        Constraint::Length(1),
    ])
    .areas(area);
    let sim = if s.simulate { "  [SIMULATION]" } else { "" };
    let title = if s.screen == Screen::Resume {
        format!("TAPPaaS installer: {}{sim}", s.screen.title())
    } else {
        format!(
            "TAPPaaS installer - step {} of {}: {}{sim}",
            s.screen.number(),
            Screen::ALL.len(),
            s.screen.title()
        )
    };
    f.render_widget(
        Paragraph::new(title).style(Style::default().add_modifier(Modifier::BOLD)),
        top,
    );
    let explanation = match s.screen {
        Screen::Progress if s.progress.finished.is_some() => {
            "The install has ended. Read the steps and the log, then press Enter."
        }
        other => other.explanation(),
    };
    f.render_widget(Paragraph::new(explanation), expl);
    match s.screen {
        Screen::Welcome => welcome::draw(s, f, body),
        Screen::Hardware => hardware::draw(s, f, body),
        Screen::Role => role::draw(s, f, body),
        Screen::Disks => disks::draw(s, f, body),
        Screen::Network => network::draw(s, f, body),
        Screen::Site => site::draw(s, f, body),
        Screen::Summary => summary::draw(s, f, body),
        Screen::Confirm => summary::draw_confirm(s, f, body),
        Screen::Progress => progress::draw(s, f, body),
        Screen::Done => progress::draw_done(s, f, body),
        Screen::Resume => resume::draw(s, f, body),
    }
    f.render_widget(Paragraph::new(message(s)).wrap(Wrap { trim: false }), msg);
    f.render_widget(
        Paragraph::new(hints(s)).style(Style::default().add_modifier(Modifier::REVERSED)),
        keys,
    );
    if let Some(m) = &s.modal {
        modal(s, f, body, m);
    }
}

/// The problems (or the notice) as lines.
fn message(s: &State) -> Text<'static> {
    let mut lines = Vec::new();
    for e in &s.errors {
        for (i, l) in e.lines().enumerate() {
            let text = if i == 0 {
                format!("Problem: {l}")
            } else {
                format!("  {l}")
            };
            lines.push(Line::styled(text, problem_style()));
        }
    }
    if lines.is_empty() {
        if let Some(n) = &s.notice {
            lines.push(Line::from(format!("Note: {n}")));
        }
    }
    Text::from(lines)
}

fn message_height(s: &State, area: Rect) -> u16 {
    let width = area.width.max(1) as usize;
    // Wrapped lines: each takes ceil(length / width) rows.
    let rows = |t: usize| t.div_ceil(width).max(1);
    let n: usize = if s.errors.is_empty() {
        s.notice
            .as_deref()
            .map(|n| rows(n.chars().count() + "Note: ".len()))
            .unwrap_or(0)
    } else {
        s.errors
            .iter()
            .flat_map(|e| e.lines())
            .map(|l| rows(l.chars().count() + "Problem: ".len()))
            .sum()
    };
    // Never more than a third of the screen: the body stays usable at 80x24.
    u16::try_from(n).unwrap_or(u16::MAX).min(area.height / 3)
}

fn modal(s: &State, f: &mut Frame, area: Rect, m: &Modal) {
    let w = area.width.min(70);
    let h = 7.min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let (title, text) = match m {
        Modal::Quit => {
            let what = if s.installing() {
                "The install is running: quitting now leaves this machine unbootable."
            } else if s.simulate {
                "This is a simulation: nothing was changed."
            } else {
                "Nothing has been written to the disks yet."
            };
            (
                "Quit?",
                format!("Quit the installer?\n{what}\n\ny: quit   n: stay"),
            )
        }
        Modal::Save => (
            "Save these answers as a site file",
            format!(
                "Path (for example on the USB stick):\n{}_\n\nThe file holds the password only \
                 as a hash and is readable by root only.",
                s.fields.save_path.text
            ),
        ),
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(block(s, title)),
        r,
    );
}
