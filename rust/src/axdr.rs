//! A-XDR encoding of DLMS `Data` (IEC 62056-6-2 / Blue Book "Data" CHOICE,
//! encoded per IEC 61334-6 A-XDR): every data type, including compact-array.
//!
//! Decoding is strict and bounded: lengths are checked against what remains
//! before anything is allocated, nesting is limited, and every failure is an
//! [`Error`] naming the field and the byte offset.

use crate::error::{Error, ErrorKind, Layer, Result};

/// Deepest nesting of arrays/structures accepted (real meters use < 10).
pub const MAX_DEPTH: usize = 64;

/// Data type tags (Blue Book, "Data" CHOICE).
pub mod tag {
    pub const NULL_DATA: u8 = 0;
    pub const ARRAY: u8 = 1;
    pub const STRUCTURE: u8 = 2;
    pub const BOOLEAN: u8 = 3;
    pub const BIT_STRING: u8 = 4;
    pub const DOUBLE_LONG: u8 = 5;
    pub const DOUBLE_LONG_UNSIGNED: u8 = 6;
    pub const OCTET_STRING: u8 = 9;
    pub const VISIBLE_STRING: u8 = 10;
    pub const UTF8_STRING: u8 = 12;
    pub const BCD: u8 = 13;
    pub const INTEGER: u8 = 15;
    pub const LONG: u8 = 16;
    pub const UNSIGNED: u8 = 17;
    pub const LONG_UNSIGNED: u8 = 18;
    pub const COMPACT_ARRAY: u8 = 19;
    pub const LONG64: u8 = 20;
    pub const LONG64_UNSIGNED: u8 = 21;
    pub const ENUM: u8 = 22;
    pub const FLOAT32: u8 = 23;
    pub const FLOAT64: u8 = 24;
    pub const DATE_TIME: u8 = 25;
    pub const DATE: u8 = 26;
    pub const TIME: u8 = 27;
    pub const DONT_CARE: u8 = 255;
}

/// One DLMS data value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Array(Vec<Data>),
    Structure(Vec<Data>),
    Boolean(bool),
    /// `bits` significant bits, most significant bit of the first byte first.
    BitString {
        bits: usize,
        bytes: Vec<u8>,
    },
    DoubleLong(i32),
    DoubleLongUnsigned(u32),
    OctetString(Vec<u8>),
    VisibleString(Vec<u8>),
    Utf8String(Vec<u8>),
    Bcd(i8),
    Integer(i8),
    Long(i16),
    Unsigned(u8),
    LongUnsigned(u16),
    CompactArray {
        description: TypeDesc,
        elements: Vec<Data>,
    },
    Long64(i64),
    Long64Unsigned(u64),
    Enum(u8),
    Float32(f32),
    Float64(f64),
    DateTime([u8; 12]),
    Date([u8; 5]),
    Time([u8; 4]),
    DontCare,
}

/// The type description of a compact-array (Blue Book "TypeDescription").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDesc {
    /// Any non-composite type, by its tag.
    Simple(u8),
    Array {
        count: u16,
        element: Box<TypeDesc>,
    },
    Structure(Vec<TypeDesc>),
}

impl Data {
    /// The Blue Book tag of this value.
    pub fn tag(&self) -> u8 {
        use tag::*;
        match self {
            Data::Null => NULL_DATA,
            Data::Array(_) => ARRAY,
            Data::Structure(_) => STRUCTURE,
            Data::Boolean(_) => BOOLEAN,
            Data::BitString { .. } => BIT_STRING,
            Data::DoubleLong(_) => DOUBLE_LONG,
            Data::DoubleLongUnsigned(_) => DOUBLE_LONG_UNSIGNED,
            Data::OctetString(_) => OCTET_STRING,
            Data::VisibleString(_) => VISIBLE_STRING,
            Data::Utf8String(_) => UTF8_STRING,
            Data::Bcd(_) => BCD,
            Data::Integer(_) => INTEGER,
            Data::Long(_) => LONG,
            Data::Unsigned(_) => UNSIGNED,
            Data::LongUnsigned(_) => LONG_UNSIGNED,
            Data::CompactArray { .. } => COMPACT_ARRAY,
            Data::Long64(_) => LONG64,
            Data::Long64Unsigned(_) => LONG64_UNSIGNED,
            Data::Enum(_) => ENUM,
            Data::Float32(_) => FLOAT32,
            Data::Float64(_) => FLOAT64,
            Data::DateTime(_) => DATE_TIME,
            Data::Date(_) => DATE,
            Data::Time(_) => TIME,
            Data::DontCare => DONT_CARE,
        }
    }

    /// The Blue Book type name in kebab case (as in the typed JSON of CLI.md).
    pub fn type_name(&self) -> &'static str {
        type_name(self.tag()).unwrap_or("unknown")
    }

    /// Encode with its tag (the usual A-XDR form).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        self.encode_body(out);
    }

    /// Encode without the tag (the form used inside compact-array contents).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null | Data::DontCare => {}
            Data::Array(items) | Data::Structure(items) => {
                write_length(out, items.len());
                for item in items {
                    item.encode_into(out);
                }
            }
            Data::Boolean(b) => out.push(u8::from(*b)),
            Data::BitString { bits, bytes } => {
                write_length(out, *bits);
                let n = bits.div_ceil(8);
                out.extend(bytes.iter().copied().chain(std::iter::repeat(0)).take(n));
            }
            Data::DoubleLong(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::DoubleLongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::OctetString(b) | Data::VisibleString(b) | Data::Utf8String(b) => {
                write_length(out, b.len());
                out.extend_from_slice(b);
            }
            Data::Bcd(v) | Data::Integer(v) => out.push(*v as u8),
            Data::Long(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Unsigned(v) | Data::Enum(v) => out.push(*v),
            Data::LongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::CompactArray { description, elements } => {
                description.encode_into(out);
                let mut contents = Vec::new();
                for e in elements {
                    encode_compact_element(e, &mut contents);
                }
                write_length(out, contents.len());
                out.extend_from_slice(&contents);
            }
            Data::Long64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Long64Unsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Float32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Float64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::DateTime(b) => out.extend_from_slice(b),
            Data::Date(b) => out.extend_from_slice(b),
            Data::Time(b) => out.extend_from_slice(b),
        }
    }
}

/// Inside compact-array contents, composite values carry no tags and no
/// element counts (those are in the type description); simple values carry
/// no tag but keep their own length prefixes.
fn encode_compact_element(d: &Data, out: &mut Vec<u8>) {
    match d {
        Data::Array(items) | Data::Structure(items) => {
            for item in items {
                encode_compact_element(item, out);
            }
        }
        other => other.encode_body(out),
    }
}

/// The kebab-case Blue Book name of a data type tag.
pub fn type_name(t: u8) -> Option<&'static str> {
    use tag::*;
    Some(match t {
        NULL_DATA => "null-data",
        ARRAY => "array",
        STRUCTURE => "structure",
        BOOLEAN => "boolean",
        BIT_STRING => "bit-string",
        DOUBLE_LONG => "double-long",
        DOUBLE_LONG_UNSIGNED => "double-long-unsigned",
        OCTET_STRING => "octet-string",
        VISIBLE_STRING => "visible-string",
        UTF8_STRING => "utf8-string",
        BCD => "bcd",
        INTEGER => "integer",
        LONG => "long",
        UNSIGNED => "unsigned",
        LONG_UNSIGNED => "long-unsigned",
        COMPACT_ARRAY => "compact-array",
        LONG64 => "long64",
        LONG64_UNSIGNED => "long64-unsigned",
        ENUM => "enum",
        FLOAT32 => "float32",
        FLOAT64 => "float64",
        DATE_TIME => "date-time",
        DATE => "date",
        TIME => "time",
        DONT_CARE => "dont-care",
        _ => return None,
    })
}

/// The tag of a kebab-case Blue Book type name.
pub fn tag_of(name: &str) -> Option<u8> {
    (0u8..=255).find(|t| type_name(*t) == Some(name))
}

impl TypeDesc {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            TypeDesc::Simple(t) => out.push(*t),
            TypeDesc::Array { count, element } => {
                out.push(tag::ARRAY);
                out.extend_from_slice(&count.to_be_bytes());
                element.encode_into(out);
            }
            TypeDesc::Structure(fields) => {
                out.push(tag::STRUCTURE);
                write_length(out, fields.len());
                for f in fields {
                    f.encode_into(out);
                }
            }
        }
    }
}

/// Append an A-XDR length: one byte below 0x80, else 0x8n and n big-endian bytes.
pub fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A bounds-checked reader over an input buffer that knows its offset.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    layer: Layer,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], layer: Layer) -> Self {
        Reader { buf, pos: 0, layer }
    }
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.pos
    }
    #[inline(always)]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn layer(&self) -> Layer {
        self.layer
    }
    pub fn error(&self, field: &'static str, kind: ErrorKind) -> Error {
        Error::new(self.layer, field, self.pos, kind)
    }
    #[inline(always)]
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::truncated(self.layer, field, self.pos, n - self.remaining(), self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    #[inline(always)]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    #[inline(always)]
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }
    #[inline(always)]
    pub fn peek_u8(&self, field: &'static str) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or_else(|| Error::truncated(self.layer, field, self.pos, 1, 0))
    }
    #[inline(always)]
    pub fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    #[inline(always)]
    pub fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    #[inline(always)]
    pub fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    /// An A-XDR length (see [`write_length`]).
    #[inline(always)]
    pub fn length(&mut self, field: &'static str) -> Result<usize> {
        // the one-byte form is the hot path of bulk decoding
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(b as usize)
            }
            _ => self.long_length(field),
        }
    }
    /// The multi-byte (or truncated) forms of [`Reader::length`].
    #[cold]
    fn long_length(&mut self, field: &'static str) -> Result<usize> {
        let start = self.pos;
        let first = self.u8(field)?;
        if first < 0x80 {
            return Ok(first as usize);
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(Error::invalid(
                self.layer,
                field,
                start,
                format!("length-of-length {n}"),
                "1 to 4 length bytes",
            ));
        }
        let mut len: usize = 0;
        for b in self.take(n, field)? {
            len = (len << 8) | *b as usize;
        }
        Ok(len)
    }
    /// A length that must be satisfiable from what remains, `unit` bytes per item.
    #[inline(always)]
    pub fn bounded_length(&mut self, field: &'static str, unit: usize) -> Result<usize> {
        let at = self.pos;
        let len = self.length(field)?;
        let need = len.saturating_mul(unit.max(1));
        if unit > 0 && need > self.remaining() {
            return Err(Error::truncated(self.layer, field, at, need - self.remaining(), self.remaining()));
        }
        Ok(len)
    }
}

/// Decode exactly one tagged value; trailing bytes are an error.
pub fn decode(buf: &[u8]) -> Result<Data> {
    let mut r = Reader::new(buf, Layer::Axdr);
    let d = decode_from(&mut r)?;
    if !r.is_empty() {
        return Err(r.error("data", ErrorKind::Trailing(r.remaining())));
    }
    Ok(d)
}

/// Decode one tagged value from the reader, leaving it after the value.
pub fn decode_from(r: &mut Reader<'_>) -> Result<Data> {
    decode_tagged(r, 0)
}

fn decode_tagged(r: &mut Reader<'_>, depth: usize) -> Result<Data> {
    if depth > MAX_DEPTH {
        return Err(r.error("data", ErrorKind::TooDeep(MAX_DEPTH)));
    }
    let at = r.pos();
    let t = r.u8("data type tag")?;
    match t {
        tag::ARRAY | tag::STRUCTURE => {
            // every element takes at least one byte (its tag)
            let n = r.bounded_length(if t == tag::ARRAY { "array length" } else { "structure length" }, 1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_tagged(r, depth + 1)?);
            }
            Ok(if t == tag::ARRAY { Data::Array(items) } else { Data::Structure(items) })
        }
        tag::COMPACT_ARRAY => {
            let description = decode_type_desc(r, depth + 1)?;
            let len = r.bounded_length("compact-array contents length", 1)?;
            let contents = r.take(len, "compact-array contents")?;
            let base = r.pos() - len;
            let mut cr = Reader::new(contents, r.layer());
            let mut elements = Vec::new();
            while !cr.is_empty() {
                let before = cr.pos();
                let e = decode_untagged(&mut cr, &description, depth + 1).map_err(|e| e.shifted(base))?;
                if cr.pos() == before {
                    // zero-width elements (e.g. null-data) would never end
                    return Err(Error::invalid(
                        r.layer(),
                        "compact-array type description",
                        at,
                        "zero-width element",
                        "elements of non-zero size",
                    ));
                }
                elements.push(e);
            }
            Ok(Data::CompactArray { description, elements })
        }
        _ => decode_simple(r, t).map_err(|e| {
            if let ErrorKind::UnknownTag(_) = e.kind {
                Error::new(r.layer(), "data type tag", at, ErrorKind::UnknownTag(t))
            } else {
                e
            }
        }),
    }
}

/// Decode the body of a non-composite type whose tag is `t`.
fn decode_simple(r: &mut Reader<'_>, t: u8) -> Result<Data> {
    Ok(match t {
        tag::NULL_DATA => Data::Null,
        tag::DONT_CARE => Data::DontCare,
        tag::BOOLEAN => Data::Boolean(r.u8("boolean")? != 0),
        tag::BIT_STRING => {
            let at = r.pos();
            let bits = r.length("bit-string length")?;
            let n = bits.div_ceil(8);
            if n > r.remaining() {
                return Err(Error::truncated(r.layer(), "bit-string", at, n - r.remaining(), r.remaining()));
            }
            Data::BitString { bits, bytes: r.take(n, "bit-string")?.to_vec() }
        }
        tag::DOUBLE_LONG => Data::DoubleLong(r.u32("double-long")? as i32),
        tag::DOUBLE_LONG_UNSIGNED => Data::DoubleLongUnsigned(r.u32("double-long-unsigned")?),
        tag::OCTET_STRING => {
            let n = r.bounded_length("octet-string length", 1)?;
            Data::OctetString(r.take(n, "octet-string")?.to_vec())
        }
        tag::VISIBLE_STRING => {
            let n = r.bounded_length("visible-string length", 1)?;
            Data::VisibleString(r.take(n, "visible-string")?.to_vec())
        }
        tag::UTF8_STRING => {
            let n = r.bounded_length("utf8-string length", 1)?;
            Data::Utf8String(r.take(n, "utf8-string")?.to_vec())
        }
        tag::BCD => Data::Bcd(r.u8("bcd")? as i8),
        tag::INTEGER => Data::Integer(r.u8("integer")? as i8),
        tag::LONG => Data::Long(r.u16("long")? as i16),
        tag::UNSIGNED => Data::Unsigned(r.u8("unsigned")?),
        tag::LONG_UNSIGNED => Data::LongUnsigned(r.u16("long-unsigned")?),
        tag::LONG64 => Data::Long64(r.u64("long64")? as i64),
        tag::LONG64_UNSIGNED => Data::Long64Unsigned(r.u64("long64-unsigned")?),
        tag::ENUM => Data::Enum(r.u8("enum")?),
        tag::FLOAT32 => Data::Float32(f32::from_be_bytes(r.array("float32")?)),
        tag::FLOAT64 => Data::Float64(f64::from_be_bytes(r.array("float64")?)),
        tag::DATE_TIME => Data::DateTime(r.array("date-time")?),
        tag::DATE => Data::Date(r.array("date")?),
        tag::TIME => Data::Time(r.array("time")?),
        other => return Err(r.error("data type tag", ErrorKind::UnknownTag(other))),
    })
}

fn decode_type_desc(r: &mut Reader<'_>, depth: usize) -> Result<TypeDesc> {
    if depth > MAX_DEPTH {
        return Err(r.error("type description", ErrorKind::TooDeep(MAX_DEPTH)));
    }
    let at = r.pos();
    let t = r.u8("type description tag")?;
    // Every type must occupy at least one byte per value: a zero-width type
    // (null-data, dont-care, an empty structure or array) would let a few
    // description bytes stand for unboundedly many values.
    let layer = r.layer();
    let zero_width = |found: &'static str| {
        Error::invalid(layer, "type description", at, found, "a type that occupies at least one byte")
    };
    match t {
        tag::ARRAY => {
            let count = r.u16("type description array count")?;
            if count == 0 {
                return Err(zero_width("an array of 0 elements"));
            }
            let element = Box::new(decode_type_desc(r, depth + 1)?);
            Ok(TypeDesc::Array { count, element })
        }
        tag::STRUCTURE => {
            let n = r.bounded_length("type description structure length", 1)?;
            if n == 0 {
                return Err(zero_width("a structure of 0 fields"));
            }
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                fields.push(decode_type_desc(r, depth + 1)?);
            }
            Ok(TypeDesc::Structure(fields))
        }
        tag::NULL_DATA => Err(zero_width("null-data")),
        tag::DONT_CARE => Err(zero_width("dont-care")),
        t if type_name(t).is_some() && t != tag::COMPACT_ARRAY => Ok(TypeDesc::Simple(t)),
        other => Err(Error::new(r.layer(), "type description tag", at, ErrorKind::UnknownTag(other))),
    }
}

/// Decode one untagged value laid out per `desc` (a compact-array element),
/// leaving the reader after it.
pub fn decode_untagged_from(r: &mut Reader<'_>, desc: &TypeDesc) -> Result<Data> {
    decode_untagged(r, desc, 1)
}

/// Decode a compact-array type description from the reader.
pub fn decode_type_desc_from(r: &mut Reader<'_>) -> Result<TypeDesc> {
    decode_type_desc(r, 1)
}

fn decode_untagged(r: &mut Reader<'_>, desc: &TypeDesc, depth: usize) -> Result<Data> {
    if depth > MAX_DEPTH {
        return Err(r.error("compact-array element", ErrorKind::TooDeep(MAX_DEPTH)));
    }
    match desc {
        TypeDesc::Simple(t) => decode_simple(r, *t),
        TypeDesc::Array { count, element } => {
            let mut items = Vec::with_capacity((*count as usize).min(r.remaining()));
            for _ in 0..*count {
                items.push(decode_untagged(r, element, depth + 1)?);
            }
            Ok(Data::Array(items))
        }
        TypeDesc::Structure(fields) => {
            let mut items = Vec::with_capacity(fields.len());
            for f in fields {
                items.push(decode_untagged(r, f, depth + 1)?);
            }
            Ok(Data::Structure(items))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x123456] {
            let mut v = Vec::new();
            write_length(&mut v, n);
            let mut r = Reader::new(&v, Layer::Axdr);
            assert_eq!(r.length("len").unwrap(), n);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn blue_book_examples() {
        // long-unsigned 0x1234; octet-string "abc"; structure of two
        assert_eq!(decode(&[0x12, 0x12, 0x34]).unwrap(), Data::LongUnsigned(0x1234));
        assert_eq!(decode(&[0x09, 0x03, b'a', b'b', b'c']).unwrap(), Data::OctetString(b"abc".to_vec()));
        let s = Data::Structure(vec![Data::Unsigned(1), Data::Long(-2)]);
        assert_eq!(s.encode(), vec![0x02, 0x02, 0x11, 0x01, 0x10, 0xff, 0xfe]);
    }

    /// Found by cargo-fuzz (axdr, profile targets): nested arrays of null-data
    /// or empty structures in a compact-array type description decoded 10^8+
    /// zero-width values from a dozen bytes (out of memory).
    #[test]
    fn zero_width_compact_array_types_are_rejected() {
        let cases: [(&[u8], usize); 5] = [
            (
                &[0x13, 0x01, 0x00, 0x08, 0x01, 0xff, 0xff, 0x01, 0x00, 0xe8, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
                10,
            ),
            (&[0x13, 0x02, 0x02, 0x00, 0x01, 0x02, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00], 3),
            (&[0x13, 0x00, 0x01, 0x00], 1),
            (&[0x13, 0xff, 0x01, 0x00], 1),
            (&[0x13, 0x02, 0x02, 0x11, 0x01, 0x00, 0x00, 0x11, 0x02, 0x01, 0x02], 4),
        ];
        for (buf, at) in cases {
            let e = decode(buf).unwrap_err();
            assert_eq!((e.field, e.offset), ("type description", at), "{buf:02x?}: {e}");
        }
    }

    #[test]
    fn compact_array_round_trip() {
        let d = Data::CompactArray {
            description: TypeDesc::Structure(vec![
                TypeDesc::Simple(tag::LONG_UNSIGNED),
                TypeDesc::Simple(tag::OCTET_STRING),
            ]),
            elements: vec![
                Data::Structure(vec![Data::LongUnsigned(1), Data::OctetString(vec![1, 2])]),
                Data::Structure(vec![Data::LongUnsigned(2), Data::OctetString(vec![])]),
            ],
        };
        let enc = d.encode();
        assert_eq!(decode(&enc).unwrap(), d);
    }

    #[test]
    fn errors_name_field_and_offset() {
        let e = decode(&[0x02, 0x02, 0x11, 0x01, 0x10, 0xff]).unwrap_err();
        assert_eq!(e.field, "long");
        assert_eq!(e.offset, 5);
        let e = decode(&[0x01, 0x81]).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }));
        let e = decode(&[0x02, 0x01, 0x07]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownTag(7));
        assert_eq!(e.offset, 2);
        // a huge claimed array does not allocate, it fails
        assert!(decode(&[0x01, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut v = Vec::new();
        for _ in 0..10_000 {
            v.extend_from_slice(&[0x01, 0x01]);
        }
        v.push(0x00);
        assert!(matches!(decode(&v).unwrap_err().kind, ErrorKind::TooDeep(_)));
    }

    pub(crate) mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn simple() -> impl Strategy<Value = Data> {
            scalar(200)
        }

        /// Every simple (non-compound) Data value; octet strings up to `max_octets` long
        /// (over 255 reaches the two-byte length form); no NaN (values compare equal).
        pub(crate) fn scalar(max_octets: usize) -> impl Strategy<Value = Data> {
            prop_oneof![
                Just(Data::Null),
                Just(Data::DontCare),
                any::<bool>().prop_map(Data::Boolean),
                (0usize..40).prop_flat_map(|bits| {
                    proptest::collection::vec(any::<u8>(), bits.div_ceil(8))
                        .prop_map(move |bytes| Data::BitString { bits, bytes })
                }),
                any::<i32>().prop_map(Data::DoubleLong),
                any::<u32>().prop_map(Data::DoubleLongUnsigned),
                proptest::collection::vec(any::<u8>(), 0..max_octets).prop_map(Data::OctetString),
                proptest::collection::vec(any::<u8>(), 0..20).prop_map(Data::VisibleString),
                proptest::collection::vec(any::<u8>(), 0..20).prop_map(Data::Utf8String),
                any::<i8>().prop_map(Data::Bcd),
                any::<i8>().prop_map(Data::Integer),
                any::<i16>().prop_map(Data::Long),
                any::<u8>().prop_map(Data::Unsigned),
                any::<u16>().prop_map(Data::LongUnsigned),
                any::<i64>().prop_map(Data::Long64),
                any::<u64>().prop_map(Data::Long64Unsigned),
                any::<u8>().prop_map(Data::Enum),
                any::<f32>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Data::Float32),
                any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Data::Float64),
                any::<[u8; 12]>().prop_map(Data::DateTime),
                any::<[u8; 5]>().prop_map(Data::Date),
                any::<[u8; 4]>().prop_map(Data::Time),
            ]
        }

        fn tree() -> impl Strategy<Value = Data> {
            simple().prop_recursive(4, 40, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Data::Array),
                    proptest::collection::vec(inner, 0..6).prop_map(Data::Structure),
                ]
            })
        }

        /// A compact-array of structures {long-unsigned, octet-string, integer}.
        fn compact() -> impl Strategy<Value = Data> {
            proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5), any::<i8>()), 0..8)
                .prop_map(|rows| Data::CompactArray {
                    description: TypeDesc::Structure(vec![
                        TypeDesc::Simple(tag::LONG_UNSIGNED),
                        TypeDesc::Simple(tag::OCTET_STRING),
                        TypeDesc::Simple(tag::INTEGER),
                    ]),
                    elements: rows
                        .into_iter()
                        .map(|(a, b, c)| {
                            Data::Structure(vec![Data::LongUnsigned(a), Data::OctetString(b), Data::Integer(c)])
                        })
                        .collect(),
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn every_type_round_trips(d in tree()) {
                let enc = d.encode();
                prop_assert_eq!(decode(&enc).unwrap(), d);
            }

            #[test]
            fn compact_arrays_round_trip(d in compact()) {
                prop_assert_eq!(decode(&d.encode()).unwrap(), d);
            }

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(d) = decode(&bytes) {
                    // whatever decodes re-encodes to a value that decodes the same
                    // (compared as bytes: a NaN float is not equal to itself)
                    let again = d.encode();
                    prop_assert_eq!(decode(&again).unwrap().encode(), again);
                }
            }

            #[test]
            fn truncations_fail_cleanly(d in tree(), cut in any::<prop::sample::Index>()) {
                let enc = d.encode();
                let n = cut.index(enc.len());
                prop_assert!(decode(&enc[..n]).is_err());
            }
        }
    }
}
