//! Bulk decoding of profile-generic buffers (class 7, attribute 2): an array
//! of structures, or a compact-array of structures, parsed in one pass into a
//! flat table of borrowed [`Cell`]s (no allocation per simple value). Omitted
//! (null-data) clock values are derived from the previous entry plus the
//! capture period, as IDIS "compressed" profiles send them.
//!
//! [`json`] turns a table straight into MeterReadings JSON bytes.

pub mod json;

use crate::axdr::{self, tag, Data, Reader, TypeDesc};
use crate::cosem_datetime::CosemDateTime;
use crate::error::{Error, ErrorKind, Layer, Result};

/// One captured value, borrowed from the input where it is a byte string.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    DontCare,
    Bool(bool),
    /// Every integer type except long64-unsigned (and enum, bcd).
    Int(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    /// A date-time (tag 25) or a 12-byte octet-string that is a valid COSEM date-time.
    DateTime(CosemDateTime),
    /// A clock derived from the previous entry (the buffer held null-data).
    Derived(CosemDateTime),
    Octets(&'a [u8]),
    Visible(&'a [u8]),
    Utf8(&'a [u8]),
    BitString {
        bits: usize,
        bytes: &'a [u8],
    },
    Date([u8; 5]),
    Time([u8; 4]),
    /// A nested array/structure/compact-array (rare in profiles), decoded generically.
    Composite(Data),
}

impl Cell<'_> {
    /// The date-time of a clock cell, if any.
    pub fn datetime(&self) -> Option<&CosemDateTime> {
        match self {
            Cell::DateTime(d) | Cell::Derived(d) => Some(d),
            _ => None,
        }
    }
}

/// A decoded buffer: `rows()` rows of cells, stored flat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table<'a> {
    pub cells: Vec<Cell<'a>>,
    /// Start index into `cells` of each row, plus one final entry (= cells.len()).
    pub row_starts: Vec<usize>,
    /// Byte offset of each row in the input (for error messages).
    pub row_offsets: Vec<usize>,
}

impl<'a> Table<'a> {
    pub fn rows(&self) -> usize {
        self.row_starts.len().saturating_sub(1)
    }

    pub fn row(&self, i: usize) -> &[Cell<'a>] {
        match (self.row_starts.get(i), self.row_starts.get(i + 1)) {
            (Some(a), Some(b)) => self.cells.get(*a..*b).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn push_row_start(&mut self, offset: usize) {
        self.row_starts.push(self.cells.len());
        self.row_offsets.push(offset);
    }
}

fn perr(field: &'static str, offset: usize, found: impl std::fmt::Display, expected: &'static str) -> Error {
    Error::invalid(Layer::Profile, field, offset, found, expected)
}

/// Which column holds the clock, for null-clock derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockColumn {
    /// The first date-time column of the first entry that has one (or none).
    Auto,
    /// This column (0-based); every entry must have a date-time or null-data there.
    Index(usize),
}

/// Parse a buffer into a table and derive null clocks.
pub fn decode_table(buf: &[u8], clock: ClockColumn, capture_period: Option<u32>) -> Result<Table<'_>> {
    let mut t = parse(buf)?;
    derive_clocks(&mut t, clock, capture_period)?;
    Ok(t)
}

/// Parse a buffer into a table (no clock derivation).
pub fn parse(buf: &[u8]) -> Result<Table<'_>> {
    let mut t = Table::default();
    for_each_row(buf, |_, offset, row| {
        if t.row_starts.is_empty() {
            t.cells.reserve(buf.len() / 4);
        }
        t.push_row_start(offset);
        t.cells.extend_from_slice(row);
        Ok(())
    })?;
    t.row_starts.push(t.cells.len());
    Ok(t)
}

/// Call `f(index, byte offset, cells)` for each entry of a buffer, in order,
/// reusing one row of cells (no allocation per entry).
pub fn for_each_row<'a, F>(buf: &'a [u8], mut f: F) -> Result<()>
where
    F: FnMut(usize, usize, &mut [Cell<'a>]) -> Result<()>,
{
    let mut r = Reader::new(buf, Layer::Profile);
    let t = r.u8("buffer type tag")?;
    let mut row: Vec<Cell<'a>> = Vec::with_capacity(16);
    match t {
        tag::ARRAY => {
            // every entry takes at least two bytes (structure tag and length)
            let n = r.bounded_length("buffer entry count", 2)?;
            for i in 0..n {
                let at = r.pos();
                let st = r.u8("buffer entry tag")?;
                if st != tag::STRUCTURE {
                    return Err(perr("buffer entry tag", at, format!("0x{st:02x}"), "structure (0x02)"));
                }
                let m = r.bounded_length("buffer entry length", 1)?;
                row.resize(m, Cell::Null);
                for slot in row.iter_mut() {
                    parse_tagged(&mut r, slot)?;
                }
                f(i, at, &mut row)?;
            }
        }
        tag::COMPACT_ARRAY => {
            let at = r.pos();
            let desc = axdr::decode_type_desc_from(&mut r)?;
            let TypeDesc::Structure(fields) = desc else {
                return Err(perr("compact-array type description", at, "a non-structure element type", "structure"));
            };
            let len = r.bounded_length("compact-array contents length", 1)?;
            let base = r.pos();
            let contents = r.take(len, "compact-array contents")?;
            if fields.is_empty() && !contents.is_empty() {
                return Err(perr("compact-array type description", at, "an empty structure", "at least one field"));
            }
            let mut cr = Reader::new(contents, Layer::Profile);
            let mut i = 0;
            while !cr.is_empty() {
                let row_at = base + cr.pos();
                row.resize(fields.len(), Cell::Null);
                for (fd, slot) in fields.iter().zip(row.iter_mut()) {
                    match fd {
                        TypeDesc::Simple(st) => parse_simple(&mut cr, *st, slot),
                        other => axdr::decode_untagged_from(&mut cr, other).map(|d| *slot = Cell::Composite(d)),
                    }
                    .map_err(|e| e.shifted(base))?;
                }
                f(i, row_at, &mut row)?;
                i += 1;
            }
        }
        other => {
            return Err(perr("buffer type tag", 0, format!("0x{other:02x}"), "array (0x01) or compact-array (0x13)"))
        }
    }
    if !r.is_empty() {
        return Err(r.error("buffer", ErrorKind::Trailing(r.remaining())));
    }
    Ok(())
}

/// The clock of entry `i` from its clock cell and the previous clock: a
/// date-time as is, null-data derived from `prev` + `capture_period`, None
/// for any other kind of value.
pub fn next_clock(
    cell: &Cell<'_>,
    prev: Option<CosemDateTime>,
    capture_period: Option<u32>,
    i: usize,
    offset: usize,
) -> Result<Option<CosemDateTime>> {
    match cell {
        Cell::DateTime(dt) | Cell::Derived(dt) => Ok(Some(*dt)),
        Cell::Null => {
            let (Some(p), Some(period)) = (prev, capture_period) else {
                return Err(perr(
                    "clock",
                    offset,
                    format!("null-data in entry {i}"),
                    "a date-time, or a previous entry's clock and a capture period to derive it",
                ));
            };
            p.plus_seconds(period as i64).map(Some).ok_or_else(|| {
                perr("clock", offset, format!("entry {i}: previous clock not concrete"), "a concrete date-time")
            })
        }
        _ => Ok(None),
    }
}

/// One tagged value, written as a cell into `out` (a slot of the row). Each
/// match arm stores its own variant so the cell is written in place (returning cells
/// through a `Result` temporary costs store-forwarding stalls).
#[inline(always)]
fn parse_tagged<'a>(r: &mut Reader<'a>, out: &mut Cell<'a>) -> Result<()> {
    let t = r.peek_u8("data type tag")?;
    if matches!(t, tag::ARRAY | tag::STRUCTURE | tag::COMPACT_ARRAY) {
        *out = Cell::Composite(axdr::decode_from(r)?);
        return Ok(());
    }
    let at = r.pos();
    r.u8("data type tag")?;
    parse_simple(r, t, out).map_err(|e| match e.kind {
        ErrorKind::UnknownTag(_) => Error::new(Layer::Profile, "data type tag", at, ErrorKind::UnknownTag(t)),
        _ => e,
    })
}

/// The body of a non-composite value of type `t`.
#[inline(always)]
fn parse_simple<'a>(r: &mut Reader<'a>, t: u8, out: &mut Cell<'a>) -> Result<()> {
    match t {
        tag::NULL_DATA => *out = Cell::Null,
        tag::DONT_CARE => *out = Cell::DontCare,
        tag::BOOLEAN => *out = Cell::Bool(r.u8("boolean")? != 0),
        tag::DOUBLE_LONG => *out = Cell::Int(r.u32("double-long")? as i32 as i64),
        tag::DOUBLE_LONG_UNSIGNED => *out = Cell::Int(r.u32("double-long-unsigned")? as i64),
        tag::INTEGER => *out = Cell::Int(r.u8("integer")? as i8 as i64),
        tag::BCD => *out = Cell::Int(r.u8("bcd")? as i8 as i64),
        tag::LONG => *out = Cell::Int(r.u16("long")? as i16 as i64),
        tag::UNSIGNED => *out = Cell::Int(r.u8("unsigned")? as i64),
        tag::ENUM => *out = Cell::Int(r.u8("enum")? as i64),
        tag::LONG_UNSIGNED => *out = Cell::Int(r.u16("long-unsigned")? as i64),
        tag::LONG64 => *out = Cell::Int(r.u64("long64")? as i64),
        tag::LONG64_UNSIGNED => *out = Cell::U64(r.u64("long64-unsigned")?),
        tag::FLOAT32 => *out = Cell::F32(f32::from_be_bytes(r.array("float32")?)),
        tag::FLOAT64 => *out = Cell::F64(f64::from_be_bytes(r.array("float64")?)),
        tag::OCTET_STRING => {
            let n = r.bounded_length("octet-string length", 1)?;
            let b = r.take(n, "octet-string")?;
            match CosemDateTime::from_slice(b) {
                Ok(dt) if n == 12 => *out = Cell::DateTime(dt),
                _ => *out = Cell::Octets(b),
            }
        }
        tag::DATE_TIME => {
            let b = r.take(12, "date-time")?;
            match CosemDateTime::from_slice(b) {
                Ok(dt) => *out = Cell::DateTime(dt),
                Err(_) => *out = Cell::Octets(b),
            }
        }
        tag::VISIBLE_STRING => {
            let n = r.bounded_length("visible-string length", 1)?;
            *out = Cell::Visible(r.take(n, "visible-string")?)
        }
        tag::UTF8_STRING => {
            let n = r.bounded_length("utf8-string length", 1)?;
            *out = Cell::Utf8(r.take(n, "utf8-string")?)
        }
        tag::BIT_STRING => {
            let at = r.pos();
            let bits = r.length("bit-string length")?;
            let n = bits.div_ceil(8);
            if n > r.remaining() {
                return Err(Error::truncated(r.layer(), "bit-string", at, n - r.remaining(), r.remaining()));
            }
            *out = Cell::BitString { bits, bytes: r.take(n, "bit-string")? }
        }
        tag::DATE => *out = Cell::Date(r.array("date")?),
        tag::TIME => *out = Cell::Time(r.array("time")?),
        other => return Err(r.error("data type tag", ErrorKind::UnknownTag(other))),
    }
    Ok(())
}

/// Replace null-data clocks by the previous clock plus the capture period.
fn derive_clocks(t: &mut Table<'_>, clock: ClockColumn, capture_period: Option<u32>) -> Result<()> {
    let col = match clock {
        ClockColumn::Index(c) => c,
        ClockColumn::Auto => {
            let found = (0..t.rows()).find_map(|i| t.row(i).iter().position(|c| c.datetime().is_some()));
            match found {
                Some(c) => c,
                None => return Ok(()),
            }
        }
    };
    let mut prev: Option<CosemDateTime> = None;
    for i in 0..t.rows() {
        let (start, end) = (t.row_starts.get(i).copied().unwrap_or(0), t.row_starts.get(i + 1).copied().unwrap_or(0));
        let offset = t.row_offsets.get(i).copied().unwrap_or(0);
        let Some(cell) = t.cells.get_mut(start..end).and_then(|row| row.get_mut(col)) else {
            if matches!(clock, ClockColumn::Index(_)) {
                return Err(perr(
                    "clock column",
                    offset,
                    format!("entry {i} has {} values", end - start),
                    "a value in the clock column",
                ));
            }
            continue;
        };
        match next_clock(cell, prev, capture_period, i, offset)? {
            Some(dt) => {
                if matches!(cell, Cell::Null) {
                    *cell = Cell::Derived(dt);
                }
                prev = Some(dt);
            }
            None if matches!(clock, ClockColumn::Index(_)) => {
                return Err(perr(
                    "clock",
                    offset,
                    format!("entry {i}: {}", cell_kind(cell)),
                    "a date-time or null-data in the clock column",
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// A short name of a cell's kind, for error messages.
pub fn cell_kind(c: &Cell<'_>) -> &'static str {
    match c {
        Cell::Null => "null-data",
        Cell::DontCare => "dont-care",
        Cell::Bool(_) => "boolean",
        Cell::Int(_) | Cell::U64(_) => "integer",
        Cell::F32(_) | Cell::F64(_) => "float",
        Cell::DateTime(_) | Cell::Derived(_) => "date-time",
        Cell::Octets(_) => "octet-string",
        Cell::Visible(_) => "visible-string",
        Cell::Utf8(_) => "utf8-string",
        Cell::BitString { .. } => "bit-string",
        Cell::Date(_) => "date",
        Cell::Time(_) => "time",
        Cell::Composite(_) => "array/structure",
    }
}

#[cfg(test)]
mod tests;
