//! Writers of the JSON numbers and timestamps of [`super`], into byte
//! slices at a given position (the caller keeps enough room), so the hot loop
//! indexes instead of pushing: fixed-slot reading prefixes built once per
//! entry, exact decimals written digits-first from the right, floats via ryu.

use crate::cosem_datetime::{civil_from_days, days_from_civil, CosemDateTime};

/// Two decimal digits per entry, for writing numbers two digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The `{"timeStamp":"` opening of a reading.
const STAMP_OPEN: &[u8; 14] = b"{\"timeStamp\":\"";
/// The `","value":` between timestamp and value.
const STAMP_CLOSE: &[u8; 10] = b"\",\"value\":";
/// Room for a reading's prefix: opening, 19-char date-time, `.hh`, `Z`, closing.
pub(super) const STAMP_SLOT: usize = 48;

/// The `{"timeStamp":"…","value":` prefix of one entry's readings, in a
/// fixed-size slot so it is copied into each block without a call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    pub(super) bytes: [u8; STAMP_SLOT],
    pub(super) len: u8,
}

/// Two digits of `v` (0..=99) at `at`.
#[inline(always)]
fn put2(out: &mut [u8], at: usize, v: u8) {
    let i = (v as usize % 100) * 2;
    if let (Some(dst), Some(src)) = (out.get_mut(at..at + 2), DIGIT_PAIRS.get(i..i + 2)) {
        dst.copy_from_slice(src);
    }
}

/// The last calendar conversions of [`stamp`]: consecutive entries mostly
/// share a day, so both conversions are usually skipped.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DayCache {
    /// The last local (year, month, day) and its day number.
    local: Option<((u16, u8, u8), i64)>,
    /// The last UTC day number and its `YYYY-MM-DD` text (None: outside years 0..9999).
    utc: Option<(i64, Option<[u8; 10]>)>,
}

/// `YYYY-MM-DD` of a day number, when in years 0..9999.
fn date_text(days: i64) -> Option<[u8; 10]> {
    let (y, m, d) = civil_from_days(days);
    let year = u16::try_from(y).ok().filter(|y| *y <= 9999)?;
    let mut b = [b'-'; 10];
    put2(&mut b, 0, (year / 100) as u8);
    put2(&mut b, 2, (year % 100) as u8);
    put2(&mut b, 5, m);
    put2(&mut b, 8, d);
    Some(b)
}

/// The reading prefix of a clock: UTC with `Z` when the deviation is
/// specified, else the local time without offset; None when not concrete or
/// outside years 0..9999.
pub(super) fn stamp(dt: &CosemDateTime, cache: &mut DayCache, b: &mut [u8; STAMP_SLOT]) -> Option<u8> {
    if !dt.is_concrete() {
        return None;
    }
    let key = (dt.year, dt.month, dt.day);
    let local_days = match cache.local {
        Some((k, days)) if k == key => days,
        _ => {
            let days = days_from_civil(dt.year as i64, dt.month, dt.day);
            cache.local = Some((key, days));
            days
        }
    };
    let local = local_days * 86_400 + dt.hour as i64 * 3600 + dt.minute as i64 * 60 + dt.second_or_zero() as i64;
    let t = match dt.deviation() {
        Some(dev) => local + dev as i64 * 60,
        None => local,
    };
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let date = match cache.utc {
        Some((d, text)) if d == days => text,
        _ => {
            let text = date_text(days);
            cache.utc = Some((days, text));
            text
        }
    }?;
    b[..14].copy_from_slice(STAMP_OPEN);
    b[14..24].copy_from_slice(&date);
    b[24] = b'T';
    put2(b, 25, (secs / 3600) as u8);
    b[27] = b':';
    put2(b, 28, (secs / 60 % 60) as u8);
    b[30] = b':';
    put2(b, 31, (secs % 60) as u8);
    let mut n = 33;
    if dt.hundredths != 0xFF && dt.hundredths != 0 {
        b[n] = b'.';
        put2(b, n + 1, dt.hundredths);
        n += 3;
    }
    if dt.deviation().is_some() {
        b[n] = b'Z';
        n += 1;
    }
    b.get_mut(n..n + 10)?.copy_from_slice(STAMP_CLOSE);
    Some((n + 10) as u8)
}

/// The number of decimal digits of `v` (1 for 0).
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Exactly `n` digits of `v` (zero-padded; higher digits dropped) at `at`.
#[inline(always)]
fn put_digits(out: &mut [u8], at: usize, mut v: u64, n: usize) {
    let mut end = at + n;
    while end >= at + 2 {
        put2(out, end - 2, (v % 100) as u8);
        v /= 100;
        end -= 2;
    }
    if end > at {
        if let Some(c) = out.get_mut(at) {
            *c = b'0' + (v % 10) as u8;
        }
    }
}

/// `mantissa × 10^scaler` as [`super::write_decimal`] writes it, at `at` of a slice
/// with room for it (22 + |scaler| bytes); returns the end.
#[inline(always)]
pub(super) fn put_decimal(out: &mut [u8], mut at: usize, negative: bool, magnitude: u64, scaler: i8) -> usize {
    if negative && magnitude != 0 {
        if let Some(c) = out.get_mut(at) {
            *c = b'-';
        }
        at += 1;
    }
    if scaler >= 0 {
        let n = digit_count(magnitude);
        put_digits(out, at, magnitude, n);
        at += n;
        if magnitude != 0 && scaler > 0 {
            let z = scaler as usize;
            if let Some(dst) = out.get_mut(at..at + z) {
                dst.fill(b'0');
            }
            at += z;
        }
        return at;
    }
    let k = scaler.unsigned_abs() as usize;
    // 10^19 is the largest power of ten in a u64; beyond it every digit is a fraction digit
    let (int, frac) = match 10u64.checked_pow(k as u32) {
        Some(p) => (magnitude / p, magnitude % p),
        None => (0, magnitude),
    };
    let n = digit_count(int);
    put_digits(out, at, int, n);
    at += n;
    if let Some(c) = out.get_mut(at) {
        *c = b'.';
    }
    at += 1;
    let nd = digit_count(frac).min(k);
    if let Some(dst) = out.get_mut(at..at + k - nd) {
        dst.fill(b'0');
    }
    put_digits(out, at + k - nd, frac, nd);
    at + k
}

/// `mantissa × 10^scaler` for scalers -19..=0 (any other goes to
/// [`put_decimal`]), written straight into place: the length is known from
/// the digit count, digits go in backwards (no staging buffer read back,
/// which would stall on store forwarding).
#[inline(always)]
pub(super) fn put_decimal_fast(out: &mut [u8], at: usize, negative: bool, magnitude: u64, scaler: i8) -> usize {
    if !(-19..=0).contains(&scaler) {
        return put_decimal(out, at, negative, magnitude, scaler);
    }
    let k = scaler.unsigned_abs() as usize;
    let neg = negative && magnitude != 0;
    let int_digits = digit_count(magnitude).saturating_sub(k).max(1);
    let start = at + neg as usize;
    let dot = start + int_digits;
    let end = if k == 0 { dot } else { dot + 1 + k };
    let mut v = magnitude;
    let mut e = end;
    for _ in 0..k / 2 {
        e -= 2;
        put2(out, e, (v % 100) as u8);
        v /= 100;
    }
    if k % 2 == 1 {
        if let Some(c) = out.get_mut(e - 1) {
            *c = b'0' + (v % 10) as u8;
        }
        v /= 10;
    }
    if k > 0 {
        if let Some(c) = out.get_mut(dot) {
            *c = b'.';
        }
    }
    put_digits(out, start, v, int_digits);
    if neg {
        if let Some(c) = out.get_mut(at) {
            *c = b'-';
        }
    }
    end
}

/// A float column: value × 10^scaler, shortest round-trip text; null when not finite.
pub(super) fn put_float(out: &mut [u8], at: usize, v: f64, scaler: i8) -> usize {
    let x = v * 10f64.powi(scaler as i32);
    let mut b = ryu::Buffer::new();
    let text = if x.is_finite() { b.format_finite(x).as_bytes() } else { b"null" };
    if let Some(dst) = out.get_mut(at..at + text.len()) {
        dst.copy_from_slice(text);
    }
    at + text.len()
}
