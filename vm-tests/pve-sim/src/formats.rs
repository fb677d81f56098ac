//! The named `format` values of the PVE schema that the vendored subset uses.
//!
//! PVE registers each format as a Perl verifier (PVE::JSONSchema::register_format); the
//! messages here follow theirs. A format missing from [`check`] is refused when the schema
//! is loaded (see `schema.rs`), so a new endpoint cannot slip in unchecked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// Every named format the simulator checks. `schema.rs` refuses a schema that uses another.
pub const KNOWN: &[&str] = &[
    "address",
    "backup-fleecing",
    "backup-performance",
    "email-or-username-list",
    "ip",
    "ipv4",
    "ipv6",
    "pem-certificate",
    "pem-certificate-chain",
    "pem-string",
    "prune-backups",
    "pve-calendar-event",
    "pve-configid",
    "pve-configid-list",
    "pve-day-of-week-list",
    "pve-dir-override-list",
    "pve-node",
    "pve-node-list",
    "pve-priv-list",
    "pve-realm",
    "pve-replication-job-id",
    "pve-storage-content-list",
    "pve-storage-id",
    "pve-storage-options",
    "pve-storage-path",
    "pve-storage-portal-dns",
    "pve-storage-portal-dns-list",
    "pve-storage-server",
    "pve-storage-vgname",
    "pve-task-status-type-list",
    "pve-userid",
    "pve-vmid",
    "pve-vmid-list",
    "pve-volume-id",
];

fn re(pattern: &str) -> Regex {
    // The patterns are literals in this file; a typo is caught by the unit test that
    // exercises every format.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("format regex in formats.rs")
}

static NODE: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$"));
static CONFIGID: LazyLock<Regex> = LazyLock::new(|| re(r"^(?i)[a-z][a-z0-9_\-]+$"));
static REALM: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z][A-Za-z\.\-_0-9]+$"));
static USERID: LazyLock<Regex> = LazyLock::new(|| re(r"^[^\s:/@]+@[A-Za-z][A-Za-z\.\-_0-9]+$"));
static DNS_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?))*$")
});
static VGNAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9\.\+_][a-zA-Z0-9\.\+_\-]*$"));
static PRIV: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z][A-Za-z\.]*$"));
static JOB_ID: LazyLock<Regex> = LazyLock::new(|| re(r"^[1-9][0-9]{2,8}-\d{1,9}$"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"^[^\s@]+@[^\s@]+$"));
// Calendar events (systemd-like, "*/15", "mon..fri 21:00", "sat 03:00") are parsed by a Rust
// library in PVE; we only check the character set and that it is not empty.
// PVE::Certificate::check_pem: text before the first `-----BEGIN` is ignored, then one PEM
// block (`pem-certificate`, `pem-string` with any label) or several (`pem-certificate-chain`).
const B64_BLOCK: &str = r"(?:[0-9A-Za-z+/]+\s*\n)*[0-9A-Za-z+/]*(?:=\s*\n=|={0,2})?\s*\n";
fn pem_block(label: &str) -> String {
    format!(r"-----BEGIN {label}-----\s*{B64_BLOCK}-----END {label}-----\s*")
}
static PEM_CERT: LazyLock<Regex> = LazyLock::new(|| re(&format!("^{}$", pem_block("CERTIFICATE"))));
static PEM_CHAIN: LazyLock<Regex> = LazyLock::new(|| {
    let one = pem_block("CERTIFICATE");
    re(&format!("^(?:{one}\n+)*{one}$"))
});
static PEM_ANY: LazyLock<Regex> = LazyLock::new(|| re(&format!("^{}$", pem_block(".*?"))));

/// The PEM text from its first `-----BEGIN` on (PVE::Certificate::strip_leading_text).
fn strip_leading_text(value: &str) -> &str {
    value.find("-----BEGIN ").map_or(value, |i| &value[i..])
}

static CALENDAR: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9A-Za-z\*/,\.:\-~ ]+$"));

/// Check `value` against the named format. `Err` carries PVE's message for the field.
pub fn check(format: &str, value: &str) -> Result<(), String> {
    let ok = match format {
        "pve-node" => NODE.is_match(value),
        "pve-node-list" => list(value).all(|v| NODE.is_match(v)),
        "pve-configid" => CONFIGID.is_match(value),
        "pve-configid-list" => list(value).all(|v| CONFIGID.is_match(v)),
        "pve-storage-id" => {
            if !CONFIGID.is_match(value) {
                return Err(format!("storage ID '{value}' contains illegal characters"));
            }
            true
        }
        "pve-realm" => REALM.is_match(value),
        "pve-userid" => USERID.is_match(value),
        "pve-priv-list" => list(value).all(|v| PRIV.is_match(v)),
        "pve-replication-job-id" => JOB_ID.is_match(value),
        "pve-storage-content-list" => list(value).all(|v| {
            matches!(
                v,
                "images" | "rootdir" | "vztmpl" | "iso" | "backup" | "snippets" | "import" | "none"
            )
        }),
        "pve-storage-path" => value.starts_with('/') && !value.contains([';', '(', ')']),
        "pve-storage-server" | "address" => is_ip(value) || DNS_NAME.is_match(value),
        "pve-storage-portal-dns" => is_portal(value),
        "pve-storage-portal-dns-list" => list(value).all(is_portal),
        "pve-storage-options" => !value.is_empty() && !value.contains(char::is_whitespace),
        "pve-storage-vgname" => VGNAME.is_match(value),
        "pve-dir-override-list" => list(value).all(|v| {
            v.split_once('=')
                .is_some_and(|(k, p)| !k.is_empty() && p.starts_with('/'))
        }),
        "pve-vmid" => is_vmid(value),
        "pve-vmid-list" => list(value).all(is_vmid),
        "pve-volume-id" => value
            .split_once(':')
            .is_some_and(|(s, v)| CONFIGID.is_match(s) && !v.is_empty()),
        "pve-calendar-event" => CALENDAR.is_match(value),
        "pve-day-of-week-list" => {
            list(value).all(|v| matches!(v, "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"))
        }
        "pve-task-status-type-list" => {
            list(value).all(|v| matches!(v, "ok" | "error" | "warning" | "unknown"))
        }
        "email-or-username-list" => {
            list(value).all(|v| EMAIL.is_match(v) || USERID.is_match(v) || NODE.is_match(v))
        }
        "ip" => is_ip(value),
        "pem-certificate" => PEM_CERT.is_match(strip_leading_text(value)),
        "pem-certificate-chain" => PEM_CHAIN.is_match(strip_leading_text(value)),
        "pem-string" => PEM_ANY.is_match(strip_leading_text(value)),
        "ipv4" => value.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => value.parse::<Ipv6Addr>().is_ok(),
        "prune-backups" => {
            return property_string(value, |k, v| match k {
                "keep-all" => bool_value(v),
                "keep-last" | "keep-hourly" | "keep-daily" | "keep-weekly" | "keep-monthly"
                | "keep-yearly" => v.parse::<u64>().is_ok_and(|n| n >= 1),
                _ => false,
            })
        }
        "backup-fleecing" => {
            return property_string(value, |k, v| match k {
                "enabled" => bool_value(v),
                "storage" => CONFIGID.is_match(v),
                _ => false,
            })
        }
        "backup-performance" => {
            return property_string(value, |k, v| match k {
                "max-workers" => v.parse::<u64>().is_ok_and(|n| (1..=256).contains(&n)),
                "pbs-entries-max" => v.parse::<u64>().is_ok_and(|n| n >= 1),
                _ => false,
            })
        }
        _ => return Err(format!("unable to verify unknown format '{format}'")),
    };
    if ok {
        Ok(())
    } else {
        Err(message(format, value))
    }
}

/// PVE-style message for a value that fails a named format.
fn message(format: &str, value: &str) -> String {
    match format {
        "pve-node" | "pve-node-list" => "value does not look like a valid node name".into(),
        "pve-configid" | "pve-configid-list" => format!("invalid configuration ID '{value}'"),
        "pve-userid" => format!("value '{value}' does not look like a valid user name"),
        "ip" => "value does not look like a valid IP address".into(),
        "ipv4" => "value does not look like a valid IPv4 address".into(),
        "ipv6" => "value does not look like a valid IPv6 address".into(),
        "pem-certificate" | "pem-certificate-chain" | "pem-string" => {
            "not a valid PEM-formatted string.".into()
        }
        "address" | "pve-storage-server" => {
            "value does not look like a valid address (IP or hostname)".into()
        }
        _ => format!("value does not match format '{format}'"),
    }
}

/// PVE splits list formats on commas, semicolons, NULs and whitespace.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c == ';' || c == '\0' || c.is_whitespace())
        .filter(|v| !v.is_empty())
}

fn is_ip(value: &str) -> bool {
    value.parse::<IpAddr>().is_ok()
}

fn is_vmid(value: &str) -> bool {
    value
        .parse::<u64>()
        .is_ok_and(|n| (100..=999_999_999).contains(&n))
}

fn is_portal(value: &str) -> bool {
    let host = match value.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() && !h.contains(':') => h,
        _ => value,
    };
    is_ip(host.trim_start_matches('[').trim_end_matches(']')) || DNS_NAME.is_match(host)
}

/// Booleans as PVE parses them (JSONSchema::parse_boolean).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn bool_value(value: &str) -> bool {
    parse_bool(value).is_some()
}

/// A property string `k=v,k=v` whose keys and values `accept` judges.
fn property_string(value: &str, accept: impl Fn(&str, &str) -> bool) -> Result<(), String> {
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!(
                "value without key, but schema does not define a default key: '{part}'"
            ));
        };
        if !accept(k.trim(), v.trim()) {
            return Err(format!("invalid format - {k}: invalid value '{v}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmg\nAwIBAgIU==\n-----END CERTIFICATE-----\n";
    const CHAIN: &str = "subject=CN = tappaas1\n-----BEGIN CERTIFICATE-----\nMIIBszCC\n-----END CERTIFICATE-----\n\n-----BEGIN CERTIFICATE-----\nMIIBtDCC\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";

    #[test]
    fn pem_formats_follow_check_pem() {
        assert_eq!(
            check("pem-certificate", CHAIN),
            Err("not a valid PEM-formatted string.".into())
        );
        assert_eq!(check("pem-certificate-chain", CERT), Ok(()));
        assert!(
            check("pem-certificate", KEY).is_err(),
            "a key is not a certificate"
        );
        assert_eq!(check("pem-string", CERT), Ok(()));
        assert!(check(
            "pem-certificate-chain",
            "-----BEGIN CERTIFICATE-----\nM!I\n-----END CERTIFICATE-----\n"
        )
        .is_err());
    }

    #[test]
    fn every_known_format_accepts_a_good_value_and_rejects_a_bad_one() {
        let cases: &[(&str, &str, &str)] = &[
            ("address", "10.0.0.10", "not an address!"),
            (
                "backup-fleecing",
                "enabled=1,storage=local",
                "enabled=maybe",
            ),
            ("backup-performance", "max-workers=4", "max-workers=0"),
            ("email-or-username-list", "root@pam,ops@example.org", "a b@"),
            ("ip", "fe80::1", "10.0.0"),
            ("ipv4", "10.0.0.1", "fe80::1"),
            ("ipv6", "fe80::1", "10.0.0.1"),
            (
                "pem-certificate",
                CERT,
                "-----BEGIN CERTIFICATE-----\nMII\n",
            ),
            (
                "pem-certificate-chain",
                CHAIN,
                "-----BEGIN CERTIFICATE-----\nno end\n",
            ),
            ("pem-string", KEY, "PRIVATE KEY MII"),
            ("prune-backups", "keep-last=4,keep-daily=14", "keep-last=x"),
            ("pve-calendar-event", "*/15", "rm -rf;"),
            ("pve-configid", "tank1", "1tank"),
            ("pve-configid-list", "a1,b2", "a1,2b"),
            ("pve-day-of-week-list", "mon,sun", "funday"),
            ("pve-dir-override-list", "backup=/srv/b", "backup"),
            ("pve-node", "tappaas1", "tappaas_1"),
            ("pve-node-list", "tappaas1,tappaas2", "tappaas1,-x"),
            ("pve-priv-list", "Sys.Audit", "Sys Audit!"),
            ("pve-realm", "pam", "p"),
            ("pve-replication-job-id", "110-0", "99-0"),
            (
                "pve-storage-content-list",
                "images,rootdir",
                "images,movies",
            ),
            ("pve-storage-id", "tank1", "tank 1"),
            ("pve-storage-options", "vers=4.2", "a b"),
            ("pve-storage-path", "/srv", "srv"),
            ("pve-storage-portal-dns", "10.0.0.12:3260", "bad host!"),
            (
                "pve-storage-portal-dns-list",
                "a.example,10.0.0.1",
                "bad host!",
            ),
            ("pve-storage-server", "tappaas3.mgmt.internal", "bad host!"),
            ("pve-storage-vgname", "pve", "-pve"),
            ("pve-task-status-type-list", "ok,error", "fine"),
            ("pve-userid", "root@pam", "root"),
            ("pve-vmid", "110", "99"),
            ("pve-vmid-list", "110,130", "110,x"),
            ("pve-volume-id", "local:iso/x.iso", "local"),
        ];
        assert_eq!(cases.len(), KNOWN.len());
        for (format, good, bad) in cases {
            assert!(KNOWN.contains(format), "{format} not in KNOWN");
            assert_eq!(check(format, good), Ok(()), "{format} must accept {good}");
            assert!(check(format, bad).is_err(), "{format} must reject {bad}");
        }
    }

    #[test]
    fn unknown_format_is_an_error() {
        assert!(check("no-such-format", "x").is_err());
    }

    #[test]
    fn booleans_parse_like_pve() {
        for t in ["1", "true", "YES", "on"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "false", "no", "OFF"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
    }
}
