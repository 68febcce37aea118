//! Making server text safe to show, and local clock times.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes text safe to print: control characters that a terminal would act on
/// (C0 except TAB, DEL, C1) become visible escapes such as `\x1b` or
/// `\u{9b}`. The loopchat server already scrubs other clients' text, but the
/// client must not rely on the server it happens to talk to.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    // `char::is_control` is exactly C0, DEL and C1.
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => shown.push(c),
            '\u{0}'..='\u{1f}' | '\u{7f}' => shown.push_str(&format!("\\x{:02x}", u32::from(c))),
            '\u{80}'..='\u{9f}' => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            _ => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// Text for a cell grid: controls escaped as in [`escape_controls`], and TAB
/// (which a screen of cells cannot show) as a space.
pub fn for_screen(text: &str) -> String {
    escape_controls(text).replace('\t', " ")
}

/// A wall-clock moment as shown on screen, in the local time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Days since 1970-01-01 in local time, to tell today from other days.
    pub day: i64,
    pub month: u8,
    pub mday: u8,
    pub hour: u8,
    pub minute: u8,
}

impl Clock {
    pub fn now() -> Clock {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Clock::local(secs)
    }

    /// The local time of a Unix time.
    pub fn local(secs: i64) -> Clock {
        let t = secs as libc::time_t;
        // SAFETY: `tm` is plain data; localtime_r writes it and returns
        // null on failure, which we check.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            return Clock::utc(secs);
        }
        let offset = tm.tm_gmtoff;
        Clock {
            day: (secs + offset).div_euclid(86_400),
            month: (tm.tm_mon + 1) as u8,
            mday: tm.tm_mday as u8,
            hour: tm.tm_hour as u8,
            minute: tm.tm_min as u8,
        }
    }

    fn utc(secs: i64) -> Clock {
        let day = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (_, month, mday) = civil_from_days(day);
        Clock {
            day,
            month,
            mday,
            hour: (of_day / 3600) as u8,
            minute: (of_day % 3600 / 60) as u8,
        }
    }

    /// `HH:MM` for today, `MM-DD` for another day (history). Always five
    /// columns, so the message column lines up.
    pub fn short(&self, today: i64) -> String {
        if self.day == today {
            format!("{:02}:{:02}", self.hour, self.minute)
        } else {
            format!("{:02}-{:02}", self.month, self.mday)
        }
    }
}

/// Parses the protocol's history time, `YYYY-MM-DDTHH:MM:SSZ` (UTC), into a
/// Unix time.
pub fn parse_utc(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u8, d as u8) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_tabs_become_spaces_on_screen() {
        assert_eq!(
            escape_controls("a\x1b[2Jb\u{9b}c\td"),
            "a\\x1b[2Jb\\u{9b}c\td"
        );
        assert_eq!(for_screen("a\tb\x07"), "a b\\x07");
        assert!(matches!(escape_controls("plain ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn history_times_parse_as_utc() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-11-22T10:15:03Z"), Some(1_795_342_503));
        assert_eq!(parse_utc("2026-11-22 10:15:03"), None);
        assert_eq!(parse_utc("2026-13-22T10:15:03Z"), None);
        let c = Clock::utc(1_795_342_503);
        assert_eq!((c.month, c.mday, c.hour, c.minute), (11, 22, 10, 15));
    }
}
