//! The SNRM/UA information field: HDLC parameter negotiation (IEC 62056-46
//! 6.4.4.4.3.2, Green Book 8.4.5.3.2): format identifier 0x81, group
//! identifier 0x80, group length, then parameters 0x05 max info field length
//! transmit, 0x06 receive, 0x07 window size transmit, 0x08 receive, each with a
//! 1, 2 or 4-byte value. Absent parameters take the defaults 128/128/1/1.

use crate::error::{Error, Layer, Result};

pub const FORMAT_ID: u8 = 0x81;
pub const GROUP_ID: u8 = 0x80;
/// Largest information field that fits an 11-bit frame length with 4-byte addresses.
pub const MAX_INFO_LIMIT: u32 = 2030;

/// Link parameters, seen from the station that sends them ("tx" = what it transmits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameters {
    pub max_info_tx: u32,
    pub max_info_rx: u32,
    pub window_tx: u32,
    pub window_rx: u32,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters { max_info_tx: 128, max_info_rx: 128, window_tx: 1, window_rx: 1 }
    }
}

impl Parameters {
    /// Clamp to what the link can carry: info 1..=2030, window 1..=7.
    pub fn clamped(self) -> Parameters {
        let info = |v: u32| v.clamp(1, MAX_INFO_LIMIT);
        let win = |v: u32| v.clamp(1, 7);
        Parameters {
            max_info_tx: info(self.max_info_tx),
            max_info_rx: info(self.max_info_rx),
            window_tx: win(self.window_tx),
            window_rx: win(self.window_rx),
        }
    }

    /// Our parameters after the peer proposed `peer` (its own point of view):
    /// what we send is bounded by what it receives, and the other way round.
    pub fn negotiate(&self, peer: &Parameters) -> Parameters {
        Parameters {
            max_info_tx: self.max_info_tx.min(peer.max_info_rx),
            max_info_rx: self.max_info_rx.min(peer.max_info_tx),
            window_tx: self.window_tx.min(peer.window_rx),
            window_rx: self.window_rx.min(peer.window_tx),
        }
        .clamped()
    }

    /// The information field: lengths as 1 or 2 bytes, windows as 4 bytes
    /// (the layout of the Green Book example).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(20);
        for (id, v) in [(0x05, self.max_info_tx), (0x06, self.max_info_rx)] {
            body.push(id);
            if v <= 0xFF {
                body.extend_from_slice(&[1, v as u8]);
            } else if v <= 0xFFFF {
                body.push(2);
                body.extend_from_slice(&(v as u16).to_be_bytes());
            } else {
                body.push(4);
                body.extend_from_slice(&v.to_be_bytes());
            }
        }
        for (id, v) in [(0x07, self.window_tx), (0x08, self.window_rx)] {
            body.push(id);
            body.push(4);
            body.extend_from_slice(&v.to_be_bytes());
        }
        let mut out = vec![FORMAT_ID, GROUP_ID, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    /// Parse an SNRM/UA information field; an empty one means all defaults.
    /// Unknown parameters are skipped; offsets are within `info`.
    pub fn decode(info: &[u8]) -> Result<Parameters> {
        let mut p = Parameters::default();
        for e in entries(info)? {
            match e.id {
                0x05 => p.max_info_tx = e.value,
                0x06 => p.max_info_rx = e.value,
                0x07 => p.window_tx = e.value,
                0x08 => p.window_rx = e.value,
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The negotiation parameters by identifier, with the names the translator shows.
pub const PARAMETER_NAMES: &[(u8, &str)] = &[
    (0x05, "max_info_field_length_tx"),
    (0x06, "max_info_field_length_rx"),
    (0x07, "window_size_tx"),
    (0x08, "window_size_rx"),
];

/// One parameter as it stands in the information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u8,
    /// The value (0 for an unknown parameter whose length is not 1, 2 or 4).
    pub value: u32,
    /// Offset of the parameter identifier within the information field.
    pub offset: usize,
}

impl Entry {
    pub fn name(&self) -> Option<&'static str> {
        PARAMETER_NAMES.iter().find(|(id, _)| *id == self.id).map(|(_, n)| *n)
    }
}

/// Every parameter of an SNRM/UA information field, in order (empty: none).
/// The format and group identifiers and the group length are checked.
pub fn entries(info: &[u8]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    if info.is_empty() {
        return Ok(out);
    }
    let byte = |i: usize, field: &'static str| {
        info.get(i).copied().ok_or_else(|| Error::truncated(Layer::Hdlc, field, i, 1, 0))
    };
    let fmt = byte(0, "parameter format identifier")?;
    if fmt != FORMAT_ID {
        return Err(Error::invalid(Layer::Hdlc, "parameter format identifier", 0, format!("0x{fmt:02x}"), "0x81"));
    }
    let group = byte(1, "parameter group identifier")?;
    if group != GROUP_ID {
        return Err(Error::invalid(Layer::Hdlc, "parameter group identifier", 1, format!("0x{group:02x}"), "0x80"));
    }
    let glen = byte(2, "parameter group length")? as usize;
    let end = 3 + glen;
    if end > info.len() {
        return Err(Error::truncated(Layer::Hdlc, "parameter group", 3, end - info.len(), info.len() - 3));
    }
    let mut i = 3;
    while i < end {
        let id = byte(i, "parameter identifier")?;
        let len = byte(i + 1, "parameter length")? as usize;
        let v_at = i + 2;
        if v_at + len > end {
            return Err(Error::truncated(Layer::Hdlc, "parameter value", v_at, v_at + len - end, end - v_at));
        }
        let raw = info.get(v_at..v_at + len).unwrap_or(&[]);
        let value = match len {
            1 | 2 | 4 => raw.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32),
            _ if (0x05..=0x08).contains(&id) => {
                return Err(Error::invalid(Layer::Hdlc, "parameter length", i + 1, len, "1, 2 or 4"))
            }
            _ => 0,
        };
        out.push(Entry { id, value, offset: i });
        i = v_at + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_order_with_names_and_offsets() {
        let info = [0x81, 0x80, 0x0d, 5, 2, 2, 0, 0x0a, 1, 9, 8, 4, 0, 0, 0, 3];
        let e = entries(&info).unwrap();
        let got: Vec<_> = e.iter().map(|e| (e.id, e.name(), e.value, e.offset)).collect();
        assert_eq!(
            got,
            [(5, Some("max_info_field_length_tx"), 512, 3), (0x0a, None, 9, 7), (8, Some("window_size_rx"), 3, 10)]
        );
        let p = Parameters::decode(&info).unwrap();
        assert_eq!((p.max_info_tx, p.max_info_rx, p.window_tx, p.window_rx), (512, 128, 1, 3));
        assert!(entries(&[]).unwrap().is_empty());
        assert_eq!(entries(&[0x81, 0x81, 0]).unwrap_err().field, "parameter group identifier");
    }

    #[test]
    fn green_book_layout_and_defaults() {
        let p = Parameters::default();
        let info = p.encode();
        assert_eq!(info, [0x81, 0x80, 0x12, 5, 1, 0x80, 6, 1, 0x80, 7, 4, 0, 0, 0, 1, 8, 4, 0, 0, 0, 1]);
        assert_eq!(Parameters::decode(&info).unwrap(), p);
        assert_eq!(Parameters::decode(&[]).unwrap(), p);
        // 2-byte lengths as in the Green Book example, only some parameters present.
        let q = Parameters::decode(&[0x81, 0x80, 0x08, 5, 2, 0x02, 0x00, 8, 2, 0, 7]).unwrap();
        assert_eq!(q, Parameters { max_info_tx: 512, max_info_rx: 128, window_tx: 1, window_rx: 7 });
        let big = Parameters { max_info_tx: 1000, max_info_rx: 70000, window_tx: 7, window_rx: 3 };
        assert_eq!(Parameters::decode(&big.encode()).unwrap(), big);
    }

    #[test]
    fn negotiation_takes_minimum() {
        let server = Parameters { max_info_tx: 512, max_info_rx: 256, window_tx: 7, window_rx: 1 };
        let client_proposal = Parameters { max_info_tx: 1024, max_info_rx: 128, window_tx: 3, window_rx: 5 };
        let n = server.negotiate(&client_proposal);
        assert_eq!(n, Parameters { max_info_tx: 128, max_info_rx: 256, window_tx: 5, window_rx: 1 });
        assert_eq!(server.negotiate(&Parameters { window_rx: 0, ..client_proposal }).window_tx, 1);
    }

    #[test]
    fn errors_name_field_and_offset() {
        let e = Parameters::decode(&[0x82, 0x80, 0]).unwrap_err();
        assert_eq!((e.field, e.offset), ("parameter format identifier", 0));
        let e = Parameters::decode(&[0x81, 0x80, 5, 5, 3, 0, 0, 0]).unwrap_err();
        assert_eq!((e.field, e.offset), ("parameter length", 4));
        let e = Parameters::decode(&[0x81, 0x80, 9, 5, 1]).unwrap_err();
        assert_eq!(e.field, "parameter group");
        let e = Parameters::decode(&[0x81, 0x80, 3, 5, 2, 1]).unwrap_err();
        assert_eq!((e.field, e.offset), ("parameter value", 5));
    }
}
