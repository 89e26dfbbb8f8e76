//! The wrapper of IEC 62056-47 (DLMS/COSEM over TCP/UDP, Green Book 7.3.3):
//! an 8-byte header, version 0x0001, source wPort, destination wPort and the
//! length of the APDU, all big-endian, then the APDU. [`WrapperFramer`]
//! splits a TCP byte stream into frames, with a bounded length.

use crate::error::{Error, ErrorKind, Layer, Result};

pub const VERSION: u16 = 0x0001;
pub const HEADER_LEN: usize = 8;

/// One wrapper frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFrame {
    pub source: u16,
    pub dest: u16,
    pub apdu: Vec<u8>,
}

/// The wire bytes of one wrapper frame.
pub fn encode(source: u16, dest: u16, apdu: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(apdu.len()).map_err(|_| {
        Error::new(Layer::Wrapper, "length", 6, ErrorKind::TooLong { length: apdu.len(), limit: 0xFFFF })
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + apdu.len());
    for v in [VERSION, source, dest, len] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(apdu);
    Ok(out)
}

/// Decode exactly one wrapper frame.
pub fn decode(buf: &[u8]) -> Result<WrapperFrame> {
    let mut f = WrapperFramer::new(0xFFFF);
    f.feed(buf);
    match f.next_frame()? {
        Some(frame) if f.buffered() == 0 => Ok(frame),
        Some(frame) => {
            Err(Error::new(Layer::Wrapper, "APDU", HEADER_LEN + frame.apdu.len(), ErrorKind::Trailing(f.buffered())))
        }
        None => {
            let need = if buf.len() < HEADER_LEN { HEADER_LEN } else { HEADER_LEN + be16(buf, 6) as usize };
            let field = if buf.len() < HEADER_LEN { "header" } else { "APDU" };
            Err(Error::truncated(Layer::Wrapper, field, buf.len(), need - buf.len(), 0))
        }
    }
}

/// The 8-byte header of a wrapper frame, as read (the version is not checked here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub source: u16,
    pub dest: u16,
    /// The length of the APDU that follows.
    pub length: u16,
}

/// The header at the start of `buf` (truncated when fewer than 8 bytes).
pub fn header(buf: &[u8]) -> Result<Header> {
    if buf.len() < HEADER_LEN {
        return Err(Error::truncated(Layer::Wrapper, "header", buf.len(), HEADER_LEN - buf.len(), buf.len()));
    }
    Ok(Header { version: be16(buf, 0), source: be16(buf, 2), dest: be16(buf, 4), length: be16(buf, 6) })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b.get(at).copied().unwrap_or(0), b.get(at + 1).copied().unwrap_or(0)])
}

/// Splits a TCP byte stream into wrapper frames.
///
/// A wrapper stream cannot be resynchronised (there is no flag), so after an
/// error the buffered bytes are dropped and the caller should close the
/// connection; offsets in errors count from the start of the stream.
#[derive(Debug, Clone)]
pub struct WrapperFramer {
    buf: Vec<u8>,
    pos: usize,
    consumed: u64,
    max_apdu: usize,
}

impl WrapperFramer {
    pub fn new(max_apdu: usize) -> WrapperFramer {
        WrapperFramer { buf: Vec::new(), pos: 0, consumed: 0, max_apdu: max_apdu.min(0xFFFF) }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The longest APDU accepted (at most 65535, the wrapper's length field).
    pub fn max_apdu(&self) -> usize {
        self.max_apdu
    }

    /// Change the longest APDU accepted (capped at 65535); buffered bytes are
    /// kept, the next header is checked against the new limit.
    pub fn set_max_apdu(&mut self, max_apdu: usize) {
        self.max_apdu = max_apdu.min(0xFFFF);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next frame, or None until a whole frame is buffered.
    pub fn next_frame(&mut self) -> Result<Option<WrapperFrame>> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let Ok(h) = header(rest) else { return Ok(None) };
        let at = usize::try_from(self.consumed).unwrap_or(usize::MAX);
        let version = h.version;
        if version != VERSION {
            self.fail();
            return Err(Error::invalid(Layer::Wrapper, "version", at, format!("0x{version:04x}"), "0x0001"));
        }
        let len = h.length as usize;
        if len > self.max_apdu {
            self.fail();
            let kind = ErrorKind::TooLong { length: len, limit: self.max_apdu };
            return Err(Error::new(Layer::Wrapper, "length", at.saturating_add(6), kind));
        }
        let Some(apdu) = rest.get(HEADER_LEN..HEADER_LEN + len) else { return Ok(None) };
        let frame = WrapperFrame { source: h.source, dest: h.dest, apdu: apdu.to_vec() };
        self.pos += HEADER_LEN + len;
        self.consumed += (HEADER_LEN + len) as u64;
        Ok(Some(frame))
    }

    fn fail(&mut self) {
        self.consumed += self.buffered() as u64;
        self.buf.clear();
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn green_book_layout() {
        // Client wPort 0x10 (public client) to server wPort 1, GET-request of the clock time.
        let apdu = [0xC0, 0x01, 0xC1, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0xFF, 0x02, 0x00];
        let w = encode(0x10, 0x01, &apdu).unwrap();
        assert_eq!(w[..8], [0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0x00, 0x0D]);
        assert_eq!(decode(&w).unwrap(), WrapperFrame { source: 0x10, dest: 1, apdu: apdu.to_vec() });
    }

    #[test]
    fn stream_split_and_errors() {
        let mut s = encode(1, 2, b"abc").unwrap();
        s.extend(encode(3, 4, b"").unwrap());
        s.extend(encode(5, 6, &[7; 300]).unwrap());
        let mut f = WrapperFramer::new(1000);
        let mut got = Vec::new();
        for b in s.chunks(5) {
            f.feed(b);
            while let Some(fr) = f.next_frame().unwrap() {
                got.push(fr);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].apdu.len(), 300);
        f.feed(&[0, 2, 0, 1, 0, 1, 0, 0]);
        let e = f.next_frame().unwrap_err();
        assert_eq!((e.field, e.offset), ("version", s.len()));
        assert_eq!(WrapperFramer::new(1 << 20).max_apdu(), 0xFFFF);
        let mut f = WrapperFramer::new(1000);
        let frame = encode(1, 1, &[0; 11]).unwrap();
        f.feed(&frame[..4]);
        f.set_max_apdu(10);
        f.feed(&frame[4..]);
        assert_eq!(f.next_frame().unwrap_err().kind, ErrorKind::TooLong { length: 11, limit: 10 });
        let mut f = WrapperFramer::new(10);
        f.feed(&encode(1, 1, &[0; 11]).unwrap());
        let e = f.next_frame().unwrap_err();
        assert_eq!((e.field, e.offset), ("length", 6));
        assert!(decode(&[0, 1, 0, 1]).is_err());
        assert!(decode(&encode(1, 1, b"ab").unwrap()[..9]).is_err());
        let mut two = encode(1, 1, b"a").unwrap();
        two.push(0);
        assert_eq!(decode(&two).unwrap_err().kind, ErrorKind::Trailing(1));
        assert!(encode(1, 1, &vec![0; 70000]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip(src in any::<u16>(), dst in any::<u16>(), apdu in proptest::collection::vec(any::<u8>(), 0..200)) {
            let w = encode(src, dst, &apdu).unwrap();
            prop_assert_eq!(decode(&w).unwrap(), WrapperFrame { source: src, dest: dst, apdu });
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..64) {
            let mut f = WrapperFramer::new(32);
            f.feed(data.get(..cut.min(data.len())).unwrap_or(&[]));
            let _ = f.next_frame();
            f.feed(data.get(cut.min(data.len())..).unwrap_or(&[]));
            while let Ok(Some(_)) = f.next_frame() {}
            let _ = decode(&data);
        }
    }
}
