//! Checks for single values: addresses, sizes, names. Each returns the normalised value or
//! what is wrong (and what to do), never panics.

use crate::check::{err, err_hint, Check};
use crate::disknames::{by_id, glob, looks_like_kernel_disk, wwn};
use crate::glob::is_glob;
use crate::schema::{StrKind, KERNEL_NAME_HINT, KERNEL_NAME_WHY, TRANSPORTS};
use crate::{creds, ParseOptions};

/// The closest candidate to `word`, if one is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|&(c, score)| score >= 0.8 || strsim::damerau_levenshtein(&lower, c) <= 1)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

pub(crate) fn enumerated(s: &str, allowed: &[&str]) -> Check<String> {
    if allowed.contains(&s) {
        return Check::Ok(s.to_string());
    }
    let list = allowed
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(s))
        .copied()
        .or_else(|| did_you_mean(s, allowed.iter().copied()))
    {
        Some(best) => format!("did you mean \"{best}\"?"),
        None => format!("one of {list}"),
    };
    err_hint(format!("`{s}` is not one of {list}"), hint)
}

fn is_label(l: &str, upper_ok: bool) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || (upper_ok && c.is_ascii_uppercase())
        })
}

fn dns_name(s: &str) -> Check<String> {
    if s.ends_with('.') {
        return err_hint(
            format!("`{s}` ends in a dot"),
            format!("write \"{}\"", s.trim_end_matches('.')),
        );
    }
    let labels: Vec<&str> = s.split('.').collect();
    if s.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| is_label(l, true)) {
        return err_hint(
            format!("`{s}` is not a DNS domain"),
            "labels of letters, digits and '-' separated by dots, e.g. \"acme.example\"",
        );
    }
    Check::Ok(s.to_ascii_lowercase())
}

fn lower_hint(kind: &str, s: &str) -> Check<String> {
    if is_label(&s.to_ascii_lowercase(), false) {
        return err_hint(
            format!("{kind} `{s}` has upper-case letters"),
            format!("write \"{}\"", s.to_ascii_lowercase()),
        );
    }
    err_hint(
        format!("`{s}` is not a valid {kind}"),
        "use lower-case letters, digits and '-' (not at either end), at most 63 characters",
    )
}

const TZ_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];
const DMI_PLACEHOLDERS: &[&str] = &[
    "to be filled by o.e.m.",
    "default string",
    "system serial number",
    "0123456789",
    "none",
    "not specified",
    "123456789",
    "0",
];
const POOL_RESERVED: &[&str] = &[
    "mirror", "raidz", "draid", "spare", "log", "cache", "special",
];

/// Checks a string of the given kind; the value may be normalised (lower-cased, prefix
/// stripped).
pub(crate) fn string(kind: StrKind, s: &str, opts: &ParseOptions) -> Check<String> {
    match kind {
        StrKind::SiteName => host_label("site name", s),
        StrKind::Hostname => host_label("host name", s),
        StrKind::DnsName => dns_name(s),
        StrKind::Email => email(s),
        StrKind::Timezone => timezone(s),
        StrKind::Keyboard => keyboard(s),
        StrKind::Country => country(s),
        StrKind::CryptHash => creds::crypt_hash(s),
        StrKind::SshKey => creds::ssh_key(s),
        StrKind::ClusterName => cluster_name(s),
        StrKind::IfName => if_name(s),
        StrKind::ProfileId => profile_id(s, opts),
        StrKind::PoolName => pool_name(s),
        StrKind::Compression => compression(s),
        StrKind::Compatibility => compatibility(s),
        StrKind::ById => by_id(s),
        StrKind::Serial => serial(s),
        StrKind::Wwn => wwn(s),
        StrKind::Glob => glob(s),
        StrKind::Transport => transport(s),
        StrKind::Pci => pci(s),
        StrKind::Port => trimmed(s),
        StrKind::DmiSerial => dmi_serial(s),
        StrKind::JoinSecret => join_secret(s),
        StrKind::Fingerprint => fingerprint(s),
        StrKind::Certificate => certificate(s),
        StrKind::PrivateKey => private_key(s),
    }
}

/// A site or host name (`what`): a lower-case DNS label starting with a letter.
fn host_label(what: &str, s: &str) -> Check<String> {
    if is_label(s, false) && s.starts_with(|c: char| c.is_ascii_lowercase()) {
        Check::Ok(s.to_string())
    } else if is_label(s, false) {
        err_hint(
            format!("{what} `{s}` must start with a letter"),
            format!("e.g. \"tappaas-{s}\""),
        )
    } else {
        lower_hint(what, s)
    }
}

fn email(s: &str) -> Check<String> {
    match s.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !local.contains(char::is_whitespace)
                && !domain.contains('@')
                && matches!(dns_name(domain), Check::Ok(_)) =>
        {
            Check::Ok(s.to_string())
        }
        _ => err_hint(
            format!("`{s}` is not an e-mail address"),
            "write e.g. \"it@acme.example\"",
        ),
    }
}

fn keyboard(s: &str) -> Check<String> {
    let ok = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let mut parts = s.splitn(2, '-');
    let base = parts.next().unwrap_or("");
    if ok(base, 2..=3) && parts.next().is_none_or(|v| ok(v, 2..=12)) {
        Check::Ok(s.to_string())
    } else {
        err_hint(
            format!("`{s}` is not a keyboard layout"),
            "e.g. \"us\", \"dk\", \"de-ch\"",
        )
    }
}

fn country(s: &str) -> Check<String> {
    if s.eq_ignore_ascii_case("uk") {
        err_hint(
            "`uk` is not an ISO 3166 country code",
            "the United Kingdom is \"gb\"",
        )
    } else if s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()) {
        Check::Ok(s.to_ascii_lowercase())
    } else {
        err_hint(
            format!("`{s}` is not a two-letter country code"),
            "e.g. \"dk\", \"de\", \"us\"",
        )
    }
}

fn cluster_name(s: &str) -> Check<String> {
    if s.len() > 15 {
        err_hint(
            format!(
                "cluster name `{s}` has {} characters; Proxmox allows at most 15",
                s.chars().count()
            ),
            format!(
                "e.g. \"{}\"",
                s.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(15)
                    .collect::<String>()
            ),
        )
    } else if is_label(s, true) {
        Check::Ok(s.to_string())
    } else {
        err_hint(
            format!("`{s}` is not a valid cluster name"),
            "letters, digits and '-' (not at either end), at most 15 characters",
        )
    }
}

fn if_name(s: &str) -> Check<String> {
    if s.starts_with('/') {
        err_hint(
            format!("`{s}` is a path, not an interface name"),
            "write the name only, e.g. \"enp1s0\"",
        )
    } else if s.is_empty()
        || s.len() > 15
        || s == "."
        || s == ".."
        || s.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        err(format!(
            "`{s}` is not a Linux interface name (1 to 15 characters, no '/', ':' or blanks)"
        ))
    } else {
        Check::Ok(s.to_string())
    }
}

fn profile_id(s: &str, opts: &ParseOptions) -> Check<String> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return err(format!(
            "`{s}` is not a profile id (letters, digits, '-', '_', '.')"
        ));
    }
    if opts.known_profiles.is_empty() || opts.known_profiles.iter().any(|p| p == s) {
        return Check::Ok(s.to_string());
    }
    let hint = match did_you_mean(s, opts.known_profiles.iter().map(String::as_str)) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None => format!("known profiles: {}", opts.known_profiles.join(", ")),
    };
    err_hint(format!("unknown hardware profile `{s}`"), hint)
}

fn compression(s: &str) -> Check<String> {
    let level = |rest: &str, max: u32| rest.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n));
    let ok = matches!(
        s,
        "on" | "off" | "lz4" | "zle" | "lzjb" | "gzip" | "zstd" | "zstd-fast"
    ) || s.strip_prefix("gzip-").is_some_and(|r| level(r, 9))
        || s.strip_prefix("zstd-fast-").is_some_and(|r| level(r, 1000))
        || s.strip_prefix("zstd-").is_some_and(|r| level(r, 19));
    if ok {
        Check::Ok(s.to_string())
    } else {
        err_hint(
            format!("`{s}` is not a ZFS compression"),
            "use \"lz4\" (default), \"zstd\" or \"zstd-3\"",
        )
    }
}

fn compatibility(s: &str) -> Check<String> {
    if !s.is_empty()
        && s.split(',').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    {
        Check::Ok(s.to_string())
    } else {
        err_hint(
            format!("`{s}` is not a ZFS compatibility value"),
            "\"off\", \"legacy\" or feature-set names such as \"openzfs-2.1-linux\"",
        )
    }
}

fn serial(s: &str) -> Check<String> {
    if looks_like_kernel_disk(s) {
        return err_hint(KERNEL_NAME_WHY, KERNEL_NAME_HINT);
    }
    if s.trim().is_empty() {
        return err("empty serial");
    }
    glob(s)
}

fn transport(s: &str) -> Check<String> {
    if is_glob(s) {
        return glob(s);
    }
    if TRANSPORTS.contains(&s) {
        return Check::Ok(s.to_string());
    }
    if matches!(s.to_ascii_lowercase().as_str(), "ssd" | "hdd") {
        return err_hint(
            format!("`{s}` is not a transport"),
            "say rotational = false (SSD) or rotational = true (HDD) instead",
        );
    }
    enumerated(s, TRANSPORTS)
}

fn pci(s: &str) -> Check<String> {
    let low = s.to_ascii_lowercase();
    let full = if low.len() == 7 {
        format!("0000:{low}")
    } else {
        low
    };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit))
    };
    if b.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11])
    {
        Check::Ok(full)
    } else {
        err_hint(
            format!("`{s}` is not a PCI address"),
            "write it as lspci -D prints it: \"0000:01:00.0\"",
        )
    }
}

/// A port label: any text, without surrounding blanks.
fn trimmed(s: &str) -> Check<String> {
    let t = s.trim();
    if t.is_empty() {
        return err("empty value");
    }
    Check::Ok(t.to_string())
}

fn dmi_serial(s: &str) -> Check<String> {
    let t = s.trim();
    if !t.is_empty() && DMI_PLACEHOLDERS.contains(&t.to_ascii_lowercase().as_str()) {
        return Check::Warn(t.to_string(),
            format!("`{t}` is a placeholder many vendors ship instead of a real serial; several machines may report it"),
            Some("identify this node by { mac = \"...\" } instead".into()));
    }
    trimmed(s)
}

fn join_secret(s: &str) -> Check<String> {
    if s.chars().count() < 16 {
        // Never echo a secret back in a message.
        err_hint(
            format!(
                "the join secret has {} characters; at least 16 are needed",
                s.chars().count()
            ),
            "make one with `openssl rand -base64 24`",
        )
    } else if !s.chars().all(|c| c.is_ascii_graphic()) {
        err_hint(
            "the join secret holds blanks or characters outside printable ASCII",
            "make one with `openssl rand -base64 24`",
        )
    } else {
        Check::Ok(s.to_string())
    }
}

fn fingerprint(s: &str) -> Check<String> {
    let t = s.trim();
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() == 32
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Check::Ok(t.to_ascii_uppercase())
    } else {
        err_hint(
            format!("`{t}` is not a SHA-256 fingerprint"),
            "32 hex pairs separated by ':', as `tappaas-bootstrap fingerprint` or `pvenode cert info` prints it",
        )
    }
}

fn certificate(s: &str) -> Check<String> {
    match crate::pem::certificate_der(s) {
        Ok(_) => Check::Ok(pem_text(s)),
        Err(why) => err_hint(
            format!("the certificate {why}"),
            "paste the whole PEM file, `-----BEGIN CERTIFICATE-----` to `-----END CERTIFICATE-----`, in a \"\"\"multi-line string\"\"\"; `tappaas-installer join-keys` makes one",
        ),
    }
}

/// Never echoes the key back in a message.
fn private_key(s: &str) -> Check<String> {
    match crate::pem::check_private_key(s) {
        Ok(()) => Check::Ok(pem_text(s)),
        Err(why) => err_hint(
            format!("the private key {why}"),
            "paste the whole PEM key file, `-----BEGIN PRIVATE KEY-----` to `-----END PRIVATE KEY-----`, in a \"\"\"multi-line string\"\"\"; `tappaas-installer join-keys` makes one",
        ),
    }
}

/// A PEM block as files hold it: without surrounding blanks, ending in one newline.
fn pem_text(s: &str) -> String {
    format!("{}\n", s.trim())
}

fn timezone(s: &str) -> Check<String> {
    if s == "UTC" {
        return Check::Ok(s.to_string());
    }
    let parts: Vec<&str> = s.split('/').collect();
    let part_ok = |p: &&str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
    };
    let area = parts.first().copied().unwrap_or("");
    if parts.len() >= 2 && parts.iter().all(part_ok) {
        if TZ_AREAS.contains(&area) {
            return Check::Ok(s.to_string());
        }
        let hint = match did_you_mean(area, TZ_AREAS.iter().copied()) {
            Some(best) => format!("did you mean \"{best}/{}\"?", parts[1..].join("/")),
            None => format!("the area is one of {}", TZ_AREAS.join(", ")),
        };
        return err_hint(
            format!("`{s}` is not a time zone: unknown area `{area}`"),
            hint,
        );
    }
    let hint = if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") {
        "write \"UTC\"".to_string()
    } else {
        "write Area/City such as \"Europe/Copenhagen\", or \"UTC\" (abbreviations like CET are ambiguous)".to_string()
    };
    err_hint(format!("`{s}` is not a time zone"), hint)
}

fn pool_name(s: &str) -> Check<String> {
    let first_ok = s.starts_with(|c: char| c.is_ascii_alphabetic());
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    let reserved = POOL_RESERVED
        .iter()
        .any(|r| s == *r || (*r == "raidz" || *r == "draid") && s.starts_with(r))
        || (s.starts_with('c') && s[1..].starts_with(|c: char| c.is_ascii_digit()));
    if s.is_empty() || s.len() > 200 || !first_ok || !chars_ok {
        err_hint(
            format!("`{s}` is not a ZFS pool name"),
            "start with a letter; use letters, digits, '_', '.', ':' and '-'",
        )
    } else if reserved {
        err(format!("`{s}` is reserved by ZFS and cannot name a pool"))
    } else {
        Check::Ok(s.to_string())
    }
}
