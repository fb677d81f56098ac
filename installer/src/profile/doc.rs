//! The generated part of `docs/hardware-profiles.md`.

use super::{profiles, PortRole};

/// The Markdown table of every embedded profile that `docs/hardware-profiles.md` carries
/// between its `BEGIN GENERATED` / `END GENERATED` markers (a test keeps the two in step).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Profile | Model | NIC ports (label: chip, default role) | Disk slots (label: bus, default role) | Quirks |\n\
         |---|---|---|---|---|\n",
    );
    for p in profiles() {
        let ports: Vec<String> = p
            .nics
            .iter()
            .map(|n| {
                let role = n.role.map_or("", |r| match r {
                    PortRole::Wan => ", **wan**",
                    PortRole::Lan => ", **lan**",
                });
                let opt = if n.optional { " (optional)" } else { "" };
                format!("{}: {} `{}`{role}{opt}", n.label, n.chip, n.driver)
            })
            .collect();
        let slots: Vec<String> = p
            .disks
            .iter()
            .map(|d| {
                let role = d
                    .role
                    .map_or(String::new(), |r| format!(", **{}**", r.as_str()));
                let opt = if d.optional { " (optional)" } else { "" };
                format!("{}: {}{role}{opt}", d.label, d.transport.as_str())
            })
            .collect();
        let quirks: Vec<String> = p.quirks.iter().map(|q| format!("`{}`", q.id)).collect();
        out.push_str(&format!(
            "| `{}` | {}<br>{} | {} | {} | {} |\n",
            p.id,
            p.name,
            p.cpu,
            ports.join("<br>"),
            slots.join("<br>"),
            quirks.join(" ")
        ));
    }
    out
}
