//! The sans-IO HDLC link state machine of IEC 62056-46 (normal response mode),
//! client (primary) or server (secondary) role.
//!
//! Bytes in (`receive_data`), bytes out (`data_to_send`), events out
//! (`next_event`); time comes from the caller as `now` (seconds, monotonic) and
//! the core never reads a clock. The client polls (P bit) and owns the
//! response timer; the server answers each poll with a burst ending in F.
//! I frames are numbered mod 8 with a window of 1..7 (go-back-N on loss),
//! APDUs longer than the negotiated information field are segmented (S bit)
//! and reassembled, the receiver polling for further segments with RR.
//! Reassembly is bounded per link (`LinkConfig::max_reassembly`, at most
//! [`MAX_REASSEMBLY`]): the segments of a longer APDU are acknowledged and
//! dropped, and the shell is told with [`Event::ApduTooLong`].

use std::collections::VecDeque;

use super::address::Address;
use super::frame::{Control, Frame, FrameKind};
use super::framer::Framer;
use super::params::Parameters;
use super::{LLC_REQUEST, LLC_RESPONSE};
use crate::error::{Error, ErrorKind, Layer, Result};

mod client;
mod server;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Disconnected,
    Connecting,
    Connected,
    Disconnecting,
}

impl LinkState {
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Disconnected => "disconnected",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnecting => "disconnecting",
        }
    }
}

/// What the link reports to its shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Client: UA received for our SNRM; server: SNRM received and UA queued.
    Connected(Parameters),
    /// A complete APDU, segments reassembled, LLC header removed.
    Apdu(Vec<u8>),
    /// The data of a UI frame, LLC header removed.
    Ui(Vec<u8>),
    Disconnected,
    /// The peer answered DM or FRMR where it should not.
    Refused(String),
    /// A timeout fired and the link re-sent (attempt number, from 1).
    Retransmit(u32),
    /// Retries exhausted (or inactivity); the link is now disconnected.
    LinkLost(String),
    /// A frame was dropped.
    FrameError(String),
    /// A segmented APDU grew past the link's reassembly limit: its segments
    /// are acknowledged and dropped up to the last one. `received` counts the
    /// APDU bytes seen so far (LLC header excluded), `limit` is the limit.
    ApduTooLong {
        received: usize,
        limit: usize,
    },
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub role: Role,
    /// The client address (one byte on the wire).
    pub client: Address,
    pub server: Address,
    /// Our own proposal / limits, from our point of view.
    pub params: Parameters,
    pub response_timeout: f64,
    pub max_retries: u32,
    pub inactivity_timeout: Option<f64>,
    /// Longest APDU (LLC header excluded) reassembled from segments, I or UI
    /// frames; clamped to 1..=[`MAX_REASSEMBLY`]. A client sets it to the max
    /// receive PDU size it proposed.
    pub max_reassembly: usize,
}

#[derive(Debug, Clone)]
struct Segment {
    info: Vec<u8>,
    segmented: bool,
}

#[derive(Debug, Clone)]
struct Sent {
    ns: u8,
    seg: Segment,
}

/// The last poll the client sent, to repeat on timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Snrm,
    Disc,
    IFrames,
    Rr,
}

#[derive(Debug, Clone)]
pub struct Link {
    cfg: LinkConfig,
    state: LinkState,
    negotiated: Parameters,
    framer: Framer,
    events: VecDeque<Event>,
    out: Vec<u8>,
    vs: u8,
    vr: u8,
    unacked: VecDeque<Sent>,
    queue: VecDeque<Segment>,
    rx_buf: Vec<u8>,
    rx_partial: bool,
    /// Skipping the remaining segments of an over-long APDU.
    rx_discarding: bool,
    /// Segmented UI frames (e.g. a meter's push split over several frames).
    ui_buf: Vec<u8>,
    /// Skipping the remaining segments of over-long UI data.
    ui_discarding: bool,
    /// Client: the poll awaiting its final response.
    awaiting: Option<Poll>,
    deadline: Option<f64>,
    retries: u32,
    /// Client: an out-of-sequence frame arrived; poll with RR for a resend.
    need_poll: bool,
    peer_busy: bool,
    /// Server: polled and not yet answered.
    polled: bool,
    /// Server: a complete APDU was delivered; its answer comes from `send_apdu`.
    owes_response: bool,
    /// Server: the client of the current connection.
    peer_client: Address,
    last_activity: f64,
}

/// The hard maximum (and the usual setting) of `LinkConfig::max_reassembly`.
pub const MAX_REASSEMBLY: usize = 1 << 20;

/// Bytes of the LLC header that start the information of a (first) segment.
const LLC_LEN: usize = 3;

fn link_err(field: &'static str, msg: &'static str) -> Error {
    Error::new(Layer::Hdlc, field, 0, ErrorKind::Other(msg.to_string()))
}

impl Link {
    pub fn new(cfg: LinkConfig) -> Link {
        let params = cfg.params.clamped();
        let peer_client = cfg.client;
        let max_reassembly = cfg.max_reassembly.clamp(1, MAX_REASSEMBLY);
        Link {
            cfg: LinkConfig { params, max_reassembly, ..cfg },
            state: LinkState::Disconnected,
            negotiated: params,
            framer: Framer::new(2047),
            events: VecDeque::new(),
            out: Vec::new(),
            vs: 0,
            vr: 0,
            unacked: VecDeque::new(),
            queue: VecDeque::new(),
            rx_buf: Vec::new(),
            rx_partial: false,
            rx_discarding: false,
            ui_buf: Vec::new(),
            ui_discarding: false,
            awaiting: None,
            deadline: None,
            retries: 0,
            need_poll: false,
            peer_busy: false,
            polled: false,
            owes_response: false,
            peer_client,
            last_activity: 0.0,
        }
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// The negotiated parameters once connected, our own before.
    pub fn parameters(&self) -> Parameters {
        self.negotiated
    }

    /// The reassembly limit now in force (APDU bytes, LLC header excluded).
    pub fn max_reassembly(&self) -> usize {
        self.cfg.max_reassembly
    }

    /// Change the reassembly limit (clamped to 1..=[`MAX_REASSEMBLY`]); it
    /// applies from the next segment on.
    pub fn set_max_reassembly(&mut self, limit: usize) {
        self.cfg.max_reassembly = limit.clamp(1, MAX_REASSEMBLY);
    }

    /// Whether `buffered` bytes plus a segment of `more` exceed the limit
    /// (the LLC header of the first segment does not count).
    fn over_limit(&self, buffered: usize, more: usize) -> bool {
        (buffered + more).saturating_sub(LLC_LEN) > self.cfg.max_reassembly
    }

    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn data_to_send(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn reset(&mut self, state: LinkState) {
        self.state = state;
        self.vs = 0;
        self.vr = 0;
        self.unacked.clear();
        self.queue.clear();
        self.rx_buf.clear();
        self.rx_partial = false;
        self.rx_discarding = false;
        self.ui_buf.clear();
        self.ui_discarding = false;
        self.awaiting = None;
        self.deadline = None;
        self.retries = 0;
        self.need_poll = false;
        self.peer_busy = false;
        self.polled = false;
        self.owes_response = false;
    }

    /// Client: queue SNRM with our parameters.
    pub fn connect(&mut self, now: f64) -> Result<()> {
        if self.cfg.role != Role::Client {
            return Err(link_err("role", "connect() is for the client role"));
        }
        if matches!(self.state, LinkState::Connected | LinkState::Connecting) {
            return Err(link_err("link state", "already connected or connecting"));
        }
        self.reset(LinkState::Connecting);
        self.last_activity = now;
        self.send_unnumbered(FrameKind::SNRM, self.cfg.params.encode());
        self.arm(Poll::Snrm, now);
        Ok(())
    }

    /// Client: queue DISC.
    pub fn disconnect(&mut self, now: f64) -> Result<()> {
        if self.cfg.role != Role::Client {
            return Err(link_err("role", "disconnect() is for the client role"));
        }
        if self.state == LinkState::Disconnected {
            return Err(link_err("link state", "not connected"));
        }
        self.reset(LinkState::Disconnecting);
        self.send_unnumbered(FrameKind::DISC, Vec::new());
        self.arm(Poll::Disc, now);
        Ok(())
    }

    /// Queue an APDU: add the LLC header and segment it to the negotiated length.
    pub fn send_apdu(&mut self, apdu: &[u8], now: f64) -> Result<()> {
        if self.state != LinkState::Connected {
            return Err(link_err("link state", "send_apdu() needs a connected link"));
        }
        let llc = if self.cfg.role == Role::Client { LLC_REQUEST } else { LLC_RESPONSE };
        let mut data = Vec::with_capacity(apdu.len() + 3);
        data.extend_from_slice(&llc);
        data.extend_from_slice(apdu);
        let max = self.negotiated.max_info_tx.max(1) as usize;
        let n = data.len().div_ceil(max);
        for (i, chunk) in data.chunks(max).enumerate() {
            self.queue.push_back(Segment { info: chunk.to_vec(), segmented: i + 1 < n });
        }
        self.last_activity = now;
        self.owes_response = false;
        match self.cfg.role {
            Role::Client if self.awaiting.is_none() => self.client_turn(now),
            Role::Server if self.polled => self.server_answer(true),
            _ => {}
        }
        Ok(())
    }

    /// Send `data` in one UI frame (LLC header added, P/F set), in any state:
    /// unnumbered information, e.g. a server's push. It must fit the
    /// information field length (the negotiated one once connected).
    pub fn send_ui(&mut self, data: &[u8]) -> Result<()> {
        let llc = if self.cfg.role == Role::Client { LLC_REQUEST } else { LLC_RESPONSE };
        let limit = self.negotiated.max_info_tx as usize;
        let length = data.len() + llc.len();
        if length > limit {
            return Err(Error::new(Layer::Hdlc, "information field", 0, ErrorKind::TooLong { length, limit }));
        }
        let mut info = llc.to_vec();
        info.extend_from_slice(data);
        self.send_unnumbered(FrameKind::UI, info);
        Ok(())
    }

    pub fn receive_data(&mut self, data: &[u8], now: f64) {
        self.framer.feed(data);
        while let Some(frame) = self.framer.next_frame() {
            for msg in self.framer.take_errors() {
                self.events.push_back(Event::FrameError(msg));
            }
            self.on_frame(frame, now);
        }
        for msg in self.framer.take_errors() {
            self.events.push_back(Event::FrameError(msg));
        }
    }

    pub fn next_deadline(&self) -> Option<f64> {
        let idle = match (self.state, self.cfg.inactivity_timeout) {
            (LinkState::Connected, Some(t)) => Some(self.last_activity + t),
            _ => None,
        };
        match (self.deadline, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: f64) {
        if let (Some(d), Some(poll)) = (self.deadline, self.awaiting) {
            if now >= d {
                self.retries += 1;
                if self.retries > self.cfg.max_retries {
                    let what = format!("no response after {} retries", self.cfg.max_retries);
                    self.lose(what);
                    return;
                }
                self.events.push_back(Event::Retransmit(self.retries));
                match poll {
                    Poll::Snrm => self.send_unnumbered(FrameKind::SNRM, self.cfg.params.encode()),
                    Poll::Disc => self.send_unnumbered(FrameKind::DISC, Vec::new()),
                    Poll::IFrames if !self.peer_busy => self.send_burst(),
                    Poll::IFrames | Poll::Rr => self.send_rr(FrameKind::RR, true),
                }
                self.deadline = Some(now + self.cfg.response_timeout);
            }
        }
        if let (LinkState::Connected, Some(t)) = (self.state, self.cfg.inactivity_timeout) {
            if now >= self.last_activity + t {
                self.lose(format!("inactivity timeout ({t} s)"));
            }
        }
    }

    fn lose(&mut self, why: String) {
        self.reset(LinkState::Disconnected);
        self.events.push_back(Event::LinkLost(why));
    }

    fn arm(&mut self, poll: Poll, now: f64) {
        self.awaiting = Some(poll);
        self.deadline = Some(now + self.cfg.response_timeout);
    }

    /// (destination, source) of the frames we send.
    fn addresses(&self) -> (Address, Address) {
        match self.cfg.role {
            Role::Client => (self.cfg.server, self.cfg.client),
            Role::Server => (self.peer_client, self.cfg.server),
        }
    }

    fn emit(&mut self, frame: Frame) {
        if let Err(e) = frame.encode_into(&mut self.out) {
            self.events.push_back(Event::FrameError(format!("cannot send: {e}")));
        }
    }

    fn send_unnumbered(&mut self, kind: FrameKind, info: Vec<u8>) {
        let (dest, src) = self.addresses();
        let mut f = Frame::new(kind, dest, src, true);
        f.info = info;
        self.emit(f);
    }

    fn send_rr(&mut self, kind: FrameKind, pf: bool) {
        let (dest, src) = self.addresses();
        let mut f = Frame::new(kind, dest, src, pf);
        f.control.recv_seq = Some(self.vr);
        self.emit(f);
        if self.cfg.role == Role::Client {
            self.awaiting = Some(Poll::Rr);
        }
    }

    /// Send (or resend) the unacknowledged frames and new ones up to the
    /// window, the last with P/F set.
    fn send_burst(&mut self) {
        let window = self.negotiated.window_tx.clamp(1, 7) as usize;
        while self.unacked.len() < window {
            let Some(seg) = self.queue.pop_front() else { break };
            self.unacked.push_back(Sent { ns: self.vs, seg });
            self.vs = (self.vs + 1) % 8;
        }
        let (dest, src) = self.addresses();
        let n = self.unacked.len();
        let frames: Vec<Frame> = self
            .unacked
            .iter()
            .enumerate()
            .map(|(i, s)| Frame {
                segmented: s.seg.segmented,
                dest,
                src,
                control: Control {
                    kind: FrameKind::I,
                    send_seq: Some(s.ns),
                    recv_seq: Some(self.vr),
                    poll_final: i + 1 == n,
                },
                info: s.seg.info.clone(),
            })
            .collect();
        for f in frames {
            self.emit(f);
        }
        self.polled = false;
    }

    /// Acknowledge our frames up to N(R); false when N(R) is out of range.
    fn ack(&mut self, nr: u8) -> bool {
        let first = self.unacked.front().map_or(self.vs, |s| s.ns);
        let k = ((nr & 7) + 8 - first) % 8;
        if k as usize > self.unacked.len() {
            return false;
        }
        for _ in 0..k {
            self.unacked.pop_front();
        }
        true
    }

    fn strip_llc(&self, mut data: Vec<u8>) -> Vec<u8> {
        let expected = if self.cfg.role == Role::Client { LLC_RESPONSE } else { LLC_REQUEST };
        if data.starts_with(&expected) || data.starts_with(&LLC_REQUEST) || data.starts_with(&LLC_RESPONSE) {
            data.drain(..3);
        }
        data
    }

    fn frame_error(&mut self, msg: String) {
        self.events.push_back(Event::FrameError(msg));
    }

    fn addressed_to_us(&self, f: &Frame) -> bool {
        let matches = |want: &Address, got: &Address| {
            want.upper == got.upper && (want.lower.is_none() || got.lower.is_none() || want.lower == got.lower)
        };
        match self.cfg.role {
            Role::Client => f.dest.upper == self.cfg.client.upper && matches(&self.cfg.server, &f.src),
            Role::Server => matches(&self.cfg.server, &f.dest),
        }
    }

    fn on_frame(&mut self, f: Frame, now: f64) {
        if !self.addressed_to_us(&f) {
            let msg = format!(
                "{} frame for address {}/{:?} from {}/{:?} dropped (not this link)",
                f.kind().name(),
                f.dest.upper,
                f.dest.lower,
                f.src.upper,
                f.src.lower
            );
            return self.frame_error(msg);
        }
        match self.cfg.role {
            Role::Client => self.client_frame(f, now),
            Role::Server => self.server_frame(f, now),
        }
    }

    /// Take a UI frame's information: segments (S bit set) are collected until
    /// the last one, then the whole is delivered as one `Ui` event. Real meters
    /// push long data-notifications this way (e.g. Iskra AM550).
    fn take_ui(&mut self, f: &mut Frame) {
        if self.ui_discarding || self.over_limit(self.ui_buf.len(), f.info.len()) {
            if !self.ui_discarding {
                let limit = self.cfg.max_reassembly;
                self.frame_error(format!("segmented UI data longer than {limit} bytes dropped"));
            }
            self.ui_buf.clear();
            self.ui_discarding = f.segmented;
            return;
        }
        self.ui_buf.append(&mut f.info);
        if f.segmented {
            return;
        }
        let whole = std::mem::take(&mut self.ui_buf);
        let data = self.strip_llc(whole);
        self.events.push_back(Event::Ui(data));
    }

    /// Take an I frame's information into the reassembly buffer: None when
    /// out of sequence (not taken), else whether a complete APDU was delivered.
    fn take_i(&mut self, f: &mut Frame) -> Option<bool> {
        if f.control.send_seq != Some(self.vr) {
            return None;
        }
        self.vr = (self.vr + 1) % 8;
        self.rx_partial = f.segmented;
        if self.rx_discarding || self.over_limit(self.rx_buf.len(), f.info.len()) {
            // Still acknowledged (the peer must not resend it), but the APDU is dropped.
            if !self.rx_discarding {
                let received = (self.rx_buf.len() + f.info.len()).saturating_sub(LLC_LEN);
                let limit = self.cfg.max_reassembly;
                self.events.push_back(Event::ApduTooLong { received, limit });
            }
            self.rx_buf.clear();
            self.rx_discarding = f.segmented;
            return Some(false);
        }
        self.rx_buf.append(&mut f.info);
        if f.segmented {
            return Some(false);
        }
        let buf = std::mem::take(&mut self.rx_buf);
        let data = self.strip_llc(buf);
        self.events.push_back(Event::Apdu(data));
        Some(true)
    }
}
