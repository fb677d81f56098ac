//! Parsers for the text formats the probe reads: the udev database, `mountinfo`, udev's and the
//! kernel's escapes, sysfs attributes.

use super::root::SysRoot;
use std::collections::BTreeMap;

/// One record of the udev database (`/run/udev/data/b8:0`, `.../n2`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UdevRecord {
    /// `E:KEY=VALUE` lines.
    pub props: BTreeMap<String, String>,
    /// `S:` lines: symlinks under `/dev`, e.g. `disk/by-id/wwn-0x5000...`.
    pub links: Vec<String>,
}

impl UdevRecord {
    /// A non-empty property.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A property holding udev's `\xNN` escapes, decoded, trimmed, non-empty.
    pub fn decoded(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| decode_hex_escapes(v).trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// `KEY_ENC` decoded (udev writes unsafe bytes as `\xNN`), else `KEY`; trimmed, non-empty.
    pub fn get_enc(&self, key: &str) -> Option<String> {
        let enc = self.get(&format!("{key}_ENC")).map(decode_hex_escapes);
        enc.or_else(|| self.get(key).map(str::to_string))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// Parses a udev database record; unknown line types are ignored.
pub(crate) fn parse_udev(text: &str) -> UdevRecord {
    let mut rec = UdevRecord::default();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                rec.props.insert(k.to_string(), v.to_string());
            }
        } else if let Some(link) = line.strip_prefix("S:") {
            rec.links.push(link.to_string());
        }
    }
    rec
}

/// Reads `run/udev/data/<key>`; a missing record (no udev, or a fixture without it) is empty.
pub(crate) fn read_udev(root: &dyn SysRoot, key: &str) -> UdevRecord {
    root.read_to_string(&format!("run/udev/data/{key}"))
        .map(|t| parse_udev(&t))
        .unwrap_or_default()
}

/// Decodes udev's `\xNN` escapes (`Samsung\x20SSD` -> `Samsung SSD`).
pub(crate) fn decode_hex_escapes(s: &str) -> String {
    decode_escapes(s, "x", 2, 16)
}

/// Decodes the kernel's octal escapes in mountinfo (`\040` is a space).
fn decode_octal_escapes(s: &str) -> String {
    decode_escapes(s, "", 3, 8)
}

/// Replaces `\` + `prefix` + `digits` digits in `radix` by the byte they encode; anything
/// that does not decode is kept as it is.
fn decode_escapes(s: &str, prefix: &str, digits: usize, radix: u32) -> String {
    let b = s.as_bytes();
    let escape = 1 + prefix.len() + digits;
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + escape <= b.len() && b[i + 1..].starts_with(prefix.as_bytes()) {
            if let Some(v) = std::str::from_utf8(&b[i + 1 + prefix.len()..i + escape])
                .ok()
                .and_then(|d| u8::from_str_radix(d, radix).ok())
            {
                out.push(v);
                i += escape;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `major:minor` of the mounted device (field 3).
    pub devno: String,
    /// Mount point (field 5), unescaped.
    pub mountpoint: String,
    /// Filesystem type (first field after ` - `).
    pub fstype: String,
}

/// Parses mountinfo; malformed lines are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            Some(Mount {
                devno: f.get(2)?.to_string(),
                mountpoint: decode_octal_escapes(f.get(4)?),
                fstype: post.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// A sysfs attribute, trimmed, non-empty.
pub(crate) fn attr(root: &dyn SysRoot, path: &str) -> Option<String> {
    root.read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A numeric sysfs attribute.
pub(crate) fn attr_u64(root: &dyn SysRoot, path: &str) -> Option<u64> {
    attr(root, path)?.parse().ok()
}

/// The kernel counts `size` and `start` in 512-byte sectors whatever the device's sector size.
pub(crate) const SECTOR: u64 = 512;

/// A sysfs count of 512-byte sectors (`size`, `start`) in bytes, 0 when absent or unreadable.
/// A count whose bytes do not fit 64 bits is no real disk's: an error naming the file, never a
/// wrapped (tiny) size.
pub(crate) fn sectors_attr(root: &dyn SysRoot, path: &str) -> anyhow::Result<u64> {
    let Some(n) = attr_u64(root, path) else {
        return Ok(0);
    };
    n.checked_mul(SECTOR)
        .ok_or_else(|| impossible(root, path, &format!("{n} sectors of 512 bytes"), "no disk"))
}

/// An impossible value read from `path`: the error says which file holds what.
pub(crate) fn impossible(root: &dyn SysRoot, path: &str, value: &str, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} holds {value}, which {what} can have: the file is damaged or not from a running \
         Linux system",
        root.display_path(path)
    )
}

/// Last component of a link text (`../../../0000:01:00.0` -> `0000:01:00.0`).
pub(crate) fn basename(text: &str) -> &str {
    text.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udev_record_and_escapes() {
        let rec = parse_udev(
            "S:disk/by-id/ata-X\nI:123\nE:ID_MODEL=Samsung_SSD\nE:ID_MODEL_ENC=Samsung\\x20SSD\\x20\\x20\nE:EMPTY=\n",
        );
        assert_eq!(rec.links, vec!["disk/by-id/ata-X"]);
        assert_eq!(rec.get_enc("ID_MODEL").as_deref(), Some("Samsung SSD"));
        assert_eq!(rec.get("EMPTY"), None);
        assert_eq!(decode_hex_escapes("a\\x2fb\\x"), "a/b\\x");
        assert_eq!(decode_hex_escapes("\\040\\xzz"), "\\040\\xzz");
        assert_eq!(decode_octal_escapes("a\\040b\\9zz\\04"), "a b\\9zz\\04");
    }

    #[test]
    fn mountinfo_fields() {
        let m = parse_mountinfo(
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
             40 27 8:17 / /media/my\\040stick ro shared:5 - iso9660 /dev/sdb1 ro\nbogus\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].devno, "8:17");
        assert_eq!(m[1].mountpoint, "/media/my stick");
        assert_eq!(m[1].fstype, "iso9660");
    }
}
