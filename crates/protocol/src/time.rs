//! The protocol's time stamps: UTC as `YYYY-MM-DDTHH:MM:SSZ`, written and
//! read back without a date library.

/// Appends Unix seconds `ts` as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn write_utc(ts: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Unix seconds `ts` as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(ts: i64) -> String {
    let mut out = Vec::with_capacity(20);
    write_utc(ts, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC) into Unix seconds; `None` for
/// anything else.
pub fn parse_utc(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    let shape = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        let digits = stamp.get(r)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Only the stamps `write_utc` writes: a real day of a real month, no
    // leap second (it would be written back as the next minute's :00).
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    if d < 1 || d > i64::from(days_in_month(y, mo as u32)) {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_written_and_read_back() {
        for (ts, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_342_503, "2026-11-22T10:15:03Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(format_utc(ts), text);
            assert_eq!(parse_utc(text), Some(ts), "{text}");
        }
        assert_eq!(parse_utc("2026-11-22 10:15:03"), None);
        assert_eq!(parse_utc("2026-13-22T10:15:03Z"), None);
        assert_eq!(parse_utc("+026-11-22T10:15:03Z"), None);
    }

    /// Fuzzing (`server_lines`, finding 8): the reader took stamps the
    /// writer never writes, so a client showed another time than the line
    /// said: any byte where the colons go, a 60th second, a 31st of
    /// February (read as 3 March).
    #[test]
    fn only_stamps_as_written_are_read() {
        for stamp in [
            "1013-12-07T10=15:03Z",
            "2026-12-07T10:15=03Z",
            "2026-12-07T10:15:60Z",
            "2026-02-29T10:15:03Z",
            "2026-02-31T10:15:03Z",
            "2026-04-31T10:15:03Z",
            "2026-12-00T10:15:03Z",
        ] {
            assert_eq!(parse_utc(stamp), None, "{stamp}");
        }
        for stamp in [
            "2024-02-29T23:59:59Z",
            "2026-12-31T00:00:00Z",
            "0000-01-01T00:00:00Z",
        ] {
            let ts = parse_utc(stamp).expect(stamp);
            assert_eq!(format_utc(ts), stamp);
        }
    }
}
