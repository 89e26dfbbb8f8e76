//! The server (meter) side: AARQ checks and the AARE, HLS-GMAC pass 3/4,
//! RLRQ/RLRE, deciphering and the refusals (exception-responses), the
//! outgoing pipeline. The services are in `server_req.rs`.

use std::collections::VecDeque;

use super::blocks::too_long;
use super::cipher::{is_ciphered, Counters, Crypto, Form, Refusal};
use super::config::{bits, AssociationConfig};
use super::gbt;
use super::server_req::{BlockIn, LongAnswer, SReq};
use super::types::{Agreement, ServerEvent, Stats};
use crate::apdu::{self, Apdu, ExceptionResponse};
use crate::error::{Error, ErrorKind, Layer, Result};

/// Where the server is in the association's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Idle,
    /// HLS-GMAC: the AARE went out, the client's f(StoC) is awaited.
    AwaitingHls,
    Associated,
}

pub(super) enum Pending {
    Plain(Vec<u8>),
    Cipher {
        plain: Vec<u8>,
        form: Form,
    },
    /// AARE/RLRE whose user-information is a glo-InitiateResponse.
    Acse {
        apdu: Box<Apdu>,
        initiate: Vec<u8>,
        security_control: u8,
    },
    /// The answer to reply_to_HLS_authentication: f(CtoS) takes a counter
    /// before the answer's own.
    Hls {
        invoke: u8,
        form: Option<Form>,
    },
}

// state-error / service-error of the exception-responses the server sends
pub(super) const SERVICE_NOT_ALLOWED: u8 = 1;
pub(super) const SERVICE_UNKNOWN: u8 = 2;
pub(super) const OPERATION_NOT_POSSIBLE: u8 = 1;
pub(super) const SERVICE_NOT_SUPPORTED: u8 = 2;
const PDU_TOO_LONG: u8 = 4;
const DECIPHERING_ERROR: u8 = 5;
const INVOCATION_COUNTER_ERROR: u8 = 6;

/// The server side of one association (per client SAP, per connection).
pub struct ServerAssociation {
    pub(super) cfg: AssociationConfig,
    pub(super) state: ServerState,
    pub(super) crypto: Option<Crypto>,
    pub(super) counters: Counters,
    pub(super) need_reported: bool,
    pub(super) agreement: Option<Agreement>,
    pub(super) events: VecDeque<ServerEvent>,
    pub(super) out: Vec<Vec<u8>>,
    pub(super) outbox: VecDeque<Pending>,
    pub(super) challenge: Option<Vec<u8>>,
    pub(super) stoc: Vec<u8>,
    pub(super) ctos: Vec<u8>,
    pub(super) reqs: Vec<SReq>,
    pub(super) next_id: u64,
    pub(super) long: Option<LongAnswer>,
    pub(super) incoming: Option<BlockIn>,
    pub(super) gbt_tx: Option<gbt::Sender>,
    pub(super) gbt_rx: gbt::Receiver,
    pub(super) peer_window: u8,
    pub(super) stats: Stats,
    /// The caller's persisted last counters per client system title.
    pub(super) known: Vec<([u8; 8], u32)>,
    /// Every AARQ is refused (rejected-permanent, no-reason-given) for this reason.
    pub(super) refusing: Option<String>,
    /// Short names served (SN referencing; `sn_server.rs`).
    pub(super) names: super::sn_names::ShortNames,
}

impl std::fmt::Debug for ServerAssociation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAssociation")
            .field("state", &self.state)
            .field("requests", &self.reqs.len())
            .field("counters_available", &self.counters.available())
            .finish_non_exhaustive()
    }
}

pub(super) fn proto(field: &'static str, msg: String) -> Error {
    Error::new(Layer::Apdu, field, 0, ErrorKind::Other(msg))
}

impl ServerAssociation {
    pub fn new(cfg: AssociationConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(ServerAssociation {
            cfg,
            state: ServerState::Idle,
            crypto: None,
            counters: Counters::default(),
            need_reported: false,
            agreement: None,
            events: VecDeque::new(),
            out: Vec::new(),
            outbox: VecDeque::new(),
            challenge: None,
            stoc: Vec::new(),
            ctos: Vec::new(),
            reqs: Vec::new(),
            next_id: 1,
            long: None,
            incoming: None,
            gbt_tx: None,
            gbt_rx: gbt::Receiver::default(),
            peer_window: 1,
            stats: Stats::default(),
            known: Vec::new(),
            refusing: None,
            names: super::sn_names::ShortNames::bootstrap(),
        })
    }

    pub fn state(&self) -> ServerState {
        self.state
    }
    pub fn agreement(&self) -> Option<&Agreement> {
        self.agreement.as_ref()
    }
    /// The client's system title of the current (or last) association.
    pub fn client_system_title(&self) -> Option<[u8; 8]> {
        self.crypto.as_ref().and_then(|c| c.peer_title)
    }
    /// The last authenticated invocation counter of the client (persist it).
    pub fn last_incoming_counter(&self) -> Option<u32> {
        self.crypto.as_ref().map_or(self.cfg.last_incoming_counter, |c| c.last_incoming)
    }
    pub fn last_outgoing_counter(&self) -> Option<u32> {
        self.counters.last_used()
    }
    pub fn counters_available(&self) -> u64 {
        self.counters.available()
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    pub fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
    pub fn data_to_send(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }
    /// The server keeps no timers (the client owns the response timeout).
    pub fn next_deadline(&self) -> Option<f64> {
        None
    }
    pub fn handle_timeout(&mut self, _now: f64) {}

    /// The last invocation counter persisted for client system title
    /// `title` (the caller's state): the next AARQ from that title, and every
    /// request after it, must carry a higher one.
    pub fn remember_peer_counter(&mut self, title: [u8; 8], last: u32) {
        super::cipher::remember(&mut self.known, title, last);
        if let Some(c) = self.crypto.as_mut() {
            c.set_known(&self.known);
        }
    }

    /// Refuse every AARQ from now on (rejected-permanent, no-reason-given),
    /// e.g. for a client SAP the server has no association for; `why` is
    /// what the `Refused` event says. Other APDUs get the exception-response
    /// of an APDU without an association.
    pub fn refuse_all(&mut self, why: &str) {
        self.refusing = Some(why.to_string());
        self.drop_association();
    }

    /// The server challenge (StoC, 8..=64 random bytes from the caller) for
    /// the next HLS-GMAC AARQ; each AARQ consumes it. Without one an HLS
    /// AARQ is refused (rejected-transient).
    pub fn set_challenge(&mut self, stoc: &[u8]) -> Result<()> {
        if !(8..=64).contains(&stoc.len()) {
            return Err(Error::invalid(
                Layer::Security,
                "challenge (StoC)",
                0,
                format!("{} bytes", stoc.len()),
                "8..=64 bytes",
            ));
        }
        self.challenge = Some(stoc.to_vec());
        Ok(())
    }

    /// Grant outgoing invocation counters (the rules of [`ClientAssociation::grant_counters`](super::ClientAssociation::grant_counters)).
    pub fn grant_counters(&mut self, first: u32, count: u32) -> Result<()> {
        self.counters.grant(first, count)?;
        self.need_reported = false;
        self.flush();
        Ok(())
    }

    pub(super) fn ciphered(&self) -> bool {
        self.cfg.ciphering.is_some()
    }

    pub(super) fn required(&self) -> u8 {
        self.cfg.ciphering.map_or(0, |c| c.security_control & 0x30)
    }

    /// The protection of our answer to a request received in `form`.
    pub(super) fn answer_form(&self, form: Option<Form>) -> Option<Form> {
        form.map(|f| Form { security_control: (f.security_control & 0x30) | self.required(), ..f })
    }

    pub(super) fn push_event(&mut self, e: ServerEvent) {
        self.events.push_back(e);
    }

    pub(super) fn conformance(&self) -> u32 {
        self.agreement.as_ref().map_or(0, |a| a.conformance)
    }

    /// The largest APDU the client takes.
    pub(super) fn send_limit(&self) -> usize {
        self.agreement.as_ref().map_or(0xFFFF, |a| usize::from(a.peer_max_pdu))
    }

    /// Queue an answer (ciphered in `form` when given).
    pub(super) fn send(&mut self, plain: Vec<u8>, form: Option<Form>) {
        match form {
            Some(form) => self.outbox.push_back(Pending::Cipher { plain, form }),
            None => self.outbox.push_back(Pending::Plain(plain)),
        }
        self.flush();
    }

    /// Refuse with an exception-response (plain, as the Python simulator and
    /// real meters do) and report why.
    pub(super) fn refuse(&mut self, state_error: u8, service_error: u8, counter: Option<u32>, why: Error) {
        self.stats.refused += 1;
        let x = ExceptionResponse { state_error, service_error, invocation_counter: counter };
        self.send(Apdu::ExceptionResponse(x).encode(), None);
        self.push_event(ServerEvent::ProtocolError(why));
    }

    pub(super) fn flush(&mut self) {
        while let Some(p) = self.outbox.front() {
            if self.gbt_tx.as_ref().is_some_and(|s| !s.all_sent) {
                return; // the rest waits for the GBT answer in progress
            }
            let need = match p {
                Pending::Plain(_) => 0,
                Pending::Cipher { .. } | Pending::Acse { .. } => 1,
                Pending::Hls { form, .. } => 1 + u64::from(form.is_some()),
            };
            if self.counters.available() < need {
                if !self.need_reported {
                    self.need_reported = true;
                    self.push_event(ServerEvent::NeedCounters);
                }
                return;
            }
            let Some(p) = self.outbox.pop_front() else { return };
            match self.build(p) {
                Ok(apdu) => self.send_wire(apdu),
                Err(e) => self.push_event(ServerEvent::ProtocolError(e)),
            }
        }
    }

    pub(super) fn build(&mut self, p: Pending) -> Result<Vec<u8>> {
        let no_keys = || Error::new(Layer::Security, "keys", 0, ErrorKind::Other("no keys or counter".into()));
        match p {
            Pending::Plain(a) => Ok(a),
            Pending::Cipher { plain, form } => {
                let (Some(ic), Some(c)) = (self.counters.take(), self.crypto.as_ref()) else { return Err(no_keys()) };
                c.protect(&plain, ic, form)
            }
            Pending::Acse { mut apdu, initiate, security_control } => {
                let (Some(ic), Some(c)) = (self.counters.take(), self.crypto.as_ref()) else { return Err(no_keys()) };
                let glo = Form { dedicated: false, general: false, security_control };
                let ui = apdu::decode(&c.protect(&initiate, ic, glo)?)?;
                match apdu.as_mut() {
                    Apdu::Aare(a) => a.user_information = Some(Box::new(ui)),
                    Apdu::Rlre(r) => r.user_information = Some(Box::new(ui)),
                    _ => {}
                }
                Ok(apdu.encode())
            }
            Pending::Hls { invoke, form } => {
                let (Some(f_ic), Some(c)) = (self.counters.take(), self.crypto.as_ref()) else { return Err(no_keys()) };
                let f = c.hls_answer(&self.ctos, f_ic)?;
                let result = apdu::ActionResult {
                    result: 0,
                    return_data: Some(apdu::GetDataResult::Data(crate::axdr::Data::OctetString(f).encode())),
                };
                let plain =
                    Apdu::ActionResponse(apdu::ActionResponse::Normal { invoke_id_and_priority: invoke, result })
                        .encode();
                match form {
                    Some(form) => {
                        let ic = self.counters.take().ok_or_else(no_keys)?;
                        c.protect(&plain, ic, form)
                    }
                    None => Ok(plain),
                }
            }
        }
    }

    pub(super) fn push_out(&mut self, apdu: Vec<u8>) {
        self.stats.apdus_sent += 1;
        self.out.push(apdu);
    }

    pub(super) fn send_wire(&mut self, apdu: Vec<u8>) {
        let limit = self.send_limit();
        if apdu.len() <= limit {
            return self.push_out(apdu);
        }
        let size = super::blocks::fit(limit, gbt::HEADER, None);
        if let (true, Some(size)) = (self.conformance() & bits::GENERAL_BLOCK_TRANSFER != 0, size) {
            match gbt::Sender::new(&apdu, size) {
                Ok(mut s) => {
                    for b in s.send_from(1, self.peer_window, self.cfg.gbt_window, self.gbt_rx.last_taken) {
                        self.push_out(b);
                    }
                    self.gbt_tx = Some(s);
                    return;
                }
                Err(e) => self.push_event(ServerEvent::ProtocolError(e)),
            }
        }
        let e = too_long("answer APDU (the client's max receive PDU size)", apdu.len(), limit);
        self.refuse(SERVICE_NOT_ALLOWED, PDU_TOO_LONG, None, e);
    }

    // ------------------------------------------------------------------ receiving
    /// One whole APDU from the transport.
    pub fn receive_data(&mut self, data: &[u8], now: f64) {
        self.stats.apdus_received += 1;
        if self.events.len() >= self.cfg.max_events {
            self.stats.dropped_queue_full += 1;
            return;
        }
        let limit = self.cfg.receive_limit();
        if data.len() > limit {
            let e = too_long("received APDU (our max receive PDU size)", data.len(), limit);
            return self.refuse(SERVICE_NOT_ALLOWED, PDU_TOO_LONG, None, e);
        }
        let Some(&tag) = data.first() else {
            return self.push_event(ServerEvent::ProtocolError(proto("APDU", "empty APDU".into())));
        };
        match tag {
            apdu::association::TAG_AARQ => self.on_aarq(data),
            apdu::association::TAG_RLRQ => self.on_rlrq(data),
            apdu::association::TAG_AARE | apdu::association::TAG_RLRE => {
                self.push_event(ServerEvent::ProtocolError(proto("APDU", format!("tag 0x{tag:02x} sent to a server"))))
            }
            _ if self.state == ServerState::Idle => {
                let e = proto("association", format!("APDU tag 0x{tag:02x} without an association"));
                self.refuse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE, None, e);
            }
            apdu::block::TAG_GENERAL_BLOCK_TRANSFER => self.on_gbt(data, now),
            _ => {
                // A new request: any GBT transfer the client gave up on is over.
                self.gbt_rx.reset();
                if self.gbt_tx.take().is_some() {
                    self.flush();
                }
                self.on_apdu(data, now)
            }
        }
    }

    pub(super) fn on_gbt(&mut self, data: &[u8], now: f64) {
        if self.conformance() & bits::GENERAL_BLOCK_TRANSFER == 0 {
            let e = proto("general-block-transfer", "general-block-transfer was not agreed".into());
            return self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
        }
        let b = match gbt::decode(data) {
            Ok(b) => b,
            Err(e) => return self.refuse(SERVICE_UNKNOWN, SERVICE_NOT_SUPPORTED, None, e),
        };
        if b.window > 0 {
            self.peer_window = b.window;
        }
        let (ours, taken) = (self.cfg.gbt_window, self.gbt_rx.last_taken);
        if let Some(s) = self.gbt_tx.as_mut() {
            if b.block_data.is_empty() && !self.gbt_rx.active() {
                // An acknowledgement (some peers set last-block on it: it carries no data).
                let more = s.on_ack(b.block_number_ack, self.peer_window, ours, taken);
                for a in more {
                    self.push_out(a);
                }
                return self.flush();
            }
            self.gbt_tx = None; // a new request: the answer was received
            self.flush();
        }
        match self.gbt_rx.on_block(&b, self.cfg.max_block_transfer) {
            Ok(gbt::Rx::Nothing) => {}
            Ok(gbt::Rx::Ack(n)) => {
                let a = self.gbt_rx.ack_apdu(n, ours);
                self.push_out(a);
            }
            Ok(gbt::Rx::Complete(apdu)) => {
                if apdu.first() == Some(&apdu::block::TAG_GENERAL_BLOCK_TRANSFER) {
                    let e = proto("general-block-transfer", "a general-block-transfer inside one".into());
                    return self.refuse(SERVICE_UNKNOWN, SERVICE_NOT_SUPPORTED, None, e);
                }
                self.on_apdu(&apdu, now);
            }
            Err(e) => self.refuse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE, None, e),
        }
    }

    /// A whole xDLMS APDU of the association (GBT reassembled).
    pub(super) fn on_apdu(&mut self, data: &[u8], _now: f64) {
        let tag = data.first().copied().unwrap_or(0);
        let plain: Vec<u8>;
        let (bytes, form): (&[u8], Option<Form>) = if is_ciphered(tag) {
            if !self.ciphered() {
                let e = proto("APDU", format!("a ciphered APDU (tag 0x{tag:02x}) in a plain association"));
                return self.refuse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE, None, e);
            }
            let required = self.required();
            let Some(c) = self.crypto.as_mut() else { return };
            match c.unprotect(data, required) {
                Ok((p, f)) => {
                    plain = p;
                    (&plain, Some(f))
                }
                Err(Refusal::Decipher(e)) => return self.refuse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR, None, e),
                Err(Refusal::Replay { last, error, .. }) => {
                    return self.refuse(
                        SERVICE_NOT_ALLOWED,
                        INVOCATION_COUNTER_ERROR,
                        Some(last.saturating_add(1)),
                        error,
                    )
                }
            }
        } else if self.ciphered() {
            let e = proto("APDU", format!("an unciphered APDU (tag 0x{tag:02x}) in a ciphered association is refused"));
            return self.refuse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE, None, e);
        } else {
            (data, None)
        };
        if form.is_some_and(|f| f.dedicated) && !self.crypto.as_ref().is_some_and(Crypto::has_dedicated) {
            let e = proto("APDU", "a ded-ciphered request but no dedicated key was agreed".into());
            return self.refuse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR, None, e);
        }
        match apdu::decode(bytes) {
            Ok(a) => self.dispatch(a, form),
            Err(e) => self.refuse(SERVICE_UNKNOWN, SERVICE_NOT_SUPPORTED, None, e),
        }
    }

    /// The client's f(StoC) (reply_to_HLS_authentication parameters).
    pub(super) fn on_hls_reply(&mut self, invoke: u8, parameters: Option<Vec<u8>>, form: Option<Form>) {
        let answer_form = self.answer_form(form);
        let reject = |s: &mut Self, result: u8, why: Error| {
            let r = apdu::ActionResult { result, return_data: None };
            let plain =
                Apdu::ActionResponse(apdu::ActionResponse::Normal { invoke_id_and_priority: invoke, result: r });
            s.send(plain.encode(), answer_form);
            s.push_event(ServerEvent::ProtocolError(why));
        };
        let f = match parameters.as_deref().map(crate::axdr::decode) {
            Some(Ok(crate::axdr::Data::OctetString(f))) => f,
            _ => {
                return reject(
                    self,
                    12,
                    proto("reply_to_HLS_authentication", "parameters are not an octet-string".into()),
                )
            }
        };
        let checked = match self.crypto.as_ref() {
            Some(c) => c.hls_check(&self.stoc, &f),
            None => return,
        };
        if let Err(e) = checked {
            return reject(self, 250, e);
        }
        self.outbox.push_back(Pending::Hls { invoke, form: answer_form });
        if self.state == ServerState::AwaitingHls {
            self.state = ServerState::Associated;
            if let Some(a) = self.agreement.clone() {
                self.push_event(ServerEvent::Associated(a));
            }
        }
        self.flush();
    }
}
