//! The resume screen: what the interrupted install was, the two ways on, and how far it came
//! (the choice comes first, so a small console shows it).

use super::block;
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Draws the interrupted install and the choice.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    if let Some(r) = &s.resume {
        let plan = &r.journal.plan;
        let done = r.completed();
        lines.push(Line::from(format!(
            "The install of node {} was interrupted: {} of its {} steps completed.",
            r.journal.node,
            done.len(),
            plan.steps.len()
        )));
        lines.push(Line::from(""));
        lines.push(Line::from(
            "Enter resumes it with the same plan: the completed steps are not repeated. You \
             confirm with the host name first.",
        ));
        lines.push(Line::from(
            "Esc starts afresh; the disks then hold the partial install, so you allow erasing \
             them on the disks screen.",
        ));
        lines.push(Line::from(""));
        for st in &plan.steps {
            let id = st.id.to_string();
            let mark = if done.contains(&id) { "[x]" } else { "[ ]" };
            lines.push(Line::from(format!("  {mark} {}", st.description)));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(s, "interrupted install")),
        area,
    );
}
