//! The xDLMS association (IEC 62056-5-3 / Green Book) as sans-IO state
//! machines, client and server role, in the style of the HDLC link: whole
//! APDUs in (`receive_data(apdu, now)`), whole APDUs out (`data_to_send()`,
//! in order), events out (`next_event()`), time in (`next_deadline()`,
//! `handle_timeout(now)`; seconds, monotonic, from the caller). The transport
//! below (HDLC link, wrapper framer) carries the APDUs; nothing here opens a
//! socket, reads a clock or draws a random number.
//!
//! # Client ([`ClientAssociation`])
//!
//! ```text
//! new(AssociationConfig) ─ open(now, CtoS?, dedicated key?) ─▶ AARQ
//!   AARE ─▶ Associated(Agreement) | Refused{..} | AssociationFailed(e)
//!          (HLS-GMAC: pass 3 reply_to_HLS_authentication goes out by itself,
//!           f(CtoS) is checked, then Associated)
//! get(&[AttributeRef]) / set(&[(AttributeRef, value)]) / action(&[(MethodRef, params?)])
//!   ─▶ RequestId, later exactly one of Response{id, Ok(Outcome)|Err(RequestError)}
//!      or Timeout{id}; cancel(id) abandons one
//! release(now) ─▶ RLRQ ─▶ Released{confirmed}        reset(): the link is gone
//! grant_counters(first, count) ◀─ NeedCounters        CounterHint{..}: see below
//! ```
//!
//! * One item is a normal request, several a with-list one (multiple-references
//!   must be agreed). Values, parameters and results are raw A-XDR bytes
//!   (`crate::axdr` decodes them); [`Outcome`] has one entry per item.
//! * A SET/ACTION too long for the server's max receive PDU size (capped by
//!   `max_send_pdu`) goes in datablocks / pblocks when that block transfer was
//!   agreed, else whole in general-block-transfer when GBT was agreed, else it
//!   is refused at once. Answers in datablocks / pblocks are asked for block by
//!   block (get-request-next / action-request-next-pblock, same invoke id);
//!   answers in GBT are reassembled, window by window.
//! * Invoke ids cycle 1..=15 with the priority and confirmed-service bits; an
//!   answer to an abandoned invoke id (timeout, cancel) is dropped
//!   (`LateAnswerDropped`), one to an invoke id nobody uses is a `ProtocolError`.
//!   Up to `max_outstanding` requests are in flight (default 1, the others
//!   wait); none starts while another is in a block transfer. An
//!   exception-response (it has no invoke id) ends the oldest request in flight.
//! * The response timeout is a silence timeout per request: every block of
//!   its answer (or GBT acknowledgement) restarts it. A GBT transfer that
//!   stalls is asked again (`gbt_retries` times) before the request times out.
//!
//! # Short names
//!
//! With `AssociationConfig::referencing = Sn` both roles use the short-name
//! contexts (2, ciphered 4) and services instead (`sn_client.rs`,
//! `sn_server.rs`, `sn_names.rs`): the same `get`/`set`/`action` calls and
//! [`Outcome`]s, carried as ReadRequest / WriteRequest on 16-bit short names
//! resolved through a [`ShortNames`] table (the meter's Association SN object
//! list; `set_short_names`). One request at a time (SN has no invoke id); a
//! Read answer in data-block-results is asked for block by block; methods
//! are Writes to their short name (Blue Book SN method offsets). HLS-GMAC is
//! refused with SN (`config.referencing`).
//!
//! # Server ([`ServerAssociation`])
//!
//! ```text
//! new(AssociationConfig) ; set_challenge(StoC) before an HLS-GMAC AARQ
//! AARQ ─▶ AARE (+ Associated(Agreement) | Refused{..}); RLRQ ─▶ RLRE + Released
//! request complete ─▶ Request{id, IncomingRequest} ; respond(id, Outcome) | refuse_request(id)
//! ```
//!
//! The AARQ is checked in Green Book order (context, mechanism, LLS password /
//! CtoS, calling-AP-title, the glo-InitiateRequest deciphered and its counter
//! checked, version, PDU size, common conformance) and refused with the
//! diagnostic that names the fault. HLS-GMAC pass 3 is served by the machine
//! (f(StoC) verified, f(CtoS) answered); before it nothing else is. SET/ACTION
//! blocks are reassembled before the shell sees the request; an answer too
//! long for the client goes whole in GBT when agreed, else in datablocks /
//! pblocks when agreed, else with the result other-reason. Answers are
//! ciphered in the form of their request (glo/ded/general). What the
//! negotiated conformance does not allow, what does not decipher, a replayed
//! counter (with the expected counter), a plain request in a ciphered
//! association, an APDU over the PDU size: each is an exception-response
//! (plain, as meters send them) and a `ProtocolError` event.
//!
//! # What both enforce
//!
//! * Invocation counters come from the caller only: `grant_counters(first,
//!   count)` (from its persisted reservation). Nothing ciphered leaves without
//!   one: the APDU waits and `NeedCounters` is reported (once per grant). A
//!   counter is never used twice; a grant at or below the last used is refused.
//! * Incoming counters must increase over `last_incoming_counter` (the
//!   caller's persisted value at construction, readable back as
//!   `last_incoming_counter()`); only an authenticated APDU (SC with the
//!   authentication bit) moves it. A replay is refused.
//! * In a ciphered association every xDLMS APDU must be ciphered with at
//!   least the configured protection bits. The client reads one plain APDU
//!   only: an exception-response of exactly 3 or 7 bytes, not reassembled from
//!   GBT; it ends the request. Its invocation counter (a hint) is
//!   unauthenticated and never applied: `CounterHint` surfaces it when it is
//!   ahead of the next counter and within `max_counter_hint_jump` of the
//!   confirmed position; `confirmed_outgoing_counter()` says when an
//!   authenticated answer confirmed a counter (the caller persists a followed
//!   hint only then).
//! * Every received APDU (each block included) is refused above our max
//!   receive PDU size; every reassembled answer or request above
//!   `max_block_transfer`; while `max_events` events wait unread, received
//!   APDUs are dropped (`Stats::dropped_queue_full`).
//! * Quirks are allowed by name only ([`KNOWN_QUIRKS`], `config.quirks`; by
//!   default the structural ones): an AARE or answer that decodes only with
//!   a quirk is taken when it is allowed (a `Quirk` event each time, before
//!   the event it let through) and refused naming it when not; an AARE
//!   rejection without user-information likewise. Nothing ciphered is
//!   decoded with a quirk (neither the envelope nor its plaintext); a
//!   ciphered association takes a plain or missing InitiateResponse only
//!   with `plain-initiate-response` (opt-in).
//!
//! # Errors
//!
//! The crate's [`Error`](crate::Error): `Layer::Apdu` for protocol faults,
//! `Layer::Security` for security ones, the field naming what was wrong
//! (e.g. "reassembled answer (max_block_transfer)", "invoke-id",
//! "config.gbt_window") and the message the value and the limit.

mod blocks;
mod cipher;
mod client;
mod client_acse;
mod client_req;
mod client_rx;
pub mod config;
mod gbt;
mod server;
mod server_acse;
mod server_req;
mod sn_client;
pub mod sn_names;
mod sn_server;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_assoc;
#[cfg(test)]
mod tests_quirks;
#[cfg(test)]
mod tests_security;
#[cfg(test)]
mod tests_services;
#[cfg(test)]
mod tests_sn;
#[cfg(test)]
mod tests_vectors;

pub use client::{ClientAssociation, ClientState};
pub use config::{
    bits, default_conformance, sn_default_conformance, AssociationConfig, Authentication, CipherMode, Ciphering, Keys,
    Referencing, KNOWN_QUIRKS,
};
pub use server::{ServerAssociation, ServerState};
pub use sn_names::{ShortNameEntry, ShortNames, SnTarget};
pub use types::{
    result_name, Agreement, AttributeRef, ClientEvent, IncomingRequest, MethodRef, Outcome, RequestError, RequestId,
    ServerEvent, Service, Stats,
};
