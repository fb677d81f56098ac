//! Progress (steps, a bar for the running step, the log) and the end.

use super::{bar, block, problem_style};
use crate::progress::Outcome;
use crate::tui::state::{State, StepState};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

fn mark(s: &State, st: &StepState) -> &'static str {
    match (st, s.ascii) {
        (StepState::Pending, _) => "[ ]",
        (StepState::Running, _) => "[>]",
        (StepState::Ended(Outcome::Done), true) => "[x]",
        (StepState::Ended(Outcome::Done), false) => "[✓]",
        (StepState::Ended(Outcome::Skipped { .. }), _) => "[-]",
        (StepState::Ended(Outcome::Failed { .. }), _) => "[!]",
    }
}

/// Draws the progress screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let p = &s.progress;
    let [steps_area, bar_area, log_area] = Layout::vertical([
        Constraint::Percentage(55),
        Constraint::Length(1),
        Constraint::Min(3),
    ])
    .areas(area);
    let done = p
        .steps
        .iter()
        .filter(|v| matches!(v.state, StepState::Ended(_)))
        .count();
    let running = p.steps.iter().position(|v| v.state == StepState::Running);
    let height = usize::from(steps_area.height.saturating_sub(2));
    // Keep the running step in view.
    let start = running
        .unwrap_or(done)
        .saturating_sub(height.saturating_sub(2));
    let lines: Vec<Line> = p
        .steps
        .iter()
        .skip(start)
        .take(height)
        .map(|v| {
            let text = format!("{} {}", mark(s, &v.state), v.description);
            if v.state == StepState::Running {
                Line::styled(text, Style::default().add_modifier(Modifier::BOLD))
            } else {
                Line::from(text)
            }
        })
        .collect();
    let title = format!("steps: {done} of {} done", p.steps.len());
    f.render_widget(Paragraph::new(lines).block(block(s, &title)), steps_area);

    let width = usize::from(bar_area.width.saturating_sub(30)).max(10);
    let bar_line = match running.and_then(|i| p.steps.get(i)) {
        Some(v) => match v.count {
            Some((d, Some(t))) => format!(
                " {} {}% {}",
                bar(s, d, t, width),
                d.saturating_mul(100).checked_div(t).unwrap_or(0),
                v.id
            ),
            Some((d, None)) => format!(" {} {d} so far", v.id),
            None => format!(" {}", v.id),
        },
        None => format!(
            " {} {done}/{} steps",
            bar(s, done as u64, p.steps.len() as u64, width),
            p.steps.len()
        ),
    };
    f.render_widget(Paragraph::new(bar_line), bar_area);

    let h = usize::from(log_area.height.saturating_sub(2));
    let log: Vec<Line> = p
        .log
        .iter()
        .skip(p.log.len().saturating_sub(h))
        .map(|l| Line::from(l.clone()))
        .collect();
    f.render_widget(Paragraph::new(log).block(block(s, "log")), log_area);
}

/// Draws the end: what happens next, or what went wrong.
pub(super) fn draw_done(s: &State, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    let address = s
        .this_node()
        .map(|n| n.address.to_string())
        .unwrap_or_default();
    match &s.progress.finished {
        Some(Outcome::Failed { error }) => {
            lines.push(Line::styled(
                "Problem: the install failed.",
                problem_style(),
            ));
            for l in error.lines() {
                lines.push(Line::from(format!("  {l}")));
            }
            lines.push(Line::from(""));
            if s.simulate {
                lines.push(Line::from("This was a simulation: nothing was changed."));
            } else {
                lines.push(Line::from(format!(
                    "Nothing is bootable until an install completes. Start the installer again: \
                     it offers to go on from the completed steps (kept in {} until the machine \
                     restarts).",
                    crate::install::JOURNAL_PATH
                )));
                lines.push(Line::from(
                    "So does `tappaas-installer install --site FILE` with the answers saved here \
                     as a site file (s).",
                ));
            }
        }
        _ => {
            if s.simulate {
                lines.push(Line::from(
                    "The simulated install completed. Nothing on this machine was changed.",
                ));
            } else {
                lines.push(Line::from("TAPPaaS is installed on this machine."));
                lines.push(Line::from("Remove the USB stick and restart the machine."));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(
                "What happens next: at first start the node sets up its network, forms or joins \
                 the cluster and, on the first node, starts the firewall and platform VMs.",
            ));
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "Web UI:  https://{address}:8006  (user root, the password you chose)"
            )));
            lines.push(Line::from(format!(
                "Logs:    {} on the installed system",
                crate::install::INSTALL_LOG_PATH
            )));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(s, "")),
        area,
    );
}
