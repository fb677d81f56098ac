//! Site names and credentials.

use super::{block, field, problem_style, warning_style};
use crate::tui::sitefile::{strength, Strength};
use crate::tui::state::State;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the site and credentials screen.
pub(super) fn draw(s: &State, f: &mut Frame, area: Rect) {
    let fl = &s.fields;
    let w = 16;
    let mut lines = vec![
        field(s.focus == 0, "Site name", &fl.site_name, w),
        field(s.focus == 1, "Domain", &fl.domain, w),
        field(s.focus == 2, "Admin e-mail", &fl.email, w),
        field(s.focus == 3, "Time zone", &fl.timezone, w),
        field(s.focus == 4, "Root password", &fl.password, w),
        field(s.focus == 5, "Password again", &fl.password2, w),
        field(s.focus == 6, "SSH key file", &fl.ssh_key_path, w),
        Line::from(""),
    ];
    let pw = &fl.password.text;
    if pw.is_empty() {
        lines.push(Line::from(if s.password_set {
            "  Password: set already (type a new one to change it)."
        } else {
            "  Password: not set yet."
        }));
    } else {
        let st = strength(pw);
        let style = match st {
            Strength::TooShort => problem_style(),
            Strength::Weak => warning_style(),
            _ => Style::default(),
        };
        lines.push(Line::styled(
            format!("  Password strength: {}", st.label()),
            style,
        ));
        if !fl.password2.text.is_empty() {
            lines.push(Line::from(if *pw == fl.password2.text {
                "  The two passwords match."
            } else {
                "  The two passwords differ."
            }));
        }
    }
    lines.push(Line::from(format!(
        "  SSH keys for root: {} (a .pub file on the USB stick adds one)",
        s.site.credentials.ssh_keys.len()
    )));
    if !s.found_keys.is_empty() {
        lines.push(Line::from(format!(
            "  Keys found on the USB stick: {}",
            s.found_keys.join(", ")
        )));
    }
    lines.push(Line::from(
        "  Time zone as Area/City, e.g. Europe/Copenhagen, or UTC.",
    ));
    f.render_widget(Paragraph::new(lines).block(block(s, "")), area);
}
