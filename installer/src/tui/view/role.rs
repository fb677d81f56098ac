//! What this machine becomes, or load a site file.

use super::{block, field, row};
use crate::tui::state::{Purpose, State};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Draws the role screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for (i, p) in Purpose::ALL.iter().enumerate() {
        let mark = if *p == s.purpose { "(*)" } else { "( )" };
        lines.push(row(
            i == s.focus,
            vec![Span::raw(format!("{mark} {}", p.label()))],
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        "  Or load a site file (from a USB stick) to start from its answers:",
    ));
    lines.push(field(
        s.focus == Purpose::ALL.len(),
        "Site file",
        &s.fields.load_path,
        10,
    ));
    if !s.found_site_files.is_empty() {
        lines.push(Line::from(format!(
            "  Found on the USB stick: {}",
            s.found_site_files.join(", ")
        )));
    }
    lines.push(Line::from(""));
    match (&s.loaded_from, s.this_node()) {
        (Some(path), Some(n)) => {
            lines.push(Line::from(format!(
                "  Loaded {path}: {} machine(s) in site {}.",
                s.site.nodes.len(),
                s.site.site.name
            )));
            lines.push(Line::from(format!(
                "  This machine is {} ({}, node {}). Left/Right: another node.",
                n.name, n.role, n.id
            )));
        }
        _ => lines.push(Line::from(
            "  Joining, backup and replacing need the existing site's file.",
        )),
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(s, "")),
        area,
    );
}
