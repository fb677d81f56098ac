//! Welcome: the keyboard layout.

use super::{block, row};
use crate::tui::state::{State, KEYBOARDS};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the welcome screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let mut lines = vec![
        Line::from("Welcome. This program turns this machine into a TAPPaaS node: a small"),
        Line::from("private cloud for your organisation. It asks a few questions, shows"),
        Line::from("exactly what it will do, and changes nothing until you confirm."),
        Line::from(""),
        Line::from("Keyboard layout:"),
    ];
    let visible = usize::from(area.height.saturating_sub(2)).saturating_sub(lines.len());
    let start = s.focus.saturating_sub(visible.saturating_sub(1));
    for (i, (code, name)) in KEYBOARDS.iter().enumerate().skip(start).take(visible) {
        let chosen = if i == s.keyboard { " (current)" } else { "" };
        lines.push(row(
            i == s.focus,
            vec![Span::raw(format!("{name:<16} {code}{chosen}"))],
        ));
    }
    f.render_widget(Paragraph::new(lines).block(block(s, "")), area);
}
