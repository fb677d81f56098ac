//! Disks: a role per disk, what each holds now, and which will be erased.

use super::{block, problem_style, row};
use crate::inventory::human_bytes;
use crate::plan::DiskRoleKind;
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// The role as the screen names it.
pub(crate) fn role_name(r: Option<DiskRoleKind>) -> &'static str {
    match r {
        None => "not used",
        Some(DiskRoleKind::Boot) => "BOOT (system)",
        Some(DiskRoleKind::Tank1) => "TANK1 (VM pool)",
        Some(DiskRoleKind::Tank2) => "TANK2 (backup/bulk)",
    }
}

/// Draws the disks screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let roles = s.roles_by_disk();
    let mut lines = Vec::new();
    for (i, (d, r)) in s.inv.disks.iter().zip(&roles).enumerate() {
        let model = d.model.as_deref().unwrap_or("unknown model");
        let serial = d.serial.as_deref().unwrap_or("-");
        lines.push(row(
            i == s.focus,
            vec![Span::raw(format!(
                "{:<8} {:<24.24} {:>9}  serial {serial}",
                d.name,
                model,
                human_bytes(d.size_bytes)
            ))],
        ));
        let holds = if d.holds_data() || d.is_mounted() {
            d.content
                .fs_type
                .clone()
                .or_else(|| {
                    d.content
                        .partition_table
                        .clone()
                        .map(|t| format!("{t} partitions"))
                })
                .unwrap_or_else(|| "data".into())
        } else {
            "empty".into()
        };
        let mut second = vec![Span::raw(format!("      now: {holds:<18} "))];
        if d.boot_medium {
            second.push(Span::raw("installer medium: never touched"));
        } else {
            second.push(Span::raw(format!("role: {:<20}", role_name(*r))));
            if r.is_some() {
                let what = if d.holds_data() {
                    "ERASE: its data is lost"
                } else {
                    "ERASE"
                };
                second.push(Span::styled(what, problem_style()));
            }
        }
        lines.push(Line::from(second));
    }
    lines.push(Line::from(""));
    let wipe = s.this_node().is_some_and(|n| n.boot.wipe);
    lines.push(Line::from(if wipe {
        "Erasing disks that hold data: ALLOWED (w: forbid)"
    } else {
        "Erasing disks that hold data: not allowed (w: allow)"
    }));
    if s.plan.is_err() {
        lines.push(Line::styled(
            "Problem: these roles do not fit yet (Enter shows why)",
            super::problem_style(),
        ));
    }
    if let Ok(p) = &s.plan {
        let pools: Vec<String> = p
            .pools
            .iter()
            .map(|pl| {
                let n: usize = pl.vdevs.iter().map(|v| v.members.len()).sum();
                let layout = pl.vdevs.first().map(|v| v.layout.as_str()).unwrap_or("-");
                format!(
                    "{} {layout} of {n} ({})",
                    pl.name,
                    human_bytes(pl.usable_bytes)
                )
            })
            .collect();
        lines.push(Line::from(format!("Pools: {}", pools.join(", "))));
        for w in &p.warnings {
            lines.push(Line::styled(format!("Warning: {w}"), Style::default()));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(s, "")),
        area,
    );
}
