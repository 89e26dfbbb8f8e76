//! COSEM date-time, date and time (Blue Book, "date-time" / "date" / "time"
//! octet-string formats): parsing with validation of every field, ISO-8601
//! text, construction from components, and calendar arithmetic used by the
//! profile decoder to derive omitted clock values.
//!
//! Layout of the 12-byte date-time: year (u16, 0xFFFF not specified), month
//! (1..12, 0xFD DST end, 0xFE DST begin, 0xFF ns), day of month (1..31, 0xFD
//! second-last, 0xFE last, 0xFF ns), day of week (1..7 Monday first, 0xFF ns),
//! hour, minute, second, hundredths (0xFF ns), deviation (i16 minutes,
//! 0x8000 ns) and clock status (0xFF ns).
//!
//! Deviation sign (Blue Book: "deviation in minutes of local time to UTC"):
//! UTC = local time + deviation, so local time UTC+01:00 has deviation -60.

use crate::error::{Error, Layer, Result};

/// Deviation value meaning "not specified".
pub const DEVIATION_NOT_SPECIFIED: i16 = i16::MIN; // 0x8000
/// A one-byte field meaning "not specified".
pub const NS: u8 = 0xFF;

/// Clock status bits (Blue Book, clock status).
pub mod status {
    pub const INVALID: u8 = 0x01;
    pub const DOUBTFUL: u8 = 0x02;
    pub const DIFFERENT_CLOCK_BASE: u8 = 0x04;
    pub const INVALID_CLOCK_STATUS: u8 = 0x08;
    pub const DAYLIGHT_SAVING_ACTIVE: u8 = 0x80;

    /// Every defined bit with its Blue Book name (bits 4..6 are reserved).
    pub const NAMES: &[(u8, &str)] = &[
        (INVALID, "invalid-value"),
        (DOUBTFUL, "doubtful-value"),
        (DIFFERENT_CLOCK_BASE, "different-clock-base"),
        (INVALID_CLOCK_STATUS, "invalid-clock-status"),
        (DAYLIGHT_SAVING_ACTIVE, "daylight-saving-active"),
    ];
}

/// A COSEM date-time, field by field (raw values, special codes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CosemDateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub weekday: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub hundredths: u8,
    pub deviation: i16,
    pub clock_status: u8,
}

fn bad(field: &'static str, offset: usize, found: u8, expected: &'static str) -> Error {
    Error::invalid(Layer::Axdr, field, offset, found, expected)
}

/// Field names in errors: inside a date-time, or a bare date/time.
struct Names {
    month: &'static str,
    day: &'static str,
    weekday: &'static str,
    time: [&'static str; 4],
}

const DATE_TIME_NAMES: Names = Names {
    month: "date-time month",
    day: "date-time day of month",
    weekday: "date-time day of week",
    time: ["date-time hour", "date-time minute", "date-time second", "date-time hundredths"],
};

const BARE_NAMES: Names = Names {
    month: "date month",
    day: "date day of month",
    weekday: "date day of week",
    time: ["time hour", "time minute", "time second", "time hundredths"],
};

/// Validate the 5 date bytes (year, month, day, weekday) starting at `base`.
fn check_date(b: &[u8; 5], base: usize, names: &Names) -> Result<()> {
    let year = u16::from_be_bytes([b[0], b[1]]);
    let (month, day, wd) = (b[2], b[3], b[4]);
    if !(1..=12).contains(&month) && !(0xFD..=0xFF).contains(&month) {
        return Err(bad(names.month, base + 2, month, "1..12, 0xFD, 0xFE or 0xFF"));
    }
    if !(1..=31).contains(&day) && !(0xFD..=0xFF).contains(&day) {
        return Err(bad(names.day, base + 3, day, "1..31, 0xFD, 0xFE or 0xFF"));
    }
    if !(1..=7).contains(&wd) && wd != NS {
        return Err(bad(names.weekday, base + 4, wd, "1..7 or 0xFF"));
    }
    if (1..=12).contains(&month) && (1..=31).contains(&day) {
        let max = if year == 0xFFFF { days_in_month(2000, month) } else { days_in_month(year as i64, month) };
        if day > max {
            return Err(bad(names.day, base + 3, day, "a day that exists in that month"));
        }
    }
    Ok(())
}

/// Validate the 4 time bytes (hour, minute, second, hundredths) starting at `base`.
fn check_time(b: &[u8; 4], base: usize, names: &Names) -> Result<()> {
    let [h, m, sec, hu] = names.time;
    let limits: [(&'static str, u8, &'static str); 4] =
        [(h, 23, "0..23 or 0xFF"), (m, 59, "0..59 or 0xFF"), (sec, 59, "0..59 or 0xFF"), (hu, 99, "0..99 or 0xFF")];
    for (i, ((field, max, expected), v)) in limits.iter().zip(b.iter()).enumerate() {
        if *v > *max && *v != NS {
            return Err(bad(field, base + i, *v, expected));
        }
    }
    Ok(())
}

impl CosemDateTime {
    /// Parse and validate 12 bytes; errors name the field and its byte offset.
    #[inline]
    pub fn from_bytes(b: &[u8; 12]) -> Result<Self> {
        let [y0, y1, month, day, weekday, hour, minute, second, hundredths, d0, d1, clock_status] = *b;
        let deviation = i16::from_be_bytes([d0, d1]);
        // the common shape (a concrete time on days 1..28, valid in every
        // month) is checked in one go; anything else gets the field-by-field checks
        let common = (1..=12).contains(&month)
            && (1..=28).contains(&day)
            && ((1..=7).contains(&weekday) || weekday == NS)
            && hour <= 23
            && minute <= 59
            && second <= 59
            && (hundredths <= 99 || hundredths == NS)
            && (-720..=720).contains(&deviation);
        if !common {
            check_date(&[y0, y1, month, day, weekday], 0, &DATE_TIME_NAMES)?;
            check_time(&[hour, minute, second, hundredths], 5, &DATE_TIME_NAMES)?;
            if deviation != DEVIATION_NOT_SPECIFIED && !(-720..=720).contains(&deviation) {
                return Err(Error::invalid(Layer::Axdr, "date-time deviation", 9, deviation, "-720..720 or 0x8000"));
            }
        }
        Ok(CosemDateTime {
            year: u16::from_be_bytes([y0, y1]),
            month,
            day,
            weekday,
            hour,
            minute,
            second,
            hundredths,
            deviation,
            clock_status,
        })
    }

    /// Parse a slice that must be exactly 12 bytes long.
    #[inline]
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let arr: [u8; 12] = b.try_into().map_err(|_| {
            Error::invalid(Layer::Axdr, "date-time", 0, format!("{} bytes", b.len()), "exactly 12 bytes")
        })?;
        Self::from_bytes(&arr)
    }

    pub fn to_bytes(&self) -> [u8; 12] {
        let y = self.year.to_be_bytes();
        let d = self.deviation.to_be_bytes();
        [
            y[0],
            y[1],
            self.month,
            self.day,
            self.weekday,
            self.hour,
            self.minute,
            self.second,
            self.hundredths,
            d[0],
            d[1],
            self.clock_status,
        ]
    }

    /// A concrete date-time from components; the day of week is computed.
    /// `deviation` None = not specified, `clock_status` None = 0xFF.
    #[allow(clippy::too_many_arguments)]
    pub fn from_components(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        hundredths: Option<u8>,
        deviation: Option<i16>,
        clock_status: Option<u8>,
    ) -> Result<Self> {
        if year == 0xFFFF {
            return Err(Error::invalid(Layer::Axdr, "date-time year", 0, year, "0..65534"));
        }
        if !(1..=12).contains(&month) {
            return Err(bad("date-time month", 2, month, "1..12"));
        }
        if day == 0 || day > days_in_month(year as i64, month) {
            return Err(bad("date-time day of month", 3, day, "a day that exists in that month"));
        }
        let weekday = weekday_of(year as i64, month, day);
        let dt = CosemDateTime {
            year,
            month,
            day,
            weekday,
            hour,
            minute,
            second,
            hundredths: hundredths.unwrap_or(NS),
            deviation: deviation.unwrap_or(DEVIATION_NOT_SPECIFIED),
            clock_status: clock_status.unwrap_or(NS),
        };
        Self::from_bytes(&dt.to_bytes())
    }

    pub fn deviation(&self) -> Option<i16> {
        (self.deviation != DEVIATION_NOT_SPECIFIED).then_some(self.deviation)
    }

    pub fn clock_status(&self) -> Option<u8> {
        (self.clock_status != NS).then_some(self.clock_status)
    }

    /// True when year, month, day, hour and minute are all concrete values
    /// (seconds and hundredths not specified count as 0).
    pub fn is_concrete(&self) -> bool {
        self.year != 0xFFFF
            && (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour != NS
            && self.minute != NS
    }

    pub fn second_or_zero(&self) -> u8 {
        if self.second == NS {
            0
        } else {
            self.second
        }
    }

    /// Seconds since 1970-01-01T00:00 of the *local* wall time (ignores deviation).
    pub fn local_epoch_seconds(&self) -> Option<i64> {
        if !self.is_concrete() {
            return None;
        }
        let days = days_from_civil(self.year as i64, self.month, self.day);
        Some(days * 86_400 + self.hour as i64 * 3600 + self.minute as i64 * 60 + self.second_or_zero() as i64)
    }

    /// Seconds since the Unix epoch in UTC, when concrete and the deviation is specified.
    pub fn utc_epoch_seconds(&self) -> Option<i64> {
        let dev = self.deviation()?;
        Some(self.local_epoch_seconds()? + dev as i64 * 60)
    }

    /// The same local date-time shifted by `seconds` (deviation and status kept).
    pub fn plus_seconds(&self, seconds: i64) -> Option<Self> {
        let t = self.local_epoch_seconds()?.checked_add(seconds)?;
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let year = u16::try_from(y).ok().filter(|y| *y != 0xFFFF)?;
        Some(CosemDateTime {
            year,
            month: m,
            day: d,
            weekday: if self.weekday == NS { NS } else { weekday_of(y, m, d) },
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: if self.second == NS && secs % 60 == 0 { NS } else { (secs % 60) as u8 },
            hundredths: self.hundredths,
            deviation: self.deviation,
            clock_status: self.clock_status,
        })
    }

    /// ISO-8601 text (`2026-11-27T12:15:00+01:00`) for a concrete date-time;
    /// hundredths appear as `.hh` when specified; the UTC offset when the deviation is.
    pub fn to_iso(&self) -> Option<String> {
        if !self.is_concrete() {
            return None;
        }
        let mut s = Vec::with_capacity(32);
        write_iso_local(&mut s, self.year, self.month, self.day, self.hour, self.minute, self.second_or_zero());
        if self.hundredths != NS {
            s.push(b'.');
            push2(&mut s, self.hundredths);
        }
        if let Some(dev) = self.deviation() {
            let off = -(dev as i32); // local minus UTC
            s.push(if off < 0 { b'-' } else { b'+' });
            let a = off.unsigned_abs();
            push2(&mut s, (a / 60) as u8);
            s.push(b':');
            push2(&mut s, (a % 60) as u8);
        }
        String::from_utf8(s).ok()
    }
}

/// A COSEM date (5 bytes: year, month, day of month, day of week), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CosemDate(pub [u8; 5]);

impl CosemDate {
    pub fn from_bytes(b: &[u8; 5]) -> Result<Self> {
        check_date(b, 0, &BARE_NAMES)?;
        Ok(CosemDate(*b))
    }
    /// `YYYY-MM-DD` when year, month and day are concrete.
    pub fn to_iso(&self) -> Option<String> {
        let [y0, y1, m, d, _] = self.0;
        let y = u16::from_be_bytes([y0, y1]);
        if y == 0xFFFF || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let mut s = Vec::with_capacity(10);
        push2(&mut s, (y.min(9999) / 100) as u8);
        push2(&mut s, (y.min(9999) % 100) as u8);
        s.push(b'-');
        push2(&mut s, m);
        s.push(b'-');
        push2(&mut s, d);
        String::from_utf8(s).ok()
    }
}

/// A COSEM time (4 bytes: hour, minute, second, hundredths), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CosemTime(pub [u8; 4]);

impl CosemTime {
    pub fn from_bytes(b: &[u8; 4]) -> Result<Self> {
        check_time(b, 0, &BARE_NAMES)?;
        Ok(CosemTime(*b))
    }
    /// `HH:MM:SS[.hh]` when hour and minute are concrete.
    pub fn to_iso(&self) -> Option<String> {
        let [h, m, sec, hu] = self.0;
        if h == NS || m == NS {
            return None;
        }
        let mut s = Vec::with_capacity(11);
        push2(&mut s, h);
        s.push(b':');
        push2(&mut s, m);
        s.push(b':');
        push2(&mut s, if sec == NS { 0 } else { sec });
        if hu != NS {
            s.push(b'.');
            push2(&mut s, hu);
        }
        String::from_utf8(s).ok()
    }
}

/// Append two decimal digits.
pub fn push2(out: &mut Vec<u8>, v: u8) {
    out.push(b'0' + (v / 10) % 10);
    out.push(b'0' + v % 10);
}

/// Append `YYYY-MM-DDTHH:MM:SS`.
pub fn write_iso_local(out: &mut Vec<u8>, year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) {
    let y = year.min(9999);
    push2(out, (y / 100) as u8);
    push2(out, (y % 100) as u8);
    out.push(b'-');
    push2(out, month);
    out.push(b'-');
    push2(out, day);
    out.push(b'T');
    push2(out, hour);
    out.push(b':');
    push2(out, minute);
    out.push(b':');
    push2(out, second);
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era-based algorithm).
pub fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// ISO day of week, Monday = 1 .. Sunday = 7.
pub fn weekday_of(y: i64, m: u8, d: u8) -> u8 {
    // 1970-01-01 was a Thursday (4)
    ((days_from_civil(y, m, d) + 3).rem_euclid(7) + 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_with_offset() {
        // 2026-11-27 (Friday) 12:15:00, deviation -60 (UTC+1), status 0x00
        let b = [0x07, 0xEA, 11, 27, 5, 12, 15, 0, 0xFF, 0xFF, 0xC4, 0x00];
        let dt = CosemDateTime::from_bytes(&b).unwrap();
        assert_eq!(dt.deviation(), Some(-60));
        assert_eq!(dt.to_iso().unwrap(), "2026-11-27T12:15:00+01:00");
        assert_eq!(dt.utc_epoch_seconds().unwrap(), 1_795_778_100); // 11:15Z
        assert_eq!(dt.to_bytes(), b);
    }

    #[test]
    fn not_specified_fields() {
        let b = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0xFF];
        let dt = CosemDateTime::from_bytes(&b).unwrap();
        assert!(!dt.is_concrete());
        assert_eq!(dt.to_iso(), None);
        assert_eq!(dt.deviation(), None);
        let b = [0x07, 0xEA, 3, 1, 0xFF, 0, 0, 0xFF, 0xFF, 0x80, 0x00, 0xFF];
        assert_eq!(CosemDateTime::from_bytes(&b).unwrap().to_iso().unwrap(), "2026-03-01T00:00:00");
    }

    #[test]
    fn errors_name_the_field() {
        let mut b = [0x07, 0xEA, 11, 27, 5, 12, 15, 0, 0xFF, 0xFF, 0xC4, 0x00];
        b[2] = 13;
        let e = CosemDateTime::from_bytes(&b).unwrap_err();
        assert_eq!((e.field, e.offset), ("date-time month", 2));
        b[2] = 2;
        b[3] = 30;
        assert_eq!(CosemDateTime::from_bytes(&b).unwrap_err().field, "date-time day of month");
        b[3] = 1;
        b[5] = 24;
        assert_eq!(CosemDateTime::from_bytes(&b).unwrap_err().field, "date-time hour");
        b[5] = 0;
        b[9] = 0x7F;
        assert_eq!(CosemDateTime::from_bytes(&b).unwrap_err().field, "date-time deviation");
    }

    #[test]
    fn bare_date_and_time() {
        let d = CosemDate::from_bytes(&[0x07, 0xEA, 2, 29, 0xFF]).unwrap_err();
        assert_eq!((d.field, d.offset), ("date day of month", 3)); // 2026 is not a leap year
        let d = CosemDate::from_bytes(&[0x07, 0xE8, 2, 29, 4]).unwrap();
        assert_eq!(d.to_iso().unwrap(), "2024-02-29");
        assert_eq!(CosemDate::from_bytes(&[0xFF, 0xFF, 0xFE, 0xFE, 0xFF]).unwrap().to_iso(), None);
        let t = CosemTime::from_bytes(&[23, 59, 0xFF, 0xFF]).unwrap();
        assert_eq!(t.to_iso().unwrap(), "23:59:00");
        assert_eq!(CosemTime::from_bytes(&[1, 2, 3, 4]).unwrap().to_iso().unwrap(), "01:02:03.04");
        let e = CosemTime::from_bytes(&[0, 60, 0, 0]).unwrap_err();
        assert_eq!((e.field, e.offset), ("time minute", 1));
    }

    #[test]
    fn civil_days_known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday_of(2026, 11, 27), 5); // a Friday
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }

    #[test]
    fn plus_seconds_rolls_over_midnight_and_years() {
        let dt = CosemDateTime::from_components(2025, 12, 31, 23, 45, 0, None, Some(0), Some(0)).unwrap();
        let n = dt.plus_seconds(900).unwrap();
        assert_eq!(n.to_iso().unwrap(), "2026-01-01T00:00:00+00:00");
        assert_eq!(n.weekday, 4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_bytes_never_panic(b in proptest::array::uniform12(any::<u8>())) {
            if let Ok(dt) = CosemDateTime::from_bytes(&b) {
                prop_assert_eq!(dt.to_bytes(), b);
                let _ = dt.to_iso();
                let _ = dt.plus_seconds(86_400 * 400);
            }
        }

        /// The one-go check of the common shape accepts exactly what the field-by-field checks accept.
        #[test]
        fn fast_validation_matches_field_checks(
            year in prop_oneof![Just(0xFFFFu16), 1999u16..2101, any::<u16>()],
            month in prop_oneof![0u8..14, 0xFDu8..=0xFF], day in prop_oneof![0u8..33, 0xFDu8..=0xFF],
            weekday in prop_oneof![0u8..9, Just(0xFF)], hour in prop_oneof![0u8..25, Just(0xFF)],
            minute in prop_oneof![0u8..61, Just(0xFF)], second in prop_oneof![0u8..61, Just(0xFF)],
            hundredths in prop_oneof![0u8..101, Just(0xFF)],
            deviation in prop_oneof![Just(i16::MIN), -722i16..723, any::<i16>()],
        ) {
            let [y0, y1] = year.to_be_bytes();
            let [d0, d1] = deviation.to_be_bytes();
            let b = [y0, y1, month, day, weekday, hour, minute, second, hundredths, d0, d1, 0];
            let slow = check_date(&[y0, y1, month, day, weekday], 0, &DATE_TIME_NAMES)
                .and(check_time(&[hour, minute, second, hundredths], 5, &DATE_TIME_NAMES))
                .is_ok()
                && (deviation == DEVIATION_NOT_SPECIFIED || (-720..=720).contains(&deviation));
            prop_assert_eq!(CosemDateTime::from_bytes(&b).is_ok(), slow);
        }

        #[test]
        fn days_round_trip(z in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(z);
            prop_assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
