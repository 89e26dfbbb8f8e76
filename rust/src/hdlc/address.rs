//! HDLC addresses with extended addressing (IEC 62056-46, Green Book 8.4.2.2):
//! every byte carries 7 address bits above an end bit (LSB = 1 on the last
//! byte). The client address is one byte; a server address is 1 byte (upper
//! only), 2 bytes (upper, lower: 7 bits each) or 4 bytes (upper, lower: 14
//! bits each). Parsing follows the end bit, so mixed sizes are accepted.

use crate::error::{Error, Layer, Result};

/// One HDLC address: the upper part and, for 2/4-byte server addresses, the lower part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    pub upper: u16,
    pub lower: Option<u16>,
    /// Bytes on the wire: 1, 2 or 4.
    pub size: u8,
}

impl Address {
    /// A one-byte address (client addresses, or a server upper address alone).
    pub fn client(addr: u8) -> Result<Self> {
        Address::with_size(addr as u16, None, Some(1))
    }

    /// An address of `size` bytes, or the smallest that fits when `size` is None.
    pub fn with_size(upper: u16, lower: Option<u16>, size: Option<u8>) -> Result<Self> {
        let fits7 = upper <= 0x7F && lower.map_or(true, |l| l <= 0x7F);
        let size = match size {
            Some(s) => s,
            None if lower.is_none() => 1,
            None if fits7 => 2,
            None => 4,
        };
        let bad = |what: &'static str, v: u16| Error::invalid(Layer::Hdlc, "address", 0, v, what);
        match (size, lower) {
            (1, None) if upper <= 0x7F => {}
            (1, None) => return Err(bad("a 1-byte address of at most 0x7f", upper)),
            (1, Some(l)) => return Err(bad("no lower address in a 1-byte address", l)),
            (2 | 4, None) => return Err(bad("a lower address for a 2- or 4-byte address", upper)),
            (2, Some(_)) if !fits7 => return Err(bad("upper and lower of at most 0x7f in a 2-byte address", upper)),
            (4, Some(l)) if upper > 0x3FFF || l > 0x3FFF => {
                return Err(bad("upper and lower of at most 0x3fff in a 4-byte address", upper.max(l)))
            }
            (2 | 4, Some(_)) => {}
            (s, _) => return Err(Error::invalid(Layer::Hdlc, "address size", 0, s, "1, 2 or 4")),
        }
        Ok(Address { upper, lower, size })
    }

    /// Whether `self` names the same station as `other` (sizes may differ).
    pub fn same_station(&self, other: &Address) -> bool {
        self.upper == other.upper && self.lower == other.lower
    }

    /// Append the wire bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        let b7 = |v: u16| ((v & 0x7F) as u8) << 1;
        match (self.size, self.lower) {
            (2, Some(l)) => out.extend_from_slice(&[b7(self.upper), b7(l) | 1]),
            (4, Some(l)) => out.extend_from_slice(&[b7(self.upper >> 7), b7(self.upper), b7(l >> 7), b7(l) | 1]),
            _ => out.push(b7(self.upper) | 1),
        }
    }

    /// Parse one address at `offset` of `buf`: returns it and the bytes it took.
    pub fn read(buf: &[u8], offset: usize, field: &'static str) -> Result<(Address, usize)> {
        let rest = buf.get(offset..).unwrap_or(&[]);
        let Some(n) = rest.iter().take(4).position(|b| b & 1 == 1).map(|p| p + 1) else {
            if rest.len() < 4 {
                return Err(Error::truncated(Layer::Hdlc, field, offset, 1, 0));
            }
            return Err(Error::invalid(
                Layer::Hdlc,
                field,
                offset,
                "no end bit in 4 bytes",
                "an address of 1, 2 or 4 bytes",
            ));
        };
        let v = |i: usize| rest.get(i).map_or(0u16, |b| (b >> 1) as u16);
        let addr = match n {
            1 => Address { upper: v(0), lower: None, size: 1 },
            2 => Address { upper: v(0), lower: Some(v(1)), size: 2 },
            4 => Address { upper: (v(0) << 7) | v(1), lower: Some((v(2) << 7) | v(3)), size: 4 },
            _ => return Err(Error::invalid(Layer::Hdlc, field, offset, "3 bytes", "an address of 1, 2 or 4 bytes")),
        };
        Ok((addr, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(a: Address) -> Vec<u8> {
        let mut v = Vec::new();
        a.write(&mut v);
        let (b, n) = Address::read(&v, 0, "dest").unwrap();
        assert_eq!((b, n), (a, v.len()));
        v
    }

    #[test]
    fn sizes() {
        // Green Book examples: client 0x10 -> 0x21; server upper 1 -> 0x03; (1, 0x11) -> 02 23.
        assert_eq!(round(Address::client(0x10).unwrap()), [0x21]);
        assert_eq!(round(Address::with_size(1, None, None).unwrap()), [0x03]);
        assert_eq!(round(Address::with_size(1, Some(0x11), None).unwrap()), [0x02, 0x23]);
        assert_eq!(round(Address::with_size(1, Some(0x11), Some(4)).unwrap()), [0x00, 0x02, 0x00, 0x23]);
        assert_eq!(round(Address::with_size(0x3FFF, Some(0x1234), None).unwrap()), [0xFE, 0xFE, 0x48, 0x69]);
    }

    #[test]
    fn rejects() {
        assert!(Address::with_size(0x80, None, None).is_err());
        assert!(Address::with_size(1, Some(2), Some(1)).is_err());
        assert!(Address::with_size(0x80, Some(2), Some(2)).is_err());
        assert!(Address::with_size(0x4000, Some(2), Some(4)).is_err());
        assert!(Address::with_size(1, Some(2), Some(3)).is_err());
        let e = Address::read(&[0x02, 0x02, 0x03], 0, "dest").unwrap_err();
        assert_eq!((e.field, e.offset), ("dest", 0));
        assert!(Address::read(&[0x02, 0x02], 0, "dest").is_err());
        assert!(Address::read(&[0x02, 0x02, 0x02, 0x02, 0x03], 0, "dest").is_err());
    }
}
