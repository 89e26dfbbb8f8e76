//! The HDLC frame codec, frame format type 3 (IEC 62056-46, Green Book 8.4.2):
//! `7E | format (0xA, S, 11-bit length) | dest | src | control | [HCS | info] | FCS | 7E`.
//! The length counts every byte between the flags; HCS (over format..control)
//! is present only when there is an information field; FCS covers format..info.
//! HDLC here uses no byte stuffing: the length field delimits the frame.

use super::address::Address;
use crate::crc;
use crate::error::{Error, ErrorKind, Layer, Result};

pub const FLAG: u8 = 0x7E;
/// Largest value of the 11-bit length field.
pub const MAX_LENGTH: usize = 0x7FF;
/// Shortest frame between the flags: format (2), two 1-byte addresses, control, FCS.
pub const MIN_LENGTH: usize = 7;

/// The kinds of frame used by IEC 62056-46.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    I,
    RR,
    RNR,
    SNRM,
    DISC,
    UA,
    DM,
    FRMR,
    UI,
}

impl FrameKind {
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::I => "I",
            FrameKind::RR => "RR",
            FrameKind::RNR => "RNR",
            FrameKind::SNRM => "SNRM",
            FrameKind::DISC => "DISC",
            FrameKind::UA => "UA",
            FrameKind::DM => "DM",
            FrameKind::FRMR => "FRMR",
            FrameKind::UI => "UI",
        }
    }

    pub fn from_name(name: &str) -> Option<FrameKind> {
        [
            FrameKind::I,
            FrameKind::RR,
            FrameKind::RNR,
            FrameKind::SNRM,
            FrameKind::DISC,
            FrameKind::UA,
            FrameKind::DM,
            FrameKind::FRMR,
            FrameKind::UI,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// The control byte with P/F = 0 and N(S) = N(R) = 0.
    fn base(self) -> u8 {
        match self {
            FrameKind::I => 0x00,
            FrameKind::RR => 0x01,
            FrameKind::RNR => 0x05,
            FrameKind::SNRM => 0x83,
            FrameKind::DISC => 0x43,
            FrameKind::UA => 0x63,
            FrameKind::DM => 0x0F,
            FrameKind::FRMR => 0x87,
            FrameKind::UI => 0x03,
        }
    }
}

/// The fields of a control byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub kind: FrameKind,
    pub send_seq: Option<u8>,
    pub recv_seq: Option<u8>,
    pub poll_final: bool,
}

impl Control {
    pub fn parse(c: u8, offset: usize) -> Result<Control> {
        let pf = c & 0x10 != 0;
        let nr = (c >> 5) & 7;
        if c & 1 == 0 {
            return Ok(Control {
                kind: FrameKind::I,
                send_seq: Some((c >> 1) & 7),
                recv_seq: Some(nr),
                poll_final: pf,
            });
        }
        let kind = match c & 0x0F {
            0x01 => Some(FrameKind::RR),
            0x05 => Some(FrameKind::RNR),
            _ => match c & !0x10 {
                0x83 => Some(FrameKind::SNRM),
                0x43 => Some(FrameKind::DISC),
                0x63 => Some(FrameKind::UA),
                0x0F => Some(FrameKind::DM),
                0x87 => Some(FrameKind::FRMR),
                0x03 => Some(FrameKind::UI),
                _ => None,
            },
        };
        let kind = kind.ok_or_else(|| {
            Error::invalid(
                Layer::Hdlc,
                "control",
                offset,
                format!("0x{c:02x}"),
                "I, RR, RNR, SNRM, DISC, UA, DM, FRMR or UI",
            )
        })?;
        let recv_seq = matches!(kind, FrameKind::RR | FrameKind::RNR).then_some(nr);
        Ok(Control { kind, send_seq: None, recv_seq, poll_final: pf })
    }

    pub fn byte(&self) -> u8 {
        let mut c = self.kind.base() | if self.poll_final { 0x10 } else { 0 };
        if let Some(nr) = self.recv_seq.filter(|_| matches!(self.kind, FrameKind::I | FrameKind::RR | FrameKind::RNR)) {
            c |= (nr & 7) << 5;
        }
        if let Some(ns) = self.send_seq.filter(|_| self.kind == FrameKind::I) {
            c |= (ns & 7) << 1;
        }
        c
    }
}

/// One HDLC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub segmented: bool,
    pub dest: Address,
    pub src: Address,
    pub control: Control,
    /// The information field (for I/UI frames still holding the LLC header if any).
    pub info: Vec<u8>,
}

impl Frame {
    pub fn new(kind: FrameKind, dest: Address, src: Address, poll_final: bool) -> Frame {
        let send_seq = (kind == FrameKind::I).then_some(0);
        let recv_seq = matches!(kind, FrameKind::I | FrameKind::RR | FrameKind::RNR).then_some(0);
        let control = Control { kind, send_seq, recv_seq, poll_final };
        Frame { segmented: false, dest, src, control, info: Vec::new() }
    }

    pub fn kind(&self) -> FrameKind {
        self.control.kind
    }

    /// The complete frame, flags included.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.info.len() + 16);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Append the complete frame, flags included, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let header = 2 + self.dest.size as usize + self.src.size as usize + 1;
        let length = header + if self.info.is_empty() { 2 } else { 4 + self.info.len() };
        if length > MAX_LENGTH {
            return Err(Error::new(Layer::Hdlc, "length", 1, ErrorKind::TooLong { length, limit: MAX_LENGTH }));
        }
        let start = out.len();
        out.push(FLAG);
        let format = 0xA000u16 | if self.segmented { 0x0800 } else { 0 } | length as u16;
        out.extend_from_slice(&format.to_be_bytes());
        self.dest.write(out);
        self.src.write(out);
        out.push(self.control.byte());
        let body = start + 1;
        if !self.info.is_empty() {
            let hcs = crc::crc16_x25(out.get(body..).unwrap_or(&[]));
            out.extend_from_slice(&hcs.to_le_bytes());
            out.extend_from_slice(&self.info);
        }
        let fcs = crc::crc16_x25(out.get(body..).unwrap_or(&[]));
        out.extend_from_slice(&fcs.to_le_bytes());
        out.push(FLAG);
        Ok(())
    }
}

/// Decode exactly one frame, with or without its 0x7E flags; checks HCS and FCS.
pub fn decode(buf: &[u8]) -> Result<Frame> {
    if buf.first() == Some(&FLAG) {
        if buf.len() < 2 || buf.last() != Some(&FLAG) {
            return Err(Error::invalid(Layer::Hdlc, "closing flag", buf.len().saturating_sub(1), "missing", "0x7e"));
        }
        let inner = buf.get(1..buf.len() - 1).unwrap_or(&[]);
        return decode_body(inner).map_err(|e| e.shifted(1));
    }
    decode_body(buf)
}

/// Read the format field: (segmented, length). `offset` is where it was found.
pub fn parse_format(b0: u8, b1: u8, offset: usize) -> Result<(bool, usize)> {
    if b0 >> 4 != 0xA {
        return Err(Error::invalid(
            Layer::Hdlc,
            "format",
            offset,
            format!("type 0x{:x}", b0 >> 4),
            "frame format type 3 (0xA)",
        ));
    }
    Ok((b0 & 0x08 != 0, (((b0 & 0x07) as usize) << 8) | b1 as usize))
}

/// Decode the bytes between the flags (format .. FCS).
pub fn decode_body(b: &[u8]) -> Result<Frame> {
    let (Some(&f0), Some(&f1)) = (b.first(), b.get(1)) else {
        return Err(Error::truncated(Layer::Hdlc, "format", b.len(), 2 - b.len().min(2), 0));
    };
    let (segmented, length) = parse_format(f0, f1, 0)?;
    if length != b.len() {
        let found = format!("{length} (frame has {} bytes between the flags)", b.len());
        return Err(Error::invalid(Layer::Hdlc, "length", 0, found, "the byte count between the flags"));
    }
    let (dest, dn) = Address::read(b, 2, "destination address")?;
    let (src, sn) = Address::read(b, 2 + dn, "source address")?;
    let ctrl_at = 2 + dn + sn;
    let Some(&c) = b.get(ctrl_at) else {
        return Err(Error::truncated(Layer::Hdlc, "control", ctrl_at, 1, 0));
    };
    let control = Control::parse(c, ctrl_at)?;
    let header = ctrl_at + 1;
    let tail = length.saturating_sub(header);
    let info = match tail {
        2 => Vec::new(),
        0 | 1 => return Err(Error::truncated(Layer::Hdlc, "FCS", header, 2 - tail, tail)),
        3 | 4 => {
            let found = format!("{tail} bytes after the control field");
            return Err(Error::invalid(
                Layer::Hdlc,
                "information field",
                header,
                found,
                "HCS, info and FCS (5 or more)",
            ));
        }
        _ => {
            let hcs = crc::crc16_x25(b.get(..header).unwrap_or(&[]));
            let carried = le16(b, header);
            if hcs != carried {
                return Err(Error::new(Layer::Hdlc, "HCS", header, ErrorKind::Checksum { computed: hcs, carried }));
            }
            b.get(header + 2..length - 2).unwrap_or(&[]).to_vec()
        }
    };
    let fcs = crc::crc16_x25(b.get(..length - 2).unwrap_or(&[]));
    let carried = le16(b, length - 2);
    if fcs != carried {
        return Err(Error::new(Layer::Hdlc, "FCS", length - 2, ErrorKind::Checksum { computed: fcs, carried }));
    }
    Ok(Frame { segmented, dest, src, control, info })
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b.get(at).copied().unwrap_or(0), b.get(at + 1).copied().unwrap_or(0)])
}
