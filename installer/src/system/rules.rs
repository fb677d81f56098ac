//! The small rules behind the rendered values: ARC size, hostid bytes, keyboard names, dates,
//! and the checks that keep a value from breaking the line it is written on.

use super::{invalid, RenderError};

const MIB: u64 = 1024 * 1024;
/// The smallest `zfs_arc_max` written (ZFS ignores smaller values).
pub const ARC_MAX_FLOOR: u64 = 64 * MIB;
/// The largest `zfs_arc_max` written by default.
pub const ARC_MAX_CEILING: u64 = 16 * 1024 * MIB;

/// `zfs_arc_max` in bytes for a machine with `memory_bytes` of RAM: Proxmox VE's installer rule,
/// 10% of the RAM in whole MiB (rounded), at least 64 MiB and at most 16 GiB. Without it the ARC
/// may take half the RAM, which a hypervisor needs for its VMs.
pub fn zfs_arc_max(memory_bytes: u64) -> u64 {
    let mib = memory_bytes / MIB;
    let arc_mib = mib.saturating_add(5) / 10;
    (arc_mib * MIB).clamp(ARC_MAX_FLOOR, ARC_MAX_CEILING)
}

/// The 4 bytes of `/etc/hostid` for `hostid`: little-endian, as `zgenhostid` and glibc's
/// `sethostid` write it on x86 (and as `hostid` prints it back as 8 hex digits).
pub fn hostid_bytes(hostid: u32) -> [u8; 4] {
    hostid.to_le_bytes()
}

/// What a site-file keyboard name means for the console and for Proxmox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyboardMap {
    /// `XKBLAYOUT` in `/etc/default/keyboard`.
    pub xkb_layout: String,
    /// `XKBVARIANT` (may be empty).
    pub xkb_variant: String,
    /// Proxmox's `keyboard` in `datacenter.cfg` (the noVNC layout), when Proxmox has one.
    pub pve: Option<&'static str>,
}

/// Proxmox installer keyboard names (also accepted: the aliases after them), with Proxmox's
/// datacenter.cfg name and the XKB layout and variant its installer writes for each.
const KEYBOARDS: &[(&[&str], &str, &str, &str)] = &[
    (&["de"], "de", "de", "nodeadkeys"),
    (&["de-ch", "ch"], "de-ch", "ch", "de_nodeadkeys"),
    (&["dk", "da"], "da", "dk", "nodeadkeys"),
    (&["en-gb", "gb", "uk"], "en-gb", "gb", ""),
    (&["en-us", "us"], "en-us", "us", ""),
    (&["es"], "es", "es", "nodeadkeys"),
    (&["fi"], "fi", "fi", "nodeadkeys"),
    (&["fr"], "fr", "fr", "nodeadkeys"),
    (&["fr-be", "be"], "fr-be", "be", "nodeadkeys"),
    (&["fr-ca", "ca"], "fr-ca", "ca", "fr-legacy"),
    (&["fr-ch"], "fr-ch", "ch", "fr_nodeadkeys"),
    (&["hu"], "hu", "hu", ""),
    (&["is"], "is", "is", "nodeadkeys"),
    (&["it"], "it", "it", "nodeadkeys"),
    (&["jp", "ja"], "ja", "jp", ""),
    (&["lt"], "lt", "lt", "std"),
    (&["mk"], "mk", "mk", "nodeadkeys"),
    (&["nl"], "nl", "nl", ""),
    (&["no"], "no", "no", "nodeadkeys"),
    (&["pl"], "pl", "pl", ""),
    (&["pt"], "pt", "pt", "nodeadkeys"),
    (&["pt-br", "br"], "pt-br", "br", "nodeadkeys"),
    (&["se", "sv"], "sv", "se", "nodeadkeys"),
    (&["si", "sl"], "sl", "si", ""),
    (&["tr"], "tr", "tr", ""),
];

/// Maps the site file's `keyboard` to XKB and Proxmox names. A name Proxmox's installer does not
/// offer is taken as an XKB layout (`ru`) or layout-variant pair (`ru-phonetic`), and Proxmox's
/// datacenter keyboard is then left unset (noVNC uses its default).
pub fn keyboard_map(site_keyboard: &str) -> KeyboardMap {
    if let Some((_, pve, layout, variant)) = KEYBOARDS
        .iter()
        .find(|(names, ..)| names.contains(&site_keyboard))
    {
        return KeyboardMap {
            xkb_layout: (*layout).to_string(),
            xkb_variant: (*variant).to_string(),
            pve: Some(pve),
        };
    }
    let (layout, variant) = site_keyboard.split_once('-').unwrap_or((site_keyboard, ""));
    KeyboardMap {
        xkb_layout: layout.to_string(),
        xkb_variant: variant.to_string(),
        pve: None,
    }
}

/// Formats seconds since the Unix epoch as an RFC 3339 UTC date-time (`2026-01-01T00:00:00Z`),
/// which TOML reads as an offset date-time.
pub fn format_rfc3339(unix_secs: u64) -> String {
    tappaas_site::date::rfc3339(unix_secs)
}

/// A TOML basic string holding `s`, every control character escaped.
pub(crate) fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks that `value` is one word: not empty, no blanks or control characters, so it cannot
/// end a line or add a field where it is written. The site file and the planner already allow
/// only such values; this guards plans read back from JSON.
pub(crate) fn token(file: &'static str, what: &str, value: &str) -> Result<(), RenderError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        Err(invalid(
            file,
            format!("the {what} `{value}` is not a single word"),
        ))
    } else {
        Ok(())
    }
}

/// A MAC address in the lower-case colon form systemd and ifupdown2 expect.
pub(crate) fn mac(file: &'static str, value: &str) -> Result<String, RenderError> {
    tappaas_site::Mac::parse(value)
        .map(|m| m.to_string())
        .ok_or_else(|| invalid(file, format!("`{value}` is not a MAC address")))
}
