//! The BER primitives of the ACSE APDUs (AARQ, AARE, RLRQ, RLRE): one-byte
//! tags, definite lengths, INTEGER, OBJECT IDENTIFIER and the nested
//! `[n] { universal-tag value }` wrappers the DLMS profile of ACSE uses.

use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

/// A reader over BER bytes (errors name the BER (ACSE) layer).
pub fn reader(buf: &[u8]) -> Reader<'_> {
    Reader::new(buf, Layer::Ber)
}

/// One tag-length-value: the tag, its content, and where the content starts.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// Offset of the tag byte.
    pub start: usize,
    pub content: &'a [u8],
    pub at: usize,
}

/// Read one TLV with a one-byte tag and a definite length (short or 0x81..0x84 long form).
pub fn read_tlv<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<Tlv<'a>> {
    let tag_at = r.pos();
    let tag = r.u8(field)?;
    if tag & 0x1f == 0x1f {
        return Err(Error::new(Layer::Ber, field, tag_at, ErrorKind::Unsupported("multi-byte BER tag")));
    }
    let len_at = r.pos();
    let first = r.u8(field)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(Error::invalid(Layer::Ber, field, len_at, format!("0x{first:02x}"), "a definite BER length"));
        }
        let mut len = 0usize;
        for b in r.take(n, field)? {
            len = (len << 8) | *b as usize;
        }
        len
    };
    let at = r.pos();
    let content = r.take(len, field)?;
    Ok(Tlv { tag, start: tag_at, content, at })
}

/// Read a TLV and require its tag.
pub fn expect_tlv<'a>(r: &mut Reader<'a>, tag: u8, field: &'static str) -> Result<Tlv<'a>> {
    let at = r.pos();
    let t = read_tlv(r, field)?;
    if t.tag != tag {
        return Err(Error::invalid(Layer::Ber, field, at, format!("tag 0x{:02x}", t.tag), expected_tag(tag)));
    }
    Ok(t)
}

fn expected_tag(tag: u8) -> &'static str {
    match tag {
        0x02 => "INTEGER (0x02)",
        0x04 => "OCTET STRING (0x04)",
        0x06 => "OBJECT IDENTIFIER (0x06)",
        0x80 => "[0] (0x80)",
        0xa1 => "[1] (0xa1)",
        0xa2 => "[2] (0xa2)",
        _ => "a different tag",
    }
}

/// Read exactly one TLV from `t`'s content, with the given tag, and nothing after it.
pub fn inner<'a>(t: &Tlv<'a>, tag: u8, field: &'static str) -> Result<Tlv<'a>> {
    let mut r = reader(t.content);
    let i = expect_tlv(&mut r, tag, field).map_err(|e| e.shifted(t.at))?;
    if !r.is_empty() {
        return Err(Error::new(Layer::Ber, field, t.at + r.pos(), ErrorKind::Trailing(r.remaining())));
    }
    Ok(Tlv { tag: i.tag, start: i.start + t.at, content: i.content, at: i.at + t.at })
}

/// Append a BER definite length.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
    }
}

/// Append a TLV.
pub fn put_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    put_len(out, content.len());
    out.extend_from_slice(content);
}

/// A BER INTEGER's content (two's complement, big-endian, at most 8 bytes).
pub fn integer(t: &Tlv<'_>, field: &'static str) -> Result<i64> {
    if t.content.is_empty() || t.content.len() > 8 {
        return Err(Error::invalid(Layer::Ber, field, t.at, format!("{} byte(s)", t.content.len()), "1 to 8 bytes"));
    }
    let neg = t.content.first().is_some_and(|b| b & 0x80 != 0);
    let mut v: i64 = if neg { -1 } else { 0 };
    for b in t.content {
        v = (v << 8) | *b as i64;
    }
    Ok(v)
}

/// The minimal BER INTEGER content of `v`.
pub fn integer_content(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// An OBJECT IDENTIFIER's content bytes as dotted decimal ("2.16.756.5.8.1.1").
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if v > (u64::MAX >> 7) {
            return None;
        }
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// Dotted decimal to OBJECT IDENTIFIER content bytes.
pub fn oid_from_string(s: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = s.split('.').map(|a| a.parse::<u64>().ok()).collect::<Option<_>>()?;
    let (a, b) = (*arcs.first()?, *arcs.get(1)?);
    if a > 2 || (a < 2 && b >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let first = a.checked_mul(40)?.checked_add(b)?;
    for arc in std::iter::once(first).chain(arcs.iter().skip(2).copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_dlms_context() {
        let c = [0x60, 0x85, 0x74, 0x05, 0x08, 0x01, 0x01];
        assert_eq!(oid_to_string(&c).as_deref(), Some("2.16.756.5.8.1.1"));
        assert_eq!(oid_from_string("2.16.756.5.8.1.1").unwrap(), c.to_vec());
        assert_eq!(oid_from_string("x.1"), None);
        assert_eq!(oid_to_string(&[0x85]), None);
    }

    #[test]
    fn integers() {
        for v in [0i64, 1, 127, 128, 255, 256, -1, -128, -129, i64::MAX, i64::MIN] {
            let c = integer_content(v);
            let t = Tlv { tag: 2, start: 0, content: &c, at: 0 };
            assert_eq!(integer(&t, "x").unwrap(), v);
        }
        assert_eq!(integer_content(128), vec![0, 128]);
    }

    #[test]
    fn long_lengths() {
        let mut out = Vec::new();
        put_tlv(&mut out, 0x04, &[7; 300]);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut r = reader(&out);
        assert_eq!(read_tlv(&mut r, "x").unwrap().content.len(), 300);
        assert!(read_tlv(&mut reader(&[0x04, 0x80]), "x").is_err());
        assert!(read_tlv(&mut reader(&[0x04, 0x05, 1]), "x").is_err());
    }
}
