//! A byte-stream framer for HDLC: finds frames in a noisy stream (serial,
//! optical), lets back-to-back frames share one flag, resynchronises after
//! garbage or a bad frame, keeps its buffer bounded and reports what it skipped.
//!
//! Frames are delimited by their length field (no byte stuffing in
//! IEC 62056-46), so a 0x7E inside a frame is data, not a flag.

use super::frame::{decode_body, parse_format, Frame, FLAG, MAX_LENGTH, MIN_LENGTH};
use crate::crc;
use crate::error::{Error, ErrorKind, Layer};

/// Keep at most this many skip messages between two calls to `take_errors`.
const MAX_MESSAGES: usize = 64;
/// Longest frame without an information field (4-byte addresses both ways), hence without HCS.
const MAX_HEADERLESS: usize = 2 + 4 + 4 + 1 + 2;

/// Splits a byte stream into decoded frames.
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    max_frame: usize,
    errors: Vec<String>,
    dropped_messages: usize,
    discarded: u64,
    /// Garbage run being accumulated: (stream offset, length).
    garbage: Option<(u64, usize)>,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(2048)
    }
}

impl Framer {
    /// `max_frame` bounds the length field accepted (bytes between the flags, at most 2047).
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            pos: 0,
            base: 0,
            max_frame: max_frame.clamp(MIN_LENGTH, MAX_LENGTH),
            errors: Vec::new(),
            dropped_messages: 0,
            discarded: 0,
            garbage: None,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.buf.len() + data.len() > self.buf.capacity()) {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Total bytes skipped (garbage, bad frames) since creation.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// Messages for what was skipped since the last call.
    pub fn take_errors(&mut self) -> Vec<String> {
        self.flush_garbage();
        let mut out = std::mem::take(&mut self.errors);
        if self.dropped_messages > 0 {
            out.push(format!("{} further skip message(s) dropped", self.dropped_messages));
            self.dropped_messages = 0;
        }
        out
    }

    fn note(&mut self, msg: String) {
        if self.errors.len() < MAX_MESSAGES {
            self.errors.push(msg);
        } else {
            self.dropped_messages += 1;
        }
    }

    fn flush_garbage(&mut self) {
        if let Some((at, n)) = self.garbage.take() {
            self.note(format!("HDLC: skipped {n} byte(s) of garbage at stream offset {at}"));
        }
    }

    /// Skip `n` bytes at the read position as garbage.
    fn skip_garbage(&mut self, n: usize) {
        let at = self.base + self.pos as u64;
        self.garbage = match self.garbage {
            Some((start, len)) if start + len as u64 == at => Some((start, len + n)),
            _ => {
                self.flush_garbage();
                Some((at, n))
            }
        };
        self.discarded += n as u64;
        self.pos += n;
    }

    /// Skip a bad frame of `n` bytes, with the reason.
    fn skip_bad(&mut self, n: usize, e: &Error) {
        self.flush_garbage();
        let at = self.base + self.pos as u64;
        self.note(format!("frame at stream offset {at} rejected: {e}"));
        self.discarded += n as u64;
        self.pos += n;
    }

    /// The next complete, valid frame, or None until more data arrives.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            // Find the opening flag.
            match rest.iter().position(|&b| b == FLAG) {
                None => {
                    let n = rest.len();
                    if n > 0 {
                        self.skip_garbage(n);
                    }
                    return None;
                }
                Some(0) => {}
                Some(k) => {
                    self.skip_garbage(k);
                    continue;
                }
            }
            // rest[0] is a flag. Fill flags (7E 7E) are not garbage.
            let (Some(&f0), Some(&f1)) = (rest.get(1), rest.get(2)) else { return None };
            if f0 == FLAG {
                self.pos += 1;
                continue;
            }
            // A flag not followed by a plausible format field is garbage itself.
            let length = match parse_format(f0, f1, 1) {
                Ok((_, l)) if (MIN_LENGTH..=self.max_frame).contains(&l) => l,
                _ => {
                    self.skip_garbage(1);
                    continue;
                }
            };
            // Check the header (HCS) as soon as it is here: a corrupted length
            // field must not make us wait for, and swallow, the frames after it.
            match header_check(rest.get(1..).unwrap_or(&[]), length) {
                HeaderCheck::Incomplete => return None,
                HeaderCheck::Malformed => {
                    self.skip_garbage(1);
                    continue;
                }
                HeaderCheck::BadHcs(e) => {
                    self.skip_bad(1, &e.shifted(1));
                    continue;
                }
                HeaderCheck::Plausible => {}
            }
            let &closing = rest.get(length + 1)?;
            if closing != FLAG {
                // Wrong length or lost bytes: resynchronise on the next flag.
                self.skip_garbage(1);
                continue;
            }
            let body = rest.get(1..length + 1).unwrap_or(&[]);
            match decode_body(body) {
                Ok(frame) => {
                    self.flush_garbage();
                    // The closing flag may open the next frame.
                    self.pos += length + 1;
                    return Some(frame);
                }
                // A bad FCS after a good HCS: the length is trustworthy, skip the
                // frame (its closing flag may open the next). Otherwise the length
                // may be what was corrupted: resynchronise from the next byte.
                Err(e) if e.field == "FCS" && length > MAX_HEADERLESS => self.skip_bad(length + 1, &e.shifted(1)),
                Err(e) => self.skip_bad(1, &e.shifted(1)),
            }
        }
    }

    /// Every complete frame buffered now.
    pub fn drain(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.next_frame()).collect()
    }
}

/// What can be said of a frame from its first bytes, before all of it is here.
enum HeaderCheck {
    /// Not enough bytes yet to say.
    Incomplete,
    /// Addresses that cannot be (more than 4 bytes, or 3): not a frame start.
    Malformed,
    /// The frame carries an HCS and it does not match its header.
    BadHcs(Error),
    /// Nothing wrong so far (or a short frame with no HCS: its FCS will tell).
    Plausible,
}

/// Check the header of a frame whose bytes between the flags start at `body`
/// (format, addresses, control, HCS), given the length its format field announces.
fn header_check(body: &[u8], length: usize) -> HeaderCheck {
    let address_len = |from: usize| -> Result<usize, HeaderCheck> {
        for i in 0..4 {
            match body.get(from + i) {
                None => return Err(HeaderCheck::Incomplete),
                Some(b) if b & 1 == 1 => {
                    return if i == 2 { Err(HeaderCheck::Malformed) } else { Ok(i + 1) };
                }
                Some(_) => {}
            }
        }
        Err(HeaderCheck::Malformed)
    };
    let dn = match address_len(2) {
        Ok(n) => n,
        Err(verdict) => return verdict,
    };
    let sn = match address_len(2 + dn) {
        Ok(n) => n,
        Err(verdict) => return verdict,
    };
    let header = 2 + dn + sn + 1;
    if length < header + 5 {
        // No information field, hence no HCS (or a length the decoder will refuse).
        return HeaderCheck::Plausible;
    }
    let (Some(head), Some(&lo), Some(&hi)) = (body.get(..header), body.get(header), body.get(header + 1)) else {
        return HeaderCheck::Incomplete;
    };
    let computed = crc::crc16_x25(head);
    let carried = u16::from_le_bytes([lo, hi]);
    if computed == carried {
        HeaderCheck::Plausible
    } else {
        HeaderCheck::BadHcs(Error::new(Layer::Hdlc, "HCS", header, ErrorKind::Checksum { computed, carried }))
    }
}
