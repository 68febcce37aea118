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
    pub year: i64,
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
            year: i64::from(tm.tm_year) + 1900,
            month: (tm.tm_mon + 1) as u8,
            mday: tm.tm_mday as u8,
            hour: tm.tm_hour as u8,
            minute: tm.tm_min as u8,
        }
    }

    fn utc(secs: i64) -> Clock {
        let day = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, mday) = loopchat_protocol::time::civil_from_days(day);
        Clock {
            day,
            year,
            month: month as u8,
            mday: mday as u8,
            hour: (of_day / 3600) as u8,
            minute: (of_day % 3600 / 60) as u8,
        }
    }

    /// The local time of a moment in unix milliseconds (a `time` tag).
    pub fn local_ms(ms: i64) -> Clock {
        Clock::local(ms.div_euclid(1000))
    }

    /// `HH:MM`: always five columns, so the message column lines up (the
    /// day is on the separator above, [`Clock::day_label`]).
    pub fn short(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }

    /// The day, as a separator between days shows it: `Mon 2026-12-07`.
    pub fn day_label(&self) -> String {
        const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[(self.day + 4).rem_euclid(7) as usize];
        format!(
            "{weekday} {:04}-{:02}-{:02}",
            self.year, self.month, self.mday
        )
    }
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
        use loopchat_protocol::time::parse_utc;
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-11-22T10:15:03Z"), Some(1_795_342_503));
        assert_eq!(parse_utc("2026-11-22 10:15:03"), None);
        assert_eq!(parse_utc("2026-13-22T10:15:03Z"), None);
        let c = Clock::utc(1_795_342_503);
        assert_eq!((c.month, c.mday, c.hour, c.minute), (11, 22, 10, 15));
        assert_eq!(c.day_label(), "Sun 2026-11-22");
        assert_eq!(Clock::utc(0).day_label(), "Thu 1970-01-01");
    }
}
