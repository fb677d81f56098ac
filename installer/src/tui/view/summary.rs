//! Summary (the plan, scrollable) and the confirmation.

use super::{block, field, problem_style};
use crate::plan::render_human;
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::text::{Line, Text};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the plan exactly as `tappaas-installer plan` prints it.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let text = match &s.plan {
        Ok(p) => render_human(p),
        Err(e) => format!("Nothing can be installed yet:\n{e}"),
    };
    let total = text.lines().count();
    let height = usize::from(area.height.saturating_sub(2));
    let max = total.saturating_sub(height);
    let scroll = usize::from(s.scroll).min(max);
    let title = format!(
        "lines {}-{} of {total}",
        scroll + 1,
        (scroll + height).min(total)
    );
    let lines: Vec<Line> = text
        .lines()
        .skip(scroll)
        .take(height)
        .map(|l| Line::from(l.to_string()))
        .collect();
    f.render_widget(
        Paragraph::new(Text::from(lines)).block(block(s, &title)),
        area,
    );
}

/// Draws the confirmation: what will be erased, and the host name to type.
pub(super) fn draw_confirm(s: &State, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    if let Ok(p) = &s.plan {
        let what = if s.simulate {
            "This is a simulation: nothing will really be erased."
        } else {
            "These disks will be ERASED: everything on them is lost."
        };
        lines.push(Line::styled(format!("Warning: {what}"), problem_style()));
        for d in &p.disks {
            lines.push(Line::from(format!("  {:<6} {}", d.role.as_str(), d.disk)));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(format!(
            "Type the host name ({}) and press Enter to install.",
            p.node.name
        )));
        lines.push(field(true, "Host name", &s.fields.confirm, 10));
    }
    f.render_widget(Paragraph::new(lines).block(block(s, "")), area);
}
