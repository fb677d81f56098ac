//! Hardware summary: profile, CPU, RAM, disks, NICs, and what is wrong with them.

use super::{block, warning_style};
use crate::inventory::{human_bytes, LinkState};
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// What the user should know about this machine before going on.
pub(crate) fn warnings(s: &State) -> Vec<String> {
    let mut w = Vec::new();
    let inv = &s.inv;
    if inv.cpu.virtualization.is_none() {
        w.push(
            "the CPU offers no virtualisation (VT-x or AMD-V): switch it on in the firmware \
             setup, or virtual machines will not start"
                .to_string(),
        );
    }
    if let Some(min) = s.hints.min_ram_bytes {
        if inv.memory.total_bytes < min {
            w.push(format!(
                "only {} of RAM; this model needs at least {}",
                human_bytes(inv.memory.total_bytes),
                human_bytes(min)
            ));
        }
    }
    if s.profile.is_none() {
        w.push(
            "no known hardware profile matches this machine: choose disks and ports yourself"
                .into(),
        );
    }
    if !inv.disks.iter().any(|d| !d.boot_medium) {
        w.push("no disk to install on (only the installer's own medium)".into());
    }
    w
}

fn link(state: LinkState) -> &'static str {
    match state {
        LinkState::Up => "link up",
        LinkState::Down => "no cable",
        LinkState::Unknown => "unknown",
    }
}

/// Draws the hardware screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let inv = &s.inv;
    let profile = match &s.profile {
        Some(p) => crate::profile::find(p)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| p.clone()),
        None => "none (unknown model)".into(),
    };
    let virt = match inv.cpu.virtualization.as_deref() {
        Some("vmx") => "VT-x",
        Some("svm") => "AMD-V",
        Some(other) => other,
        None => "NO virtualisation",
    };
    let mut lines = vec![
        Line::from(format!("Model    {profile}")),
        Line::from(format!(
            "CPU      {} ({} cores, {virt})",
            inv.cpu.model, inv.cpu.cores
        )),
        Line::from(format!("RAM      {}", human_bytes(inv.memory.total_bytes))),
    ];
    for w in warnings(s) {
        lines.push(Line::styled(format!("Warning: {w}"), warning_style()));
    }
    // The blank separators go first when the screen is short (80x24 with warnings).
    let roomy = area.height >= 30;
    if roomy {
        lines.push(Line::from(""));
    }
    lines.push(Line::from("Disks"));
    for d in &inv.disks {
        let model = d.model.as_deref().unwrap_or("-");
        let serial = d.serial.as_deref().unwrap_or("-");
        let note = if d.boot_medium { " [installer]" } else { "" };
        lines.push(Line::from(format!(
            "  {:<8} {:<24.24} {:>9} {:.20}{note}",
            d.name,
            model,
            human_bytes(d.size_bytes),
            serial
        )));
    }
    if roomy {
        lines.push(Line::from(""));
    }
    lines.push(Line::from("Network ports"));
    // Two ports a row: the nine ports of a firewall box fit the 80x24 console.
    let ports: Vec<String> = inv
        .nics
        .iter()
        .filter(|n| n.physical)
        .map(|n| {
            let state = s.links.get(&n.name).copied().unwrap_or(n.link);
            format!("{:<9} {:<17} {:<8}", n.name, n.mac, link(state))
        })
        .collect();
    for pair in ports.chunks(2) {
        lines.push(Line::from(format!("  {}", pair.join("  "))));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(s, "")),
        area,
    );
}
