//! Dates as the installer, the agent and the join-keys maker write them, on the `time` crate:
//! one place for the calendar arithmetic.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch as an RFC 3339 UTC date-time with whole seconds
/// (`2026-01-01T00:00:00Z`), which TOML reads as an offset date-time. Times past the year
/// 9999, which RFC 3339 cannot write, come out as the last second of 9999.
pub fn rfc3339(unix_secs: u64) -> String {
    let t = i64::try_from(unix_secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(LAST);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "9999-12-31T23:59:59Z".to_string())
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const LAST: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(253_402_300_799) {
    Ok(t) => t,
    Err(_) => OffsetDateTime::UNIX_EPOCH,
};

/// Today's date (UTC) as year, month (1-12) and day (1-31).
pub fn today_utc() -> (i32, u8, u8) {
    let d = OffsetDateTime::now_utc().date();
    (d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_000_000, "2026-11-18T11:06:40Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (u64::MAX, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), want, "{secs}");
        }
    }

    #[test]
    fn today_is_a_real_date() {
        let (y, m, d) = today_utc();
        assert!((2025..2200).contains(&y), "{y}");
        assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{m} {d}");
    }
}
