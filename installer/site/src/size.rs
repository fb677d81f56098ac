//! Disk sizes as people write them.
//!
//! An integer is bytes. A string is a number (optionally with a decimal fraction) and a suffix:
//! - `K`, `M`, `G`, `T`, `P` and `KiB`, `MiB`, `GiB`, `TiB`, `PiB` are binary (powers of 1024),
//!   the way `lsblk` and most Linux tools print sizes;
//! - `KB`, `MB`, `GB`, `TB`, `PB` are decimal (powers of 1000), the way disk vendors label them:
//!   a "1 TB" SSD holds 1,000,000,000,000 bytes, which `lsblk` shows as `931.3G`;
//! - `B` or no suffix is bytes.
//!
//! Letters are case-insensitive (`200g` = `200G`). `_` may group digits (`1_000GB`).

/// Parses a size string into bytes. The error says what is wrong, for a diagnostic.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s: String = text.trim().chars().filter(|&c| c != '_').collect();
    if s.is_empty() {
        return Err("empty size".into());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let suffix = suffix.trim();
    let mult: u128 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => {
            return Err(format!(
                "unknown size suffix `{suffix}` (use K, M, G, T, P for powers of 1024 or KB, \
                 MB, GB, TB, PB for powers of 1000)"
            ))
        }
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(format!("`{text}` has no number"));
    }
    if frac.contains('.') || (!frac.is_empty() && frac.len() > 9) {
        return Err(format!("`{text}` is not a number"));
    }
    let digits = |d: &str| -> Result<u128, String> {
        if d.is_empty() {
            return Ok(0);
        }
        d.parse::<u128>()
            .map_err(|_| format!("`{text}` is too large"))
    };
    let int_v = digits(int)?;
    let frac_v = digits(frac)?;
    let scale = 10u128.pow(u32::try_from(frac.len()).unwrap_or(0));
    let bytes = int_v
        .checked_mul(mult)
        .and_then(|b| b.checked_add(frac_v * mult / scale))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if !(frac_v * mult).is_multiple_of(scale) {
        return Err(format!("`{text}` is not a whole number of bytes"));
    }
    u64::try_from(bytes).map_err(|_| format!("`{text}` is too large"))
}

/// Formats bytes the way `lsblk` does (binary units, one decimal), e.g. `931.5G`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut unit = 0;
    let mut whole = bytes;
    let mut rem = 0u64;
    while whole >= 1024 && unit < UNITS.len() - 1 {
        rem = whole % 1024;
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let tenth = rem * 10 / 1024;
    if tenth == 0 {
        format!("{whole}{}", UNITS[unit])
    } else {
        format!("{whole}.{tenth}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("200G"), Ok(200 << 30));
        assert_eq!(parse_size("200GiB"), Ok(200 << 30));
        assert_eq!(parse_size("200g"), Ok(200 << 30));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_size("1_000 GB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("2P"), Ok(2 << 50));
        assert_eq!(parse_size("16 K"), Ok(16384));
    }

    #[test]
    fn refuses_nonsense() {
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("12X")
            .unwrap_err()
            .contains("unknown size suffix"));
        assert!(parse_size("1.2.3G").is_err());
        assert!(parse_size("99999999999999999999P")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("20000P").unwrap_err().contains("too large"));
        assert!(parse_size("1.1B").unwrap_err().contains("whole number"));
        assert!(parse_size("-1G").is_err());
    }

    #[test]
    fn formats_like_lsblk() {
        assert_eq!(format_size(1_000_000_000_000), "931.3G");
        assert_eq!(format_size(256 << 30), "256G");
        assert_eq!(format_size(100), "100B");
    }
}
