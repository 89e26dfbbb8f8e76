//! What arrives at the client: size and queue bounds, AARE/RLRE, GBT
//! (acknowledgements of our blocks, reassembly of answers), deciphering and
//! the plain-APDU rule, matching answers to requests by invoke id, and
//! exception-responses with their counter hints.

use super::cipher::is_ciphered;
use super::client::{proto, security, ClientAssociation, ClientState};
use super::gbt;
use super::types::{ClientEvent, RequestError, RequestId};
use crate::apdu::{self, Apdu};
use crate::error::Error;

/// The field of the `AssociationFailed` error when the AARQ is answered with an
/// exception-response (e.g. service-not-allowed: the meter still holds an association).
pub const EXCEPTION_FOR_AARQ: &str = "exception-response to the AARQ";

impl ClientAssociation {
    /// One whole APDU from the transport.
    pub fn receive_data(&mut self, data: &[u8], now: f64) {
        self.stats.apdus_received += 1;
        if self.events.len() >= self.cfg.max_events {
            self.stats.dropped_queue_full += 1;
            return;
        }
        let limit = self.cfg.receive_limit();
        if data.len() > limit {
            let e = super::blocks::too_long("received APDU (our max receive PDU size)", data.len(), limit);
            self.gbt_rx.reset();
            return self.fail_oldest(RequestError::Protocol(e));
        }
        match data.first().copied() {
            None => self.stray(proto("APDU", "empty APDU".into())),
            Some(apdu::association::TAG_AARE) if self.state != ClientState::AwaitingAare => {
                self.stray(proto("AARE", format!("an AARE while {:?}", self.state)))
            }
            Some(apdu::association::TAG_AARE) => match apdu::decode_tolerant(data, self.tolerance) {
                Ok(apdu::Decoded { value: Apdu::Aare(a), quirks }) => {
                    let taken = quirks.iter().map(|q| q.quirk).collect();
                    self.took(quirks);
                    self.on_aare(a, taken, now)
                }
                Ok(_) => self.association_failed(proto("AARE", "not an AARE".into())),
                Err(e) => self.association_failed(e),
            },
            // A meter still holding an association may answer the AARQ so.
            Some(apdu::errors::TAG_EXCEPTION_RESPONSE) if self.state == ClientState::AwaitingAare => {
                match apdu::decode(data) {
                    Ok(Apdu::ExceptionResponse(x)) => {
                        use apdu::errors::{SERVICE_ERRORS, STATE_ERRORS};
                        use apdu::results::name_of;
                        let msg = format!(
                            "an exception-response ({}, {}) instead of the AARE",
                            name_of(STATE_ERRORS, x.state_error).unwrap_or("state-error ?"),
                            name_of(SERVICE_ERRORS, x.service_error).unwrap_or("service-error ?"),
                        );
                        self.association_failed(proto(EXCEPTION_FOR_AARQ, msg))
                    }
                    Ok(_) => self.association_failed(proto("AARE", "not an AARE".into())),
                    Err(e) => self.association_failed(e),
                }
            }
            Some(apdu::association::TAG_RLRE) if self.state == ClientState::Releasing => {
                self.clear_association();
                self.state = ClientState::Idle;
                self.push_event(ClientEvent::Released { confirmed: true });
            }
            Some(t @ apdu::association::TAG_AARQ..=apdu::association::TAG_RLRE) => {
                self.stray(proto("APDU", format!("an ACSE APDU (tag 0x{t:02x}) while {:?}", self.state)))
            }
            Some(apdu::block::TAG_GENERAL_BLOCK_TRANSFER) if self.in_association() => self.on_gbt(data, now),
            Some(_) if self.in_association() => self.on_apdu(data, now, false),
            Some(t) => self.stray(proto("APDU", format!("tag 0x{t:02x} while {:?}", self.state))),
        }
    }

    pub(super) fn in_association(&self) -> bool {
        matches!(self.state, ClientState::AwaitingHls | ClientState::Associated | ClientState::Releasing)
    }

    /// Report the quirks a decode took.
    pub(super) fn took(&mut self, quirks: Vec<apdu::Tolerated>) {
        for q in quirks {
            self.push_event(ClientEvent::Quirk(q));
        }
    }

    pub(super) fn stray(&mut self, e: Error) {
        self.stats.refused += 1;
        self.push_event(ClientEvent::ProtocolError(e));
    }

    pub(super) fn on_gbt(&mut self, data: &[u8], now: f64) {
        let b = match gbt::decode(data) {
            Ok(b) => b,
            Err(e) => return self.fail_oldest(RequestError::Protocol(e)),
        };
        if b.window > 0 {
            self.peer_window = b.window;
        }
        let (ours, taken) = (self.cfg.gbt_window, self.gbt_rx.last_taken);
        if let Some((rid, s)) = self.gbt_tx.as_mut() {
            let rid = *rid;
            if b.block_data.is_empty() && !self.gbt_rx.active() {
                // An acknowledgement (some peers set last-block on it: it carries no data).
                let more = s.on_ack(b.block_number_ack, self.peer_window, ours, taken);
                for apdu in more {
                    self.push_out(apdu);
                }
                self.touch(Some(rid), now);
                return;
            }
            if !s.all_sent {
                let msg = format!("a data block ({}) while our request is still going out", b.block_number);
                return self.fail(rid, RequestError::Protocol(proto("general-block-transfer", msg)));
            }
            self.gbt_tx = None;
        }
        if !self.reqs.iter().any(|r| r.invoke.is_some()) {
            let msg = format!("block {} but no request is waiting for an answer", b.block_number);
            return self.stray(proto("general-block-transfer", msg));
        }
        match self.gbt_rx.on_block(&b, self.cfg.max_block_transfer) {
            Ok(gbt::Rx::Nothing) => self.touch(None, now),
            Ok(gbt::Rx::Ack(n)) => {
                let ack = self.gbt_rx.ack_apdu(n, ours);
                self.push_out(ack);
                self.touch(None, now);
            }
            Ok(gbt::Rx::Complete(apdu)) => {
                self.touch(None, now);
                if apdu.first() == Some(&apdu::block::TAG_GENERAL_BLOCK_TRANSFER) {
                    let e = proto(
                        "general-block-transfer",
                        "a general-block-transfer inside a general-block-transfer".into(),
                    );
                    return self.fail_oldest(RequestError::Protocol(e));
                }
                self.on_apdu(&apdu, now, true);
            }
            Err(e) => self.fail_oldest(RequestError::Protocol(e)),
        }
    }

    /// An answer arrived for `req` (or for every request in flight): the
    /// silence timer starts again.
    pub(super) fn touch(&mut self, req: Option<RequestId>, now: f64) {
        let t = self.cfg.response_timeout;
        for r in self.reqs.iter_mut().filter(|r| r.invoke.is_some() && req.map_or(true, |id| id == r.id)) {
            r.deadline = now + t;
        }
    }

    /// A whole xDLMS APDU (`via_gbt`: reassembled from GBT) of the association.
    pub(super) fn on_apdu(&mut self, data: &[u8], now: f64, via_gbt: bool) {
        let tag = data.first().copied().unwrap_or(0);
        if matches!(tag, 0x0F | 0xC2 | 0xCA | 0xD2 | 0x18 | 0x38 | 0x58) {
            // data-notification, event-notification, information-report (plain, glo-, ded-)
            return self.push_event(ClientEvent::Unsolicited(data.to_vec()));
        }
        let mut authenticated = false;
        let plain: Vec<u8>;
        let bytes: &[u8] = if is_ciphered(tag) {
            let sc = self.cfg.ciphering.map_or(0x30, |c| c.security_control);
            let result = match self.crypto.as_mut() {
                Some(c) if self.cfg.ciphering.is_some() => c.unprotect(data, sc),
                _ => {
                    let e = proto("APDU", format!("a ciphered APDU (tag 0x{tag:02x}) in a plain association"));
                    return self.fail_oldest(RequestError::Protocol(e));
                }
            };
            match result {
                Ok((p, form)) => {
                    plain = p;
                    authenticated = form.security_control & 0x10 != 0;
                    &plain
                }
                Err(r) => return self.fail_oldest(RequestError::Security(r.error())),
            }
        } else if self.ciphered()
            && !(tag == apdu::errors::TAG_EXCEPTION_RESPONSE && matches!(data.len(), 3 | 7) && !via_gbt)
        {
            let n = data.len();
            let msg = if tag == apdu::errors::TAG_EXCEPTION_RESPONSE && !via_gbt {
                format!(
                    "an unciphered exception-response of {n} bytes in a ciphered association is refused \
                     (3 bytes, or 7 with an invocation counter)"
                )
            } else {
                let how = if via_gbt { " reassembled from general-block-transfer" } else { "" };
                format!(
                    "an unciphered {tag:02x} APDU{how} in a ciphered association is refused ({n} bytes; \
                     only a plain exception-response of 3 or 7 bytes is read)"
                )
            };
            let e = security("APDU", msg);
            return self.fail_oldest(RequestError::Security(e));
        } else {
            data
        };
        // The plaintext of a ciphered APDU is decoded strictly: no quirk inside security.
        let tolerance = if is_ciphered(tag) { apdu::Tolerance::NONE } else { self.tolerance };
        let decoded = match apdu::decode_tolerant(bytes, tolerance) {
            Ok(d) => {
                self.took(d.quirks);
                d.value
            }
            Err(e) => {
                let head: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
                let e = proto("answer", format!("undecodable APDU {head}: {e}"));
                return self.fail_oldest(RequestError::Protocol(e));
            }
        };
        let invoke = match &decoded {
            Apdu::GetResponse(r) => Some(get_invoke(r)),
            Apdu::SetResponse(r) => Some(set_invoke(r)),
            Apdu::ActionResponse(r) => Some(action_invoke(r)),
            Apdu::ExceptionResponse(x) => return self.on_exception(x.clone()),
            Apdu::ConfirmedServiceError(e) => {
                let err = RequestError::ConfirmedServiceError { service: e.service, error: e.error, value: e.value };
                return self.fail_oldest(err);
            }
            Apdu::ReadResponse(_) | Apdu::WriteResponse(_) => return self.sn_answer(decoded, authenticated, now),
            Apdu::DataNotification(_) | Apdu::EventNotification(_) | Apdu::InformationReport(_) => {
                return self.push_event(ClientEvent::Unsolicited(data.to_vec()));
            }
            _ => None,
        };
        let Some(invoke) = invoke else {
            return self.stray(proto("APDU", format!("an unexpected {}", decoded.kind())));
        };
        let id = invoke & 0x0F;
        let Some(idx) = self.reqs.iter().position(|r| r.invoke.is_some_and(|i| i & 0x0F == id)) else {
            if self.abandoned & (1 << id) != 0 {
                self.abandoned &= !(1 << id);
                self.stats.late_answers_dropped += 1;
                return self.push_event(ClientEvent::LateAnswerDropped { invoke_id: id });
            }
            let e = proto("invoke-id", format!("a {} with invoke id {id}, but no request has that id", decoded.kind()));
            // An answer while a request waits, with an id it never had: the
            // meter broke the invoke-id rule for that request.
            return match self.oldest() {
                Some(_) => self.fail_oldest(RequestError::Protocol(e)),
                None => self.stray(e),
            };
        };
        if authenticated {
            if let Some(c) = self.reqs[idx].counter {
                self.confirm(c);
            }
        }
        let rid = self.reqs[idx].id;
        self.touch(Some(rid), now);
        self.on_answer(idx, decoded, now);
    }

    pub(super) fn on_exception(&mut self, x: apdu::ExceptionResponse) {
        let Some(idx) = self.oldest() else {
            return self.stray(proto("exception-response", "an exception-response but no request is waiting".into()));
        };
        let id = self.reqs[idx].id;
        if let (Some(expected), true) = (x.invocation_counter, self.ciphered()) {
            let upcoming = self.counters.last_used().map_or(self.first_granted.unwrap_or(0), |l| l.saturating_add(1));
            let base = self.confirmed.map_or(self.first_granted.unwrap_or(upcoming), |c| c.saturating_add(1));
            let jump = self.cfg.max_counter_hint_jump;
            if expected <= upcoming {
                let why =
                    format!("counter hint {expected} ignored: not ahead of the next counter we would use ({upcoming})");
                self.stray(security("exception-response invocation counter", why));
            } else if expected.saturating_sub(base) > jump {
                let why = format!(
                    "counter hint {expected} is {} ahead of our confirmed position {base} (at most {jump} followed): not surfaced \
                     (an unauthenticated answer never moves the counter that far)",
                    expected.saturating_sub(base)
                );
                self.stray(security("exception-response invocation counter", why));
            } else {
                self.push_event(ClientEvent::CounterHint { id, expected, confirmed_base: base });
            }
        }
        let err = RequestError::Exception {
            state_error: x.state_error,
            service_error: x.service_error,
            invocation_counter: x.invocation_counter,
        };
        self.fail(id, err);
    }

    /// The oldest request in flight.
    pub(super) fn oldest(&self) -> Option<usize> {
        self.reqs.iter().position(|r| r.invoke.is_some())
    }

    /// End the oldest request in flight with `err` (a protocol event when none).
    pub(super) fn fail_oldest(&mut self, err: RequestError) {
        match self.oldest() {
            Some(idx) => {
                let id = self.reqs[idx].id;
                self.fail(id, err);
            }
            None => {
                let e = match err {
                    RequestError::Protocol(e) | RequestError::Security(e) => e,
                    other => proto("APDU", other.to_string()),
                };
                self.stray(e);
            }
        }
    }
}

fn get_invoke(r: &apdu::GetResponse) -> u8 {
    match r {
        apdu::GetResponse::Normal { invoke_id_and_priority: i, .. }
        | apdu::GetResponse::WithDatablock { invoke_id_and_priority: i, .. }
        | apdu::GetResponse::WithList { invoke_id_and_priority: i, .. } => *i,
    }
}

fn set_invoke(r: &apdu::SetResponse) -> u8 {
    match r {
        apdu::SetResponse::Normal { invoke_id_and_priority: i, .. }
        | apdu::SetResponse::Datablock { invoke_id_and_priority: i, .. }
        | apdu::SetResponse::LastDatablock { invoke_id_and_priority: i, .. }
        | apdu::SetResponse::LastDatablockWithList { invoke_id_and_priority: i, .. }
        | apdu::SetResponse::WithList { invoke_id_and_priority: i, .. } => *i,
    }
}

fn action_invoke(r: &apdu::ActionResponse) -> u8 {
    match r {
        apdu::ActionResponse::Normal { invoke_id_and_priority: i, .. }
        | apdu::ActionResponse::WithPblock { invoke_id_and_priority: i, .. }
        | apdu::ActionResponse::WithList { invoke_id_and_priority: i, .. }
        | apdu::ActionResponse::NextPblock { invoke_id_and_priority: i, .. } => *i,
    }
}
