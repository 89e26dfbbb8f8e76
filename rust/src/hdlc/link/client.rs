//! The client (primary station) side of the link: UA/DM/FRMR handling,
//! I/RR/RNR reception, and what to send when the server passes the turn back.

use super::{Event, Link, LinkState, Poll};
use crate::hdlc::frame::{Frame, FrameKind};
use crate::hdlc::params::Parameters;

impl Link {
    /// Client: our turn to send after a final response (or when idle).
    pub(super) fn client_turn(&mut self, now: f64) {
        if self.state != LinkState::Connected {
            return;
        }
        if self.peer_busy {
            // RNR: the server is busy; poll again with RR when the timer fires.
            self.arm(Poll::Rr, now);
        } else if !self.unacked.is_empty() || !self.queue.is_empty() {
            self.send_burst();
            self.arm(Poll::IFrames, now);
        } else if self.rx_partial || self.need_poll {
            self.send_rr(FrameKind::RR, true);
            self.arm(Poll::Rr, now);
        } else {
            self.awaiting = None;
            self.deadline = None;
        }
    }

    pub(super) fn client_frame(&mut self, mut f: Frame, now: f64) {
        let pf = f.control.poll_final;
        match (f.kind(), self.state) {
            (FrameKind::UA, LinkState::Connecting) => match Parameters::decode(&f.info) {
                Ok(peer) => {
                    self.negotiated = self.cfg.params.negotiate(&peer);
                    self.reset(LinkState::Connected);
                    self.last_activity = now;
                    self.events.push_back(Event::Connected(self.negotiated));
                }
                Err(e) => {
                    self.reset(LinkState::Disconnected);
                    self.events.push_back(Event::Refused(format!("UA with bad parameters: {e}")));
                }
            },
            (FrameKind::UA | FrameKind::DM, LinkState::Disconnecting) => {
                self.reset(LinkState::Disconnected);
                self.events.push_back(Event::Disconnected);
            }
            (FrameKind::DM, LinkState::Connecting | LinkState::Connected) => {
                let when = if self.state == LinkState::Connecting { "to SNRM" } else { "while connected" };
                self.reset(LinkState::Disconnected);
                self.events.push_back(Event::Refused(format!("DM {when}: the server is disconnected")));
            }
            (FrameKind::FRMR, LinkState::Connecting | LinkState::Connected) => {
                let hex: String = f.info.iter().map(|b| format!("{b:02x}")).collect();
                self.reset(LinkState::Disconnected);
                self.events.push_back(Event::Refused(format!("FRMR (frame rejected) {hex}")));
            }
            (FrameKind::UI, _) => self.take_ui(&mut f),
            (FrameKind::I | FrameKind::RR | FrameKind::RNR, LinkState::Connected) => {
                if !self.ack(f.control.recv_seq.unwrap_or(0)) {
                    return self.frame_error(format!("{} with N(R) out of range dropped", f.kind().name()));
                }
                self.last_activity = now;
                self.peer_busy = f.kind() == FrameKind::RNR;
                if f.kind() == FrameKind::I {
                    // Out of sequence: poll with RR(V(R)) for a resend.
                    self.need_poll = self.take_i(&mut f).is_none();
                }
                if self.awaiting.is_some() {
                    self.deadline = Some(now + self.cfg.response_timeout);
                }
                if pf {
                    self.retries = 0;
                    self.awaiting = None;
                    self.client_turn(now);
                }
            }
            (kind, state) => self.frame_error(format!("unexpected {} while {}", kind.name(), state.name())),
        }
    }
}
