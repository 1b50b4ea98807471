//! A cached IMF-fixdate for the `Date` response header.
//!
//! Formatting happens at most once per unix second: [`DateCache::update`]
//! compares the second with the one last formatted and returns early when it
//! is unchanged, so a server can call it once per loop iteration.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// Largest unix second that still has a four-digit year
/// (`Fri, 31 Dec 9999 23:59:59 GMT`); later times are clamped to it.
const MAX_SECS: u64 = 253_402_300_799;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The formatted `Date` value for one unix second.
///
/// Invariant: `as_bytes()` is always exactly [`DATE_LEN`] bytes of valid
/// IMF-fixdate (RFC 9110 §5.6.7) in ASCII. Times before 1970 are clamped to
/// the epoch and times after year 9999 to its last second.
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: Option<u64>,
    buf: [u8; DATE_LEN],
}

impl DateCache {
    /// A cache holding the epoch (`Thu, 01 Jan 1970 00:00:00 GMT`); the first
    /// [`update`](Self::update) always re-formats.
    pub fn new() -> Self {
        let mut buf = [0; DATE_LEN];
        format_imf_fixdate(0, &mut buf);
        DateCache { secs: None, buf }
    }

    /// Re-formats the date for `now`, but only when its unix second differs
    /// from the one formatted last.
    pub fn update(&mut self, now: SystemTime) {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(MAX_SECS);
        if self.secs != Some(secs) {
            format_imf_fixdate(secs, &mut self.buf);
            self.secs = Some(secs);
        }
    }

    /// The unix second formatted last (`None` before the first [`update`](Self::update)).
    pub fn secs(&self) -> Option<u64> {
        self.secs
    }

    /// The formatted date, [`DATE_LEN`] ASCII bytes without CRLF.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day), month and day 1-based. Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn put2(out: &mut [u8], v: u64) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Writes `secs` (clamped to [`MAX_SECS`]) as an IMF-fixdate into `out`.
fn format_imf_fixdate(secs: u64, out: &mut [u8; DATE_LEN]) {
    let secs = secs.min(MAX_SECS);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let year = year.clamp(0, 9999) as u64;
    out.copy_from_slice(b"Thu, 01 Jan 1970 00:00:00 GMT");
    out[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
    put2(&mut out[5..7], u64::from(day));
    out[8..11].copy_from_slice(MONTHS[(month as usize).clamp(1, 12) - 1]);
    put2(&mut out[12..14], year / 100);
    put2(&mut out[14..16], year);
    put2(&mut out[17..19], rem / 3600);
    put2(&mut out[20..22], rem / 60 % 60);
    put2(&mut out[23..25], rem % 60);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> DateCache {
        let mut cache = DateCache::new();
        cache.update(UNIX_EPOCH + Duration::from_secs(secs));
        cache
    }

    #[test]
    fn formats_known_dates() {
        let table: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (MAX_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, text) in table {
            assert_eq!(at(secs).as_bytes(), text.as_bytes(), "{secs}");
        }
    }

    #[test]
    fn clamps_times_outside_four_digit_years() {
        assert_eq!(
            at(u64::MAX / 2).as_bytes(),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        let mut cache = DateCache::new();
        cache.update(UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(cache.as_bytes(), b"Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn reformats_only_when_the_second_changes() {
        let mut cache = at(784_111_777);
        cache.update(UNIX_EPOCH + Duration::from_millis(784_111_777_999));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        cache.update(UNIX_EPOCH + Duration::from_secs(784_111_778));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }

    #[test]
    fn agrees_with_day_arithmetic_for_every_day_over_centuries() {
        // Walk day by day from 1970 to 2400 and check the calendar advances
        // by exactly one day each time.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
