//! A byte-stream framer for HDLC: finds frames in a noisy stream (serial,
//! optical), lets back-to-back frames share one flag, resynchronises after
//! garbage or a bad frame, keeps its buffer bounded and reports what it skipped.
//!
//! Frames are delimited by their length field (no byte stuffing in
//! IEC 62056-46), so a 0x7E inside a frame is data, not a flag.

use super::frame::{decode_body, parse_format, Frame, FLAG, MAX_LENGTH, MIN_LENGTH};
use crate::error::Error;

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
