//! The client (gateway) side: AARQ/AARE, HLS-GMAC passes 3 and 4, RLRQ/RLRE,
//! the outgoing pipeline (counters, ciphering, GBT) and the dispatch of what
//! arrives. The services themselves (building requests, following their
//! answers and blocks) are in `client_req.rs`.

use std::collections::VecDeque;

use super::cipher::{Counters, Crypto, Form};
use super::client_req::{Phase, Req};
use super::config::{bits, AssociationConfig};
use super::gbt;
use super::types::{Agreement, ClientEvent, Outcome, RequestError, RequestId, Stats};
use crate::apdu::{self, Apdu};
use crate::error::{Error, ErrorKind, Layer, Result};

/// Where the client is in the association's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Idle,
    AwaitingAare,
    /// HLS-GMAC: reply_to_HLS_authentication sent, f(CtoS) awaited.
    AwaitingHls,
    Associated,
    Releasing,
}

/// An outgoing APDU waiting for its turn (and its invocation counters).
pub(super) enum Pending {
    /// Sent as it is (ACSE without ciphering, plain xDLMS).
    Plain { apdu: Vec<u8>, req: Option<RequestId> },
    /// An xDLMS request ciphered on the way out.
    Cipher { plain: Vec<u8>, req: RequestId },
    /// AARQ/RLRQ whose user-information is a glo-InitiateRequest.
    Acse { apdu: Box<Apdu>, initiate: Vec<u8> },
    /// reply_to_HLS_authentication; f(StoC) takes a counter after the request's own.
    Hls { invoke: u8, stoc: Vec<u8>, req: RequestId },
}

/// A pending APDU built: its bytes, or why not (with the request it was for).
type Built = std::result::Result<(Vec<u8>, Option<RequestId>), (Error, Option<RequestId>)>;

/// The client side of one association (see the module documentation).
pub struct ClientAssociation {
    pub(super) cfg: AssociationConfig,
    /// The decode quirks `cfg` allows, worked out once (every plain APDU received asks).
    pub(super) tolerance: apdu::Tolerance,
    pub(super) state: ClientState,
    pub(super) crypto: Option<Crypto>,
    pub(super) counters: Counters,
    pub(super) need_reported: bool,
    pub(super) agreement: Option<Agreement>,
    pub(super) events: VecDeque<ClientEvent>,
    pub(super) out: Vec<Vec<u8>>,
    pub(super) outbox: VecDeque<Pending>,
    pub(super) reqs: Vec<Req>,
    pub(super) next_id: RequestId,
    pub(super) last_invoke: u8,
    pub(super) abandoned: u16,
    pub(super) gbt_tx: Option<(RequestId, gbt::Sender)>,
    pub(super) gbt_rx: gbt::Receiver,
    pub(super) peer_window: u8,
    pub(super) confirmed: Option<u32>,
    pub(super) first_granted: Option<u32>,
    /// The counter of the AARQ's glo-InitiateRequest (confirmed by an authenticated InitiateResponse).
    pub(super) aarq_counter: Option<u32>,
    pub(super) deadline: Option<f64>,
    pub(super) ctos: Vec<u8>,
    pub(super) stats: Stats,
    /// The caller's persisted last counters per server system title.
    pub(super) known: Vec<([u8; 8], u32)>,
    /// Short names (SN referencing; `sn_client.rs`).
    pub(super) names: super::sn_names::ShortNames,
}

impl std::fmt::Debug for ClientAssociation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssociation")
            .field("state", &self.state)
            .field("requests", &self.reqs.len())
            .field("counters_available", &self.counters.available())
            .finish_non_exhaustive()
    }
}

pub(super) fn proto(field: &'static str, msg: String) -> Error {
    Error::new(Layer::Apdu, field, 0, ErrorKind::Other(msg))
}

/// Nothing arrived for `field` within `timeout` seconds.
pub(super) fn no_answer(field: &'static str, timeout: f64) -> Error {
    Error::new(Layer::Apdu, field, 0, ErrorKind::NoAnswer { millis: (timeout * 1000.0).round() as u64 })
}

pub(super) fn security(field: &'static str, msg: String) -> Error {
    Error::new(Layer::Security, field, 0, ErrorKind::Other(msg))
}

/// Association LN (class 15, 0.0.40.0.0.255) method 1, reply_to_HLS_authentication.
pub(super) const HLS_METHOD: apdu::MethodDescriptor =
    apdu::MethodDescriptor { class_id: 15, obis: [0, 0, 40, 0, 0, 255], method_id: 1 };

impl ClientAssociation {
    pub fn new(cfg: AssociationConfig) -> Result<Self> {
        cfg.validate()?;
        let crypto = match &cfg.keys {
            Some(k) => Some(Crypto::new(k, cfg.peer_system_title, cfg.last_incoming_counter)?),
            None => None,
        };
        Ok(ClientAssociation {
            tolerance: cfg.tolerance(),
            cfg,
            state: ClientState::Idle,
            crypto,
            counters: Counters::default(),
            need_reported: false,
            agreement: None,
            events: VecDeque::new(),
            out: Vec::new(),
            outbox: VecDeque::new(),
            reqs: Vec::new(),
            next_id: 1,
            last_invoke: 0,
            abandoned: 0,
            gbt_tx: None,
            gbt_rx: gbt::Receiver::default(),
            peer_window: 1,
            confirmed: None,
            first_granted: None,
            aarq_counter: None,
            deadline: None,
            ctos: Vec::new(),
            stats: Stats::default(),
            known: Vec::new(),
            names: super::sn_names::ShortNames::bootstrap(),
        })
    }

    // ------------------------------------------------------------------ accessors
    pub fn state(&self) -> ClientState {
        self.state
    }
    /// What the AARE agreed, once associated.
    pub fn agreement(&self) -> Option<&Agreement> {
        self.agreement.as_ref()
    }
    /// The last authenticated invocation counter of the server (persist it).
    pub fn last_incoming_counter(&self) -> Option<u32> {
        self.crypto.as_ref().and_then(|c| c.last_incoming)
    }
    /// The last outgoing invocation counter used.
    pub fn last_outgoing_counter(&self) -> Option<u32> {
        self.counters.last_used()
    }
    /// The highest outgoing counter of a request that got an authenticated
    /// answer: proof that the server accepted counters up to it.
    pub fn confirmed_outgoing_counter(&self) -> Option<u32> {
        self.confirmed
    }
    /// Granted counters not used yet.
    pub fn counters_available(&self) -> u64 {
        self.counters.available()
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Requests not answered yet (queued or in flight).
    pub fn pending_requests(&self) -> Vec<RequestId> {
        self.reqs.iter().filter(|r| !r.hls).map(|r| r.id).collect()
    }

    /// The last invocation counter persisted for server system title
    /// `title` (the caller's store): anything from that title not above it is
    /// a replay. Call it before `open` for every title the store knows for
    /// this meter (the AARE, or a general-ciphering APDU, names the server).
    pub fn remember_peer_counter(&mut self, title: [u8; 8], last: u32) {
        super::cipher::remember(&mut self.known, title, last);
        if let Some(c) = self.crypto.as_mut() {
            c.set_known(&self.known);
        }
    }

    /// The transport below made progress on an answer (HDLC segments or
    /// retransmissions recovering a long APDU): the silence timers of the
    /// requests in flight, and of the AARE / RLRE, start again.
    pub fn progress(&mut self, now: f64) {
        self.touch(None, now);
        if self.deadline.is_some() {
            self.deadline = Some(now + self.cfg.response_timeout);
        }
    }

    pub fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The whole APDUs to send, in order.
    pub fn data_to_send(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    pub(super) fn ciphered(&self) -> bool {
        self.cfg.ciphering.is_some()
    }

    /// The form of our ciphered requests.
    pub(super) fn form(&self) -> Option<Form> {
        self.cfg.ciphering.map(|c| Form {
            dedicated: c.mode.dedicated(),
            general: c.mode.general(),
            security_control: c.security_control,
        })
    }

    /// The largest APDU we may send: the server's max receive PDU size, capped by `max_send_pdu`.
    pub(super) fn send_limit(&self) -> usize {
        let peer = self.agreement.as_ref().map_or(0xFFFF, |a| usize::from(a.peer_max_pdu));
        self.cfg.max_send_pdu.map_or(peer, |m| peer.min(usize::from(m)))
    }

    pub(super) fn push_event(&mut self, e: ClientEvent) {
        self.events.push_back(e);
    }

    pub(super) fn push_out(&mut self, apdu: Vec<u8>) {
        self.stats.apdus_sent += 1;
        self.out.push(apdu);
    }

    // ------------------------------------------------------------------ counters
    /// Grant outgoing invocation counters `first..first+count` (from the
    /// caller's persisted reservation). A grant that continues the current one
    /// extends it; any other replaces what is left of it (those counters are
    /// simply never used); a grant at or below the last counter used is refused.
    pub fn grant_counters(&mut self, first: u32, count: u32) -> Result<()> {
        self.counters.grant(first, count)?;
        self.first_granted = self.first_granted.or(Some(first));
        self.need_reported = false;
        self.flush();
        Ok(())
    }

    /// Send what waits in the outbox while counters last.
    pub(super) fn flush(&mut self) {
        while let Some(p) = self.outbox.front() {
            let need = match p {
                Pending::Plain { .. } => 0,
                Pending::Cipher { .. } | Pending::Acse { .. } => 1,
                Pending::Hls { .. } => 1 + u64::from(self.ciphered()),
            };
            if self.counters.available() < need {
                if !self.need_reported {
                    self.need_reported = true;
                    self.push_event(ClientEvent::NeedCounters);
                }
                return;
            }
            let Some(p) = self.outbox.pop_front() else { return };
            match self.build(p) {
                Ok((apdu, req)) => self.send_wire(apdu, req),
                Err((e, req)) => match req {
                    Some(id) => self.fail(id, RequestError::Security(e)),
                    None => self.association_failed(e),
                },
            }
        }
    }

    /// The bytes of a pending APDU, taking its counters.
    pub(super) fn build(&mut self, p: Pending) -> Built {
        let form = self.form();
        match p {
            Pending::Plain { apdu, req } => Ok((apdu, req)),
            Pending::Cipher { plain, req } => {
                let (Some(ic), Some(c), Some(f)) = (self.counters.take(), self.crypto.as_ref(), form) else {
                    return Err((security("ciphering", "no keys or counter".into()), Some(req)));
                };
                let apdu = c.protect(&plain, ic, f).map_err(|e| (e, Some(req)))?;
                self.note_counter(req, ic);
                Ok((apdu, Some(req)))
            }
            Pending::Acse { mut apdu, initiate } => {
                let ic = self.counters.take();
                let (Some(ic), Some(c), Some(f)) = (ic, self.crypto.as_ref(), form) else {
                    return Err((security("ciphering", "no keys or counter".into()), None));
                };
                // The InitiateRequest always goes glo-ciphered with the global key.
                let glo = Form { dedicated: false, general: false, ..f };
                let ui = c.protect(&initiate, ic, glo).and_then(|b| apdu::decode(&b)).map_err(|e| (e, None))?;
                if matches!(*apdu, Apdu::Aarq(_)) {
                    self.aarq_counter = Some(ic);
                }
                match apdu.as_mut() {
                    Apdu::Aarq(a) => a.user_information = Some(Box::new(ui)),
                    Apdu::Rlrq(r) => r.user_information = Some(Box::new(ui)),
                    _ => {}
                }
                Ok((apdu.encode(), None))
            }
            Pending::Hls { invoke, stoc, req } => {
                let request_ic = if self.ciphered() { self.counters.take() } else { None };
                let (Some(f_ic), Some(c)) = (self.counters.take(), self.crypto.as_ref()) else {
                    return Err((security("HLS-GMAC", "no keys or counter".into()), Some(req)));
                };
                let f = c.hls_answer(&stoc, f_ic).map_err(|e| (e, Some(req)))?;
                let plain = Apdu::ActionRequest(apdu::ActionRequest::Normal {
                    invoke_id_and_priority: invoke,
                    method: HLS_METHOD,
                    parameters: Some(crate::axdr::Data::OctetString(f).encode()),
                })
                .encode();
                let apdu = match (request_ic, form) {
                    (Some(ic), Some(f)) => {
                        let apdu = c.protect(&plain, ic, f).map_err(|e| (e, Some(req)))?;
                        self.note_counter(req, ic);
                        apdu
                    }
                    _ => plain,
                };
                Ok((apdu, Some(req)))
            }
        }
    }

    /// An authenticated answer to what was sent with counter `ic`.
    pub(super) fn confirm(&mut self, ic: u32) {
        self.confirmed = Some(self.confirmed.map_or(ic, |x| x.max(ic)));
    }

    pub(super) fn note_counter(&mut self, req: RequestId, ic: u32) {
        if let Some(r) = self.reqs.iter_mut().find(|r| r.id == req) {
            r.counter = Some(ic);
        }
    }

    /// Put an APDU on the wire: in GBT blocks when longer than the server
    /// takes and GBT is agreed, else refused.
    pub(super) fn send_wire(&mut self, apdu: Vec<u8>, req: Option<RequestId>) {
        let Some(id) = req else {
            self.push_out(apdu);
            return;
        };
        if let Some(r) = self.reqs.iter_mut().find(|r| r.id == id) {
            r.sent_any = true;
        }
        let limit = self.send_limit();
        if apdu.len() <= limit {
            self.push_out(apdu);
            return;
        }
        let gbt = self.agreement.as_ref().is_some_and(|a| a.conformance & bits::GENERAL_BLOCK_TRANSFER != 0);
        let size = super::blocks::fit(limit, gbt::HEADER, None);
        match (gbt, size) {
            (true, Some(size)) => match gbt::Sender::new(&apdu, size) {
                Ok(mut s) => {
                    let first = s.send_from(1, self.peer_window, self.cfg.gbt_window, self.gbt_rx.last_taken);
                    for b in first {
                        self.push_out(b);
                    }
                    self.gbt_tx = Some((id, s));
                }
                Err(e) => self.fail(id, RequestError::Protocol(e)),
            },
            _ => {
                let e = super::blocks::too_long("request APDU (the server's max receive PDU size)", apdu.len(), limit);
                self.fail(id, RequestError::Protocol(e));
            }
        }
    }

    // ------------------------------------------------------------------ time
    pub fn next_deadline(&self) -> Option<f64> {
        let reqs = self.reqs.iter().filter(|r| r.invoke.is_some()).map(|r| r.deadline);
        reqs.chain(self.deadline).reduce(f64::min)
    }

    pub fn handle_timeout(&mut self, now: f64) {
        if let Some(d) = self.deadline {
            if now >= d {
                self.deadline = None;
                let t = self.cfg.response_timeout;
                match self.state {
                    ClientState::AwaitingAare => {
                        return self.association_failed(no_answer("AARE", t));
                    }
                    ClientState::Releasing => {
                        self.clear_association();
                        self.state = ClientState::Idle;
                        return self.push_event(ClientEvent::Released { confirmed: false });
                    }
                    _ => {}
                }
            }
        }
        let due: Vec<RequestId> =
            self.reqs.iter().filter(|r| r.invoke.is_some() && now >= r.deadline).map(|r| r.id).collect();
        for id in due {
            self.request_due(id, now);
        }
        self.pump(now);
    }

    pub(super) fn request_due(&mut self, id: RequestId, now: f64) {
        let Some(idx) = self.reqs.iter().position(|r| r.id == id) else { return };
        let (ours, taken, window) = (self.cfg.gbt_window, self.gbt_rx.last_taken, self.peer_window);
        if self.reqs[idx].retries < self.cfg.gbt_retries {
            let oldest = self.oldest() == Some(idx);
            let again = if oldest && self.gbt_rx.active() {
                let n = self.gbt_rx.retry_ack();
                Some(vec![self.gbt_rx.ack_apdu(n, ours)])
            } else {
                match self.gbt_tx.as_mut() {
                    Some((rid, s)) if *rid == id => Some(s.resend(window, ours, taken)),
                    _ => None,
                }
            };
            if let Some(apdus) = again {
                for a in apdus {
                    self.push_out(a);
                }
                let r = &mut self.reqs[idx];
                r.retries += 1;
                r.deadline = now + self.cfg.response_timeout;
                return;
            }
        }
        let hls = self.reqs[idx].hls;
        self.abandon(idx);
        if hls {
            let t = self.cfg.response_timeout;
            self.association_failed(no_answer("reply_to_HLS_authentication (f(CtoS))", t));
        } else {
            self.push_event(ClientEvent::Timeout { id });
        }
    }

    /// Forget request `idx`; a late answer to it will be dropped.
    pub(super) fn abandon(&mut self, idx: usize) {
        let r = self.reqs.remove(idx);
        if let (Some(inv), true) = (r.invoke, r.sent_any) {
            self.abandoned |= 1 << (inv & 0x0F);
        }
        self.outbox.retain(|p| match p {
            Pending::Cipher { req, .. } | Pending::Hls { req, .. } => *req != r.id,
            Pending::Plain { req, .. } => *req != Some(r.id),
            Pending::Acse { .. } => true,
        });
        if self.gbt_tx.as_ref().is_some_and(|(rid, _)| *rid == r.id) {
            self.gbt_tx = None;
        }
        if self.oldest().is_none() {
            self.gbt_rx.reset();
        }
    }

    /// Stop waiting for request `id`: true when it was pending. A late answer
    /// to it is dropped; a request not sent yet is simply removed.
    pub fn cancel(&mut self, id: RequestId, now: f64) -> bool {
        match self.reqs.iter().position(|r| r.id == id && !r.hls) {
            Some(idx) => {
                self.abandon(idx);
                self.pump(now);
                true
            }
            None => false,
        }
    }

    /// End request `id` with an error.
    pub(super) fn fail(&mut self, id: RequestId, err: RequestError) {
        if let Some(idx) = self.reqs.iter().position(|r| r.id == id) {
            self.finish(idx, Err(err));
        }
    }

    /// The request at `idx` is answered.
    pub(super) fn finish(&mut self, idx: usize, result: std::result::Result<Outcome, RequestError>) {
        let r = self.reqs.remove(idx);
        if self.gbt_tx.as_ref().is_some_and(|(rid, _)| *rid == r.id) {
            self.gbt_tx = None;
        }
        if self.oldest().is_none() {
            self.gbt_rx.reset();
        }
        if r.hls {
            self.hls_done(result);
        } else {
            self.push_event(ClientEvent::Response { id: r.id, result });
        }
    }

    /// The next invoke id, 1..=15 cycling (0 is skipped, as the Python client
    /// does: a peer that ignores invoke ids echoes 0, which is then unexpected),
    /// skipping ids in flight and preferring ids no late answer may still use.
    pub(super) fn alloc_invoke(&mut self) -> u8 {
        let in_use: u16 = self.reqs.iter().filter_map(|r| r.invoke).fold(0, |m, i| m | 1 << (i & 0x0F));
        let mut fallback = None;
        let mut pick = None;
        for k in 1..=15u8 {
            let id = (self.last_invoke + k - 1) % 15 + 1;
            if in_use & (1 << id) != 0 {
                continue;
            }
            if self.abandoned & (1 << id) == 0 {
                pick = Some(id);
                break;
            }
            fallback = fallback.or(Some(id));
        }
        let id = pick.or(fallback).unwrap_or(1);
        self.abandoned &= !(1 << id);
        self.last_invoke = id;
        let priority = if self.cfg.invoke_priority_high { 0x80 } else { 0 };
        priority | 0x40 | id
    }

    /// Whether a request may start now.
    pub(super) fn can_start(&self) -> bool {
        let started = self.reqs.iter().filter(|r| r.invoke.is_some());
        let (mut n, mut busy) = (0usize, false);
        for r in started {
            n += 1;
            busy |= !matches!(r.phase, Phase::Awaiting);
        }
        self.state == ClientState::Associated
            && n < if self.cfg.sn() { 1 } else { usize::from(self.cfg.max_outstanding) }
            && !busy
            && self.gbt_tx.as_ref().map_or(true, |(_, s)| s.all_sent)
            && !self.gbt_rx.active()
    }
}
