//! A-XDR field primitives shared by the xDLMS APDU modules: OPTIONAL markers,
//! length-prefixed octet-strings, sequences, and raw `Data` values that are
//! validated (exactly one A-XDR value must parse) but kept as bytes.

use crate::axdr::{self, write_length, Reader};
use crate::error::{Error, ErrorKind, Layer, Result};

/// A reader over an xDLMS APDU (errors name the xDLMS APDU layer).
pub fn reader(buf: &[u8]) -> Reader<'_> {
    Reader::new(buf, Layer::Apdu)
}

/// An OPTIONAL / DEFAULT marker: 0x00 absent, 0x01 present.
pub fn optional(r: &mut Reader<'_>, field: &'static str) -> Result<bool> {
    let at = r.pos();
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::invalid(r.layer(), field, at, format!("0x{v:02x}"), "0x00 (absent) or 0x01 (present)")),
    }
}

/// A boolean (0x00 false, anything else true, as A-XDR allows).
pub fn boolean(r: &mut Reader<'_>, field: &'static str) -> Result<bool> {
    Ok(r.u8(field)? != 0)
}

/// A length-prefixed OCTET STRING.
pub fn octet_string(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>> {
    let n = r.bounded_length(field, 1)?;
    Ok(r.take(n, field)?.to_vec())
}

pub fn put_octet_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The element count of a SEQUENCE OF (each element takes at least one byte).
pub fn sequence_len(r: &mut Reader<'_>, field: &'static str) -> Result<usize> {
    r.bounded_length(field, 1)
}

/// One tagged A-XDR `Data` value, checked to parse, returned as its raw bytes.
pub fn raw_data(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>> {
    let rest = r.rest();
    // Step over the value without building it; what the walk cannot step over
    // (an invalid value, a compact-array) the full decode decides and names.
    let mut walk = Reader::new(rest, r.layer());
    if crate::axdr_skip::skip_value(&mut walk).is_ok() {
        let value = r.take(walk.pos(), field)?;
        return Ok(value.to_vec());
    }
    let start = r.pos();
    axdr::decode_from(r)
        .map_err(|e| Error::new(r.layer(), field, e.offset, ErrorKind::Other(format!("{}: {}", e.field, e.kind))))?;
    Ok(rest.get(..r.pos() - start).unwrap_or_default().to_vec())
}

/// Decode a SEQUENCE OF with `item` for each element.
pub fn sequence<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = sequence_len(r, field)?;
    let mut v = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        v.push(item(r)?);
    }
    Ok(v)
}

/// Encode a SEQUENCE OF.
pub fn put_sequence<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    write_length(out, items.len());
    for i in items {
        item(out, i);
    }
}

/// The CHOICE byte that selects a service alternative, 1..=`max`.
pub fn service_choice(r: &mut Reader<'_>, field: &'static str, max: u8) -> Result<u8> {
    let at = r.pos();
    let c = r.u8(field)?;
    if c == 0 || c > max {
        return Err(Error::new(r.layer(), field, at, ErrorKind::UnknownTag(c)));
    }
    Ok(c)
}
