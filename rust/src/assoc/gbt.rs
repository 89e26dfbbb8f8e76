//! General-block-transfer (Green Book, GBT): one APDU too long for the
//! peer's PDU size travels in numbered blocks, both roles alike.
//!
//! * The window field of every GBT APDU announces its sender's receive
//!   window. A sender sends up to the peer's last announced window (1 before
//!   it heard one), streaming: every block of a window but its last carries
//!   the streaming bit; the last of the window (streaming clear) or the last
//!   block of the APDU is the one the receiver answers.
//! * The receiver takes blocks in sequence only. At the end of a window it
//!   acknowledges with an empty GBT whose block-number-ack is the last block
//!   received in sequence; a gap (a lost block) therefore makes the sender
//!   go back and send again from the block after the acknowledged one. The
//!   last block of the APDU is not acknowledged: the answer (or the next
//!   request) follows. The client also asks again (the same acknowledgement)
//!   when a transfer stalls for the response timeout.
//! * Acknowledgements carry our own incrementing block number and no data.

use super::blocks::Reassembly;
use crate::apdu::GeneralBlockTransfer;
use crate::error::{Error, ErrorKind, Layer, Result};

/// The plain header of a GBT APDU: tag, control, block-number, block-number-ack.
pub(crate) const HEADER: usize = 6;

/// The sending side of one transfer.
#[derive(Debug)]
pub(crate) struct Sender {
    blocks: Vec<Vec<u8>>,
    /// Highest block number the peer acknowledged.
    acked: u16,
    /// Every block went out at least once.
    pub all_sent: bool,
}

fn gbt_err(msg: String) -> Error {
    Error::new(Layer::Apdu, "general-block-transfer", 0, ErrorKind::Other(msg))
}

impl Sender {
    pub fn new(apdu: &[u8], block_size: usize) -> Result<Self> {
        let blocks: Vec<Vec<u8>> = apdu.chunks(block_size.max(1)).map(<[u8]>::to_vec).collect();
        if blocks.len() > usize::from(u16::MAX) {
            return Err(gbt_err(format!(
                "an APDU of {} bytes needs {} blocks of {block_size} bytes: more than 65535",
                apdu.len(),
                blocks.len()
            )));
        }
        Ok(Sender { blocks, acked: 0, all_sent: false })
    }

    fn total(&self) -> u16 {
        self.blocks.len() as u16
    }

    /// Blocks `from..` up to `window` of them, encoded.
    pub fn send_from(&mut self, from: u16, window: u8, ours: u8, ack: u16) -> Vec<Vec<u8>> {
        let total = u32::from(self.total());
        let from = u32::from(from.max(1));
        if from > total {
            return Vec::new();
        }
        let last = (from + u32::from(window.max(1)) - 1).min(total);
        let mut out = Vec::new();
        for n in from..=last {
            let data = self.blocks.get(n as usize - 1).cloned().unwrap_or_default();
            let b = GeneralBlockTransfer {
                last_block: n == total,
                streaming: n < last,
                window: ours,
                block_number: n as u16,
                block_number_ack: ack,
                block_data: data,
            };
            let mut apdu = Vec::new();
            b.encode(&mut apdu);
            out.push(apdu);
        }
        if last == total {
            self.all_sent = true;
        }
        out
    }

    /// The peer acknowledged `ack`: the next window from `ack + 1`.
    pub fn on_ack(&mut self, ack: u16, window: u8, ours: u8, our_ack: u16) -> Vec<Vec<u8>> {
        if ack >= self.total() {
            self.acked = self.total();
            return Vec::new();
        }
        self.acked = self.acked.max(ack);
        self.send_from(ack + 1, window, ours, our_ack)
    }

    /// Send again from the block after the last acknowledged one.
    pub fn resend(&mut self, window: u8, ours: u8, our_ack: u16) -> Vec<Vec<u8>> {
        self.send_from(self.acked.saturating_add(1), window, ours, our_ack)
    }
}

/// What one received GBT block led to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rx {
    Nothing,
    /// Acknowledge with this block-number-ack.
    Ack(u16),
    Complete(Vec<u8>),
}

/// The receiving side.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    /// Next block number wanted (0: no transfer in progress).
    expected: u16,
    buf: Reassembly,
    /// Our own block number for acknowledgements.
    own: u16,
    /// The last block taken in sequence, of this or the last transfer.
    pub last_taken: u16,
}

impl Receiver {
    pub fn active(&self) -> bool {
        self.expected != 0
    }

    pub fn reset(&mut self) {
        self.expected = 0;
        self.buf = Reassembly::default();
    }

    /// The block-number-ack that asks for everything after what we have.
    pub fn retry_ack(&self) -> u16 {
        self.expected.saturating_sub(1)
    }

    /// Take one block; `ceiling` bounds the reassembled APDU.
    pub fn on_block(&mut self, b: &GeneralBlockTransfer, ceiling: usize) -> Result<Rx> {
        if self.expected == 0 || (b.block_number == 1 && self.expected > 1) {
            // A transfer starts (block 1 can only mean a new one: a sender
            // goes back to 1 only when nothing was acknowledged).
            self.expected = 1;
            self.buf = Reassembly::default();
        }
        let window_end = !b.streaming || b.last_block;
        if b.block_number != self.expected {
            // A gap (lost blocks) or a repeat: ask from the first missing one.
            return Ok(if window_end { Rx::Ack(self.expected - 1) } else { Rx::Nothing });
        }
        if let Err(e) = self.buf.push(&b.block_data, ceiling, super::blocks::GBT_CEILING, u32::from(b.block_number)) {
            self.reset();
            return Err(e);
        }
        self.last_taken = b.block_number;
        if b.last_block {
            let whole = std::mem::take(&mut self.buf.buf);
            self.reset();
            return Ok(Rx::Complete(whole));
        }
        self.expected = match self.expected.checked_add(1) {
            Some(n) => n,
            None => {
                self.reset();
                return Err(gbt_err("more than 65535 blocks without a last block".into()));
            }
        };
        Ok(if window_end { Rx::Ack(b.block_number) } else { Rx::Nothing })
    }

    /// An acknowledgement APDU (no data) with block-number-ack `ack`.
    pub fn ack_apdu(&mut self, ack: u16, window: u8) -> Vec<u8> {
        self.own = self.own.wrapping_add(1).max(1);
        let b = GeneralBlockTransfer {
            last_block: false,
            streaming: false,
            window,
            block_number: self.own,
            block_number_ack: ack,
            block_data: Vec::new(),
        };
        let mut out = Vec::new();
        b.encode(&mut out);
        out
    }
}

/// Decode a GBT APDU (the caller checked the tag).
pub(crate) fn decode(apdu: &[u8]) -> Result<GeneralBlockTransfer> {
    match crate::apdu::decode(apdu)? {
        crate::apdu::Apdu::GeneralBlockTransfer(b) => Ok(b),
        other => Err(gbt_err(format!("{} where a general-block-transfer was expected", other.kind()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(out: &[Vec<u8>]) -> Vec<GeneralBlockTransfer> {
        out.iter().map(|a| decode(a).unwrap()).collect()
    }

    #[test]
    fn windows_streaming_and_go_back() {
        let apdu: Vec<u8> = (0..100u8).collect();
        let mut s = Sender::new(&apdu, 10).unwrap();
        let w = blocks(&s.send_from(1, 3, 5, 0));
        assert_eq!(
            w.iter().map(|b| (b.block_number, b.streaming, b.last_block)).collect::<Vec<_>>(),
            vec![(1, true, false), (2, true, false), (3, false, false)]
        );
        assert!(w.iter().all(|b| b.window == 5));
        let mut r = Receiver::default();
        assert_eq!(r.on_block(&w[0], 1000).unwrap(), Rx::Nothing);
        // block 2 lost: block 3 ends the window, the ack asks from 2 again
        assert_eq!(r.on_block(&w[2], 1000).unwrap(), Rx::Ack(1));
        let again = blocks(&s.on_ack(1, 4, 5, 0));
        assert_eq!(again.iter().map(|b| b.block_number).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        for b in &again[..3] {
            assert_eq!(r.on_block(b, 1000).unwrap(), Rx::Nothing);
        }
        assert_eq!(r.on_block(&again[3], 1000).unwrap(), Rx::Ack(5));
        let rest = blocks(&s.on_ack(5, 63, 5, 0));
        assert_eq!(rest.len(), 5);
        assert!(rest[4].last_block && !rest[4].streaming && s.all_sent);
        for b in &rest[..4] {
            assert_eq!(r.on_block(b, 1000).unwrap(), Rx::Nothing);
        }
        assert_eq!(r.on_block(&rest[4], 1000).unwrap(), Rx::Complete(apdu));
        assert!(!r.active());
    }

    #[test]
    fn ceiling_and_block_count() {
        let mut s = Sender::new(&[7u8; 50], 10).unwrap();
        let w = blocks(&s.send_from(1, 63, 1, 0));
        let mut r = Receiver::default();
        let mut got = Ok(Rx::Nothing);
        for b in &w {
            got = r.on_block(b, 25);
            if got.is_err() {
                break;
            }
        }
        assert_eq!(got.unwrap_err().field, super::super::blocks::GBT_CEILING);
        assert!(!r.active());
        assert!(Sender::new(&vec![0u8; 70_000], 1).is_err());
    }
}
