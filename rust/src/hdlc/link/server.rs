//! The server (secondary station) side of the link: SNRM/UA negotiation,
//! DISC, DM when disconnected, and answering each poll with one burst.

use super::{Event, Link, LinkState};
use crate::hdlc::address::Address;
use crate::hdlc::frame::{Frame, FrameKind};
use crate::hdlc::params::Parameters;

impl Link {
    /// Server: answer a poll. With nothing to send while the answer to a
    /// just-delivered APDU is pending, hold the poll (`send_apdu` answers it);
    /// polled again before that (`fresh` false), say RNR so the client asks later.
    pub(super) fn server_answer(&mut self, fresh: bool) {
        if !self.unacked.is_empty() || !self.queue.is_empty() {
            self.send_burst();
        } else if !self.owes_response {
            self.send_rr(FrameKind::RR, true);
            self.polled = false;
        } else if !fresh {
            self.send_rr(FrameKind::RNR, true);
            self.polled = false;
        }
    }

    pub(super) fn server_frame(&mut self, mut f: Frame, now: f64) {
        let pf = f.control.poll_final;
        if self.state == LinkState::Connected && f.kind() != FrameKind::SNRM && f.src.upper != self.peer_client.upper {
            return self.frame_error(format!(
                "{} from client {} dropped (connected to another client)",
                f.kind().name(),
                f.src.upper
            ));
        }
        match (f.kind(), self.state) {
            (FrameKind::SNRM, _) => match Parameters::decode(&f.info) {
                Ok(peer) => {
                    self.negotiated = self.cfg.params.negotiate(&peer);
                    self.reset(LinkState::Connected);
                    self.peer_client = Address { upper: f.src.upper, lower: None, size: 1 };
                    self.last_activity = now;
                    self.send_unnumbered(FrameKind::UA, self.negotiated.encode());
                    self.events.push_back(Event::Connected(self.negotiated));
                }
                Err(e) => {
                    self.peer_client = Address { upper: f.src.upper, lower: None, size: 1 };
                    self.send_unnumbered(FrameKind::FRMR, Vec::new());
                    self.frame_error(format!("SNRM rejected: {e}"));
                }
            },
            (FrameKind::DISC, LinkState::Connected) => {
                self.send_unnumbered(FrameKind::UA, Vec::new());
                self.reset(LinkState::Disconnected);
                self.events.push_back(Event::Disconnected);
            }
            (FrameKind::DISC, _) => {
                self.peer_client = Address { upper: f.src.upper, lower: None, size: 1 };
                self.send_unnumbered(FrameKind::DM, Vec::new());
            }
            (FrameKind::UI, _) => self.take_ui(&mut f),
            (FrameKind::I | FrameKind::RR | FrameKind::RNR, LinkState::Connected) => {
                if !self.ack(f.control.recv_seq.unwrap_or(0)) {
                    return self.frame_error(format!("{} with N(R) out of range dropped", f.kind().name()));
                }
                self.last_activity = now;
                self.peer_busy = f.kind() == FrameKind::RNR;
                // A repeated I frame (our answer was lost) or one after a gap is
                // not delivered; the poll it carries is answered all the same.
                let taken = if f.kind() == FrameKind::I { self.take_i(&mut f) } else { None };
                let fresh = taken.is_some();
                if taken == Some(true) {
                    self.owes_response = true;
                }
                if pf {
                    self.polled = true;
                    if !self.peer_busy {
                        self.server_answer(fresh);
                    } else {
                        self.send_rr(FrameKind::RR, true);
                        self.polled = false;
                    }
                }
            }
            (FrameKind::I | FrameKind::RR | FrameKind::RNR, _) => {
                self.peer_client = Address { upper: f.src.upper, lower: None, size: 1 };
                if pf {
                    self.send_unnumbered(FrameKind::DM, Vec::new());
                }
                self.frame_error(format!("{} while disconnected: answered DM", f.kind().name()));
            }
            (kind, state) => self.frame_error(format!("unexpected {} while {}", kind.name(), state.name())),
        }
    }
}
