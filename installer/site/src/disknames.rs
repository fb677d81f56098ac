//! Checks for the values that name disks: by-id names, WWNs, globs, and the kernel device
//! names (`/dev/sda`) that are refused everywhere.

use crate::check::{err, err_hint, Check};
use crate::glob::glob_check;
use crate::schema::{KERNEL_NAME_HINT, KERNEL_NAME_WHY};

/// Whether `s` is (or ends in) a kernel block-device name such as `/dev/sda`, `sdb1`,
/// `nvme0n1`, `vda`, `mmcblk0`.
pub fn looks_like_kernel_disk(s: &str) -> bool {
    if s.starts_with("/dev/") && !s.starts_with("/dev/disk/") {
        return true;
    }
    let name = s.rsplit('/').next().unwrap_or(s);
    let strip_digits = |t: &str| t.trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
    let letters_then_digits = |rest: &str| {
        let r = strip_digits(rest);
        !r.is_empty() && r.len() <= 3 && r.chars().all(|c| c.is_ascii_lowercase())
    };
    for prefix in ["sd", "hd", "vd", "xvd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if letters_then_digits(rest) {
                return true;
            }
        }
    }
    let numbered = |rest: &str| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit());
    if let Some(rest) = name.strip_prefix("nvme") {
        // nvme0n1, nvme0n1p2
        let core = rest.split('p').next().unwrap_or(rest);
        if let Some((a, b)) = core.split_once('n') {
            return numbered(a) && numbered(b);
        }
    }
    if let Some(rest) = name.strip_prefix("mmcblk") {
        return numbered(rest.split('p').next().unwrap_or(rest));
    }
    false
}

pub(crate) fn by_id(s: &str) -> Check<String> {
    let name = s.strip_prefix("/dev/disk/by-id/").unwrap_or(s);
    if looks_like_kernel_disk(name) || (s.starts_with("/dev/") && name.len() == s.len()) {
        return err_hint(KERNEL_NAME_WHY, KERNEL_NAME_HINT);
    }
    if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
        return err_hint(format!("`{s}` is not a /dev/disk/by-id/ name"),
            "copy a name from ls -l /dev/disk/by-id, e.g. \"nvme-Samsung_SSD_980_1TB_S64ANS0T123456\"");
    }
    if let Some(at) = name.rfind("-part") {
        if name[at + 5..].parse::<u32>().is_ok() {
            return err_hint(
                format!("`{name}` names a partition, not a disk"),
                format!("name the whole disk: \"{}\"", &name[..at]),
            );
        }
    }
    Check::Ok(name.to_string())
}

pub(crate) fn wwn(s: &str) -> Check<String> {
    if let Some(rest) = s.strip_prefix("wwn-") {
        return err_hint(
            format!("`{s}` is a by-id name, not a WWN"),
            format!("write wwn = \"{rest}\" or by-id = \"{s}\""),
        );
    }
    if looks_like_kernel_disk(s) {
        return err_hint(KERNEL_NAME_WHY, KERNEL_NAME_HINT);
    }
    let body = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("eui."))
        .or_else(|| s.strip_prefix("naa."));
    match body {
        Some(b) if !b.is_empty() && b.chars().all(|c| c.is_ascii_hexdigit()) => Check::Ok(s.to_ascii_lowercase()),
        _ if s.starts_with("nvme.") || s.starts_with("t10.") => Check::Ok(s.to_string()),
        _ => err_hint(format!("`{s}` is not a WWN"),
            "write it as lsblk -o WWN shows it, e.g. \"0x5002538e40a1b2c3\" or \"eui.0025388b91d1c2e3\""),
    }
}

pub(crate) fn glob(s: &str) -> Check<String> {
    if s.starts_with("/dev/") {
        return err_hint(KERNEL_NAME_WHY, KERNEL_NAME_HINT);
    }
    match glob_check(s) {
        Ok(()) => Check::Ok(s.to_string()),
        Err(m) => err(format!("bad glob `{s}`: {m}")),
    }
}
