//! The typed boundary of the association machines: requests, results, events.

use std::fmt;

use crate::apdu::results::{name_of, ACTION_RESULTS, DATA_ACCESS_RESULTS};
use crate::apdu::{ActionResult, AttributeWithSelection, Diagnostic, GetDataResult, MethodDescriptor};
use crate::error::Error;

/// Names one request for its whole life (never reused by a machine; not the
/// 4-bit invoke id, which is reused).
pub type RequestId = u64;
/// An attribute, with optional selective access.
pub type AttributeRef = AttributeWithSelection;
/// A method.
pub type MethodRef = MethodDescriptor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Get,
    Set,
    Action,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Get => "GET",
            Service::Set => "SET",
            Service::Action => "ACTION",
        }
    }
}

/// The typed result of a request, one entry per requested item in order:
/// a GET value as raw A-XDR bytes or a data-access-result, a SET
/// data-access-result, an ACTION result with its optional return data.
/// The server's shell answers with the same type ([`super::ServerAssociation::respond`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Get(Vec<GetDataResult>),
    Set(Vec<u8>),
    Action(Vec<ActionResult>),
}

impl Outcome {
    pub fn service(&self) -> Service {
        match self {
            Outcome::Get(_) => Service::Get,
            Outcome::Set(_) => Service::Set,
            Outcome::Action(_) => Service::Action,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Outcome::Get(v) => v.len(),
            Outcome::Set(v) => v.len(),
            Outcome::Action(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a request has no [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The server answered an exception-response (state-error, service-error,
    /// and for invocation-counter-error the counter it expects: a hint, never
    /// applied by the machine).
    Exception { state_error: u8, service_error: u8, invocation_counter: Option<u32> },
    /// The server answered a confirmed-service-error.
    ConfirmedServiceError { service: u8, error: u8, value: u8 },
    /// The answer broke the protocol (undecodable, wrong kind, block out of
    /// sequence, over the PDU size or `max_block_transfer`, …).
    Protocol(Error),
    /// The answer failed a security check (tag, replayed counter, protection
    /// below the policy, plain APDU in a ciphered association).
    Security(Error),
    /// The request ended without an answer: the association was released,
    /// reset, or the HLS handshake failed.
    Abandoned(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Exception { state_error, service_error, invocation_counter } => {
                use crate::apdu::errors::{SERVICE_ERRORS, STATE_ERRORS};
                let st = name_of(STATE_ERRORS, *state_error).unwrap_or("?");
                let se = name_of(SERVICE_ERRORS, *service_error).unwrap_or("?");
                write!(f, "exception-response {st}/{se}")?;
                if let Some(ic) = invocation_counter {
                    write!(f, " (the meter expects invocation counter {ic})")?;
                }
                Ok(())
            }
            RequestError::ConfirmedServiceError { service, error, value } => {
                use crate::apdu::errors::{CONFIRMED_SERVICES, SERVICE_ERROR_CLASSES};
                let s = name_of(CONFIRMED_SERVICES, *service).unwrap_or("?");
                let c = name_of(SERVICE_ERROR_CLASSES, *error).unwrap_or("?");
                write!(f, "confirmed-service-error {s}: {c} {value}")
            }
            RequestError::Protocol(e) => write!(f, "protocol error: {e}"),
            RequestError::Security(e) => write!(f, "security failure: {e}"),
            RequestError::Abandoned(why) => write!(f, "abandoned: {why}"),
        }
    }
}

/// The name of a data-access-result (GET/SET) or action-result.
pub fn result_name(service: Service, value: u8) -> &'static str {
    let table = if service == Service::Action { ACTION_RESULTS } else { DATA_ACCESS_RESULTS };
    name_of(table, value).unwrap_or("unknown")
}

/// What the association agreed (both roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The negotiated conformance (24 bits; the intersection of both sides).
    pub conformance: u32,
    /// The largest APDU the peer takes: client, the server's max receive PDU
    /// size; server, the client's (0 on the wire reads as 65535).
    pub peer_max_pdu: u16,
    pub dlms_version: u8,
    /// The peer's system title (AARE responding-AP-title / AARQ calling-AP-title).
    pub peer_system_title: Option<[u8; 8]>,
    /// The mechanism that authenticated the association (0, 1 or 5).
    pub mechanism: u8,
    pub ciphered: bool,
    /// A dedicated key is in use (ded- / general-ded- APDUs).
    pub dedicated_key: bool,
    /// Quirks taken while associating, each once (names of [`super::KNOWN_QUIRKS`]).
    pub quirks_used: Vec<&'static str>,
    /// Client: the accepted AARE carried no InitiateResponse (a plain
    /// association takes that, as the Python client did; the conformance
    /// proposed and a PDU size of 65535 are assumed).
    pub initiate_response_missing: bool,
}

/// A complete request as the server's shell sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingRequest {
    Get(Vec<AttributeRef>),
    /// Each attribute with its value (one raw A-XDR value, checked to parse).
    Set(Vec<(AttributeRef, Vec<u8>)>),
    /// Each method with its parameters (one raw A-XDR value) if any.
    Action(Vec<(MethodRef, Option<Vec<u8>>)>),
}

impl IncomingRequest {
    pub fn service(&self) -> Service {
        match self {
            IncomingRequest::Get(_) => Service::Get,
            IncomingRequest::Set(_) => Service::Set,
            IncomingRequest::Action(_) => Service::Action,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            IncomingRequest::Get(v) => v.len(),
            IncomingRequest::Set(v) => v.len(),
            IncomingRequest::Action(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the client machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The association is open (after HLS pass 4 for HLS-GMAC).
    Associated(Agreement),
    /// The server refused: the AARE's result (1 rejected-permanent, 2
    /// rejected-transient; 0 with an initiate error in the user-information)
    /// and diagnostic, or the server refused our f(StoC) (1 with
    /// authentication-failure). `detail` says what else was learnt.
    Refused { result: i64, diagnostic: Option<Diagnostic>, detail: String },
    /// The association could not be opened: a malformed or inconsistent AARE,
    /// a failed security check (f(CtoS), the ciphered InitiateResponse), no
    /// AARE or pass 4 within the response timeout.
    AssociationFailed(Error),
    /// The answer to a request: exactly one per request, unless it timed out
    /// or was cancelled.
    Response { id: RequestId, result: std::result::Result<Outcome, RequestError> },
    /// No answer within the response timeout; the request is abandoned and a
    /// late answer to it will be dropped.
    Timeout { id: RequestId },
    /// A ciphered APDU is waiting for invocation counters: call `grant_counters`.
    /// Reported once until the next grant.
    NeedCounters,
    /// The server refused request `id` with invocation-counter-error and
    /// says it expects `expected`: ahead of the next counter we would use and
    /// at most `max_counter_hint_jump` ahead of `confirmed_base` (the counter
    /// after the last confirmed one, else the first granted). It is
    /// unauthenticated: the machine applies nothing. The caller may follow it
    /// tentatively (`grant_counters(expected, n)`) and persist it only once an
    /// authenticated answer confirms it (`confirmed_outgoing_counter() >= expected`).
    /// A hint outside the bound is reported as a `ProtocolError` naming it and the bound.
    CounterHint { id: RequestId, expected: u32, confirmed_base: u32 },
    /// An answer for an invoke id we stopped waiting for (timeout or cancel) was dropped.
    LateAnswerDropped { invoke_id: u8 },
    /// An APDU that belongs to no request was dropped (unexpected invoke id,
    /// unexpected AARE/RLRE, stray GBT, a counter hint not surfaced, …).
    ProtocolError(Error),
    /// A data-notification or event-notification (plain, or glo/ded-ciphered,
    /// not deciphered) received on the association, as received.
    Unsolicited(Vec<u8>),
    /// The association is over: `confirmed` when the RLRE arrived.
    Released { confirmed: bool },
    /// A quirk of the meter was taken (one event each time, before the event
    /// of what it let through): the AARE or answer decoded only with it, or an
    /// association-level one (`rejection-without-user-information`,
    /// `plain-initiate-response`). Only quirks the configuration allows.
    Quirk(crate::apdu::Tolerated),
}

/// What the server machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The association is open (for HLS-GMAC once f(StoC) verified).
    Associated(Agreement),
    /// An AARQ was refused with this AARE result and diagnostic.
    Refused { result: i64, diagnostic: Diagnostic, why: String },
    /// A complete request (blocks reassembled): answer it with `respond(id, …)`.
    Request { id: RequestId, request: IncomingRequest },
    /// A ciphered answer is waiting for invocation counters: call `grant_counters`.
    NeedCounters,
    /// Something received was refused or dropped (answered with an
    /// exception-response or a result code where the protocol has one).
    ProtocolError(Error),
    /// RLRQ accepted (or the association was replaced by a new AARQ).
    Released,
}

/// Counters of what a machine dropped or refused (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub apdus_received: u64,
    pub apdus_sent: u64,
    /// Received while the event queue was full.
    pub dropped_queue_full: u64,
    pub late_answers_dropped: u64,
    pub refused: u64,
}
