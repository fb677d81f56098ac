//! Network: which port is WAN and LAN (following the cable), host name and address.

use super::{block, field, row};
use crate::inventory::LinkState;
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the network screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let (wan, lan) = s.nic_roles();
    let nics = s.physical_nics();
    let mut lines = vec![Line::from(if s.follow_wan {
        "Following the cable: the next port that gets a link becomes WAN (f: stop)."
    } else {
        "Not following the cable (f: follow). Choose ports with w and l."
    })];
    // Long port lists (the Qotom has nine) scroll with the focus.
    let room = usize::from(area.height.saturating_sub(2))
        .saturating_sub(7)
        .max(1);
    let start = s
        .focus
        .min(nics.len())
        .saturating_sub(room.saturating_sub(1));
    for (row_i, &i) in nics.iter().enumerate().skip(start).take(room) {
        let n = &s.inv.nics[i];
        let link = match s.links.get(&n.name).copied().unwrap_or(n.link) {
            LinkState::Up => "link up ",
            LinkState::Down => "no cable",
            LinkState::Unknown => "unknown ",
        };
        let role = if wan == Some(i) {
            "WAN (internet)"
        } else if lan == Some(i) {
            "LAN (switch)"
        } else {
            "-"
        };
        let strong = Style::default().add_modifier(Modifier::BOLD);
        lines.push(row(
            row_i == s.focus,
            vec![
                Span::raw(format!("{:<10} {:<17} {link}  ", n.name, n.mac)),
                Span::styled(role.to_string(), strong),
            ],
        ));
    }
    lines.push(Line::from(""));
    let base = nics.len();
    lines.push(field(s.focus == base, "Host name", &s.fields.hostname, 12));
    lines.push(field(s.focus == base + 1, "Address", &s.fields.address, 12));
    lines.push(field(
        s.focus == base + 2,
        "WAN address",
        &s.fields.wan_address,
        12,
    ));
    lines.push(field(
        s.focus == base + 3,
        "WAN gateway",
        &s.fields.wan_gateway,
        12,
    ));
    lines.push(Line::from(
        "  Empty WAN address: the router gives one (DHCP). Fixed: e.g. 192.168.1.50/24",
    ));
    let net = &s.site.network;
    lines.push(Line::from(format!(
        "  Management network {}, firewall {} (TAPPaaS defaults)",
        net.management, net.firewall
    )));
    if let Some(n) = s.this_node() {
        lines.push(Line::from(format!(
            "  Web UI after install: https://{}:8006",
            n.address
        )));
    }
    f.render_widget(Paragraph::new(lines).block(block(s, "")), area);
}
