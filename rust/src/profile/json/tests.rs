//! Differential tests of the JSON writer: the straightforward Vec-pushing
//! implementation it replaced (kept here verbatim as the reference) must
//! produce byte-identical output on generated profiles, and the fast decimal
//! writers must agree with [`write_decimal`] for every scaler.

use super::*;
use crate::axdr::Data;
use crate::cosem_datetime::{civil_from_days, push2, write_iso_local};
use proptest::prelude::*;

#[derive(Debug, Default)]
struct RefScratch {
    stamps: Vec<u8>,
    stamp_ends: Vec<usize>,
    statuses: Vec<u8>,
    nums: Vec<Num>,
    out: Vec<u8>,
}

/// Append the timestamp of a clock: UTC with `Z` when the deviation is
/// specified, else the local time without offset.
fn write_timestamp(out: &mut Vec<u8>, dt: &CosemDateTime) -> bool {
    let Some(local) = dt.local_epoch_seconds() else {
        return false;
    };
    let t = match dt.deviation() {
        Some(dev) => local + dev as i64 * 60,
        None => local,
    };
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let Ok(year) = u16::try_from(y) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    write_iso_local(out, year, m, d, (secs / 3600) as u8, (secs / 60 % 60) as u8, (secs % 60) as u8);
    if dt.hundredths != 0xFF && dt.hundredths != 0 {
        out.push(b'.');
        push2(out, dt.hundredths);
    }
    if dt.deviation().is_some() {
        out.push(b'Z');
    }
    true
}

/// A captured value of a value column, kept between the two passes.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    U64(u64),
    Float(f64),
    /// null-data: no value captured for this entry, no reading
    Skip,
}

/// The buffer as the JSON `IntervalBlocks` list (see the module doc). Pass
/// one parses the entries into timestamps, status bytes and numbers; pass two
/// writes the blocks column by column into one right-sized buffer.
fn reference_json(
    buf: &[u8],
    clock_column: usize,
    columns: &[ColumnSpec],
    status_column: Option<usize>,
    capture_period: Option<u32>,
) -> Result<Vec<u8>> {
    let mut scratch = RefScratch::default();
    reference_with(&mut scratch, buf, clock_column, columns, status_column, capture_period)?;
    Ok(scratch.out)
}

/// The pre-optimisation `profile_to_json_with`, kept verbatim as the reference.
fn reference_with(
    scratch: &mut RefScratch,
    buf: &[u8],
    clock_column: usize,
    columns: &[ColumnSpec],
    status_column: Option<usize>,
    capture_period: Option<u32>,
) -> Result<()> {
    let RefScratch { stamps, stamp_ends, statuses, nums, out } = scratch;
    stamps.clear();
    stamp_ends.clear();
    statuses.clear();
    nums.clear();
    out.clear();
    let qualities = QUALITY_FRAGMENTS.get_or_init(|| (0..=255u8).map(qualities_fragment).collect());
    let ncols = columns.len();
    let mut quality_bytes = 0usize;
    let mut prev: Option<CosemDateTime> = None;
    let mut first_offset = 0usize;
    crate::profile::for_each_row(buf, |i, offset, row| {
        if i == 0 {
            first_offset = offset;
        } else if i == 1 {
            // the first entry's size bounds the number of entries
            let guess = (buf.len() / (offset - first_offset).max(1) + 1).min(1 << 22);
            stamps.reserve(guess * 48);
            stamp_ends.reserve(guess);
            statuses.reserve(guess);
            nums.reserve(guess * ncols);
        }
        let clock = match row.get(clock_column) {
            Some(cell) => next_clock(cell, prev, capture_period, i, offset)?,
            None => None,
        };
        let Some(dt) = clock else {
            let found = row.get(clock_column).map_or("no value", cell_kind);
            return Err(perr("clock", offset, format!("entry {i}: {found}"), "a date-time or null-data"));
        };
        prev = Some(dt);
        stamps.extend_from_slice(b",{\"timeStamp\":\"");
        if !write_timestamp(stamps, &dt) {
            return Err(perr("clock", offset, format!("entry {i}"), "a concrete date-time (years 0..9999)"));
        }
        stamps.extend_from_slice(b"\",\"value\":");
        stamp_ends.push(stamps.len());
        let status = match status_column {
            None => 0u8,
            Some(c) => match row.get(c) {
                Some(Cell::Int(v)) if (0..=255).contains(v) => *v as u8,
                Some(Cell::Null) => 0,
                Some(other) => {
                    return Err(perr(
                        "status",
                        offset,
                        format!("entry {i}: {}", cell_kind(other)),
                        "an unsigned 0..255",
                    ));
                }
                None => return Err(perr("status", offset, format!("entry {i}: no column {c}"), "a status column")),
            },
        };
        statuses.push(status);
        quality_bytes += qualities.get(status as usize).map_or(0, Vec::len);
        for col in columns {
            nums.push(match row.get(col.index) {
                Some(Cell::Int(v)) => Num::Int(*v),
                Some(Cell::U64(v)) => Num::U64(*v),
                Some(Cell::F32(v)) => Num::Float(*v as f64),
                Some(Cell::F64(v)) => Num::Float(*v),
                Some(Cell::Null) => Num::Skip,
                Some(other) => {
                    return Err(perr("value", offset, format!("entry {i}: {}", cell_kind(other)), "a number"));
                }
                None => {
                    return Err(perr("value", offset, format!("entry {i}: no column {}", col.index), "a value column"));
                }
            });
        }
        Ok(())
    })?;

    let rows = stamp_ends.len();
    let per_col = stamps.len() + quality_bytes + rows * 26 + 256;
    out.reserve(2 + ncols * per_col);
    out.push(b'[');
    for (ci, col) in columns.iter().enumerate() {
        if ci > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ReadingType\":{\"ref\":");
        write_json_str(out, &col.reading_type);
        out.extend_from_slice(b",\"obis\":");
        write_json_str(out, &col.obis);
        out.extend_from_slice(b",\"unit\":");
        write_json_str(out, &col.unit);
        out.extend_from_slice(b"},\"IntervalReadings\":[");
        let mut first = true;
        let mut start = 0usize;
        let values = nums.iter().skip(ci).step_by(ncols.max(1));
        for ((&end, &status), num) in stamp_ends.iter().zip(statuses.iter()).zip(values) {
            let stamp = stamps.get(start..end).unwrap_or(&[]);
            start = end;
            if matches!(num, Num::Skip) {
                continue;
            }
            // every stamp starts with the separating comma, except where a block starts
            out.extend_from_slice(if first { stamp.get(1..).unwrap_or(&[]) } else { stamp });
            first = false;
            match *num {
                Num::Int(v) => write_decimal(out, v < 0, v.unsigned_abs(), col.scaler),
                Num::U64(v) => write_decimal(out, false, v, col.scaler),
                Num::Float(v) => write_float(out, v, col.scaler),
                Num::Skip => {}
            }
            if status != 0 {
                out.extend_from_slice(qualities.get(status as usize).map_or(&[][..], Vec::as_slice));
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    Ok(())
}

/// A float column: value × 10^scaler, shortest round-trip text; null when not finite.
fn write_float(out: &mut Vec<u8>, v: f64, scaler: i8) {
    let x = v * 10f64.powi(scaler as i32);
    if x.is_finite() {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn value_cell() -> impl Strategy<Value = Data> {
    prop_oneof![
        2 => Just(Data::Null),
        8 => any::<u32>().prop_map(Data::DoubleLongUnsigned),
        2 => any::<i32>().prop_map(Data::DoubleLong),
        2 => any::<i64>().prop_map(Data::Long64),
        2 => any::<u64>().prop_map(Data::Long64Unsigned),
        2 => any::<i16>().prop_map(Data::Long),
        2 => any::<u8>().prop_map(Data::Unsigned),
        2 => any::<f32>().prop_map(Data::Float32),
        2 => any::<f64>().prop_map(Data::Float64),
        // not a number: both writers must reject it the same way
        // rare: one bad value fails the whole buffer
        1 => Just(Data::VisibleString(b"x".to_vec())),
    ]
}

fn clock_cell() -> impl Strategy<Value = Data> {
    let year = prop_oneof![1 => 0u16..=9999, 1 => Just(0xFFFF), 40 => 1970u16..2100];
    let second = prop_oneof![0u8..60, Just(0xFF)];
    let hundredths = prop_oneof![Just(0xFF), Just(0), 0u8..100];
    let deviation = prop_oneof![Just(i16::MIN), -720i16..=720];
    let dt = (year, 1u8..13, 1u8..29, 0u8..24, 0u8..60, second, hundredths, deviation).prop_map(
        |(y, mo, d, h, mi, s, hu, dev)| {
            let y = y.to_be_bytes();
            let dv = dev.to_be_bytes();
            Data::OctetString(vec![y[0], y[1], mo, d, 0xFF, h, mi, s, hu, dv[0], dv[1], 0])
        },
    );
    prop_oneof![6 => dt, 1 => Just(Data::Null)]
}

fn status_cell() -> impl Strategy<Value = Data> {
    prop_oneof![4 => Just(Data::Unsigned(0)), 4 => any::<u8>().prop_map(Data::Unsigned), 1 => Just(Data::Null)]
}

fn column(index: usize, scaler: i8) -> ColumnSpec {
    ColumnSpec {
        index,
        reading_type: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0".into(),
        obis: "1.0.1.8.0.255".into(),
        unit: "k\"Wh\"".into(),
        scaler,
    }
}

fn outcome(r: Result<Vec<u8>>) -> std::result::Result<Vec<u8>, (&'static str, usize)> {
    r.map_err(|e| (e.field, e.offset))
}

#[test]
fn fast_decimal_edges() {
    for (neg, m) in [(false, 0), (true, 0), (false, 9), (false, 10), (true, 99), (false, 100), (false, u64::MAX)] {
        for s in [-128i8, -20, -19, -18, -2, -1, 0, 1, 2, 127] {
            let mut want = Vec::new();
            write_decimal(&mut want, neg, m, s);
            let mut out = vec![0u8; 512];
            let end = put_decimal_fast(&mut out, 5, neg, m, s);
            assert!(out.get(end..).is_some_and(|rest| rest.iter().all(|b| *b == 0)), "wrote past its end");
            assert_eq!(out.get(5..end), Some(want.as_slice()), "{neg} {m} {s}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_decimal_matches_write_decimal(neg in any::<bool>(), m in any::<u64>(), s in any::<i8>(), small in 0u64..100_000) {
        for m in [m, small] {
            let mut want = Vec::new();
            write_decimal(&mut want, neg, m, s);
            let mut out = vec![0u8; READING_MAX + 8];
            let end = put_decimal_fast(&mut out, 3, neg, m, s);
            prop_assert_eq!(out.get(3..end), Some(want.as_slice()));
            let end = put_decimal(&mut out, 1, neg, m, s);
            prop_assert_eq!(out.get(1..end), Some(want.as_slice()));
        }
    }

    #[test]
    fn json_matches_reference(
        rows in proptest::collection::vec(
            (clock_cell(), status_cell(), proptest::collection::vec(value_cell(), 3)),
            0..24,
        ),
        scalers in proptest::collection::vec(prop_oneof![-4i8..=1, any::<i8>()], 3),
        period in proptest::option::of(prop_oneof![Just(900u32), 0u32..200_000]),
        with_status in any::<bool>(),
        compact_cols in 0usize..4,
    ) {
        let entries: Vec<Data> = rows
            .into_iter()
            .map(|(c, s, v)| {
                let mut row = vec![c, s];
                row.extend(v);
                Data::Structure(row)
            })
            .collect();
        let buf = Data::Array(entries).encode();
        let cols: Vec<ColumnSpec> =
            scalers.iter().enumerate().take(compact_cols.max(1)).map(|(k, s)| column(2 + k, *s)).collect();
        let status = with_status.then_some(1);
        let want = outcome(reference_json(&buf, 0, &cols, status, period));
        let got = outcome(profile_to_json(&buf, 0, &cols, status, period));
        prop_assert_eq!(&got, &want);
        // a reused scratch gives the same bytes, also after a longer output
        // left stale bytes behind in it
        let mut scratch = JsonScratch::default();
        let long = Data::Array(
            (0..40u32)
                .map(|i| {
                    let c = if i == 0 { Data::OctetString(vec![7, 234, 11, 27, 5, 0, 0, 0, 0, 0x80, 0, 0]) } else { Data::Null };
                    Data::Structure(vec![c, Data::Unsigned(0xff), Data::Long64Unsigned(u64::MAX - i as u64),
                        Data::Long64Unsigned(1), Data::Long64Unsigned(2)])
                })
                .collect(),
        )
        .encode();
        let wide: Vec<ColumnSpec> = (0..3).map(|k| column(2 + k, -19)).collect();
        prop_assert!(profile_to_json_with(&mut scratch, &long, 0, &wide, Some(1), Some(60)).is_ok());
        prop_assert!(scratch.json().len() > 4000);
        for _ in 0..2 {
            let r = profile_to_json_with(&mut scratch, &buf, 0, &cols, status, period);
            prop_assert_eq!(r.is_ok(), want.is_ok());
            match &want {
                Ok(w) => prop_assert_eq!(scratch.json(), w.as_slice()),
                Err(_) => prop_assert!(scratch.json().is_empty()),
            }
        }
    }
}
