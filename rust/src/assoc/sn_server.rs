//! The server's short-name services: ReadRequest / WriteRequest /
//! UnconfirmedWriteRequest are resolved through the short-name table
//! (`sn_names.rs`) into the same [`IncomingRequest`]s as logical names, and
//! the shell's [`Outcome`] comes back as a ReadResponse / WriteResponse.
//!
//! * Names that stand for nothing are answered object-undefined in their
//!   place; the others go to the shell (the answer puts each result back in
//!   its place).
//! * A Read of attributes is a GET (parameterized-access: selective access);
//!   a Read of methods is an ACTION whose return data is the read value; a
//!   Write of attributes is a SET, a Write of methods an ACTION (null-data
//!   parameters read as none). A list mixing attributes and methods answers
//!   the methods scope-of-access-violated.
//! * An UnconfirmedWriteRequest is a SET whose answer is not sent.
//! * A Read answer too long for the client goes in `data-block-result`s: the
//!   bare value for one item (as Gurux's client and server read and write
//!   it), else the ReadResponse list (count, then each result). The client
//!   asks for each next block with block-number-access naming the last block
//!   it got. The Read service has its blocks whatever the conformance says:
//!   SN clients (Gurux's among them) propose no block-transfer bit and follow
//!   data-block-results.

use super::blocks::{fit, split};
use super::cipher::{ciphered_len, Form};
use super::config::bits;
use super::server::{proto, ServerAssociation, SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED};
use super::server_req::{LongAnswer, SReq};
use super::sn_names::{ShortNames, SnTarget};
use super::types::{IncomingRequest, Outcome, ServerEvent, Service};
use crate::apdu::sn::{ReadResponse, ReadResult, VariableAccess, WriteRequest, WriteResponse, WriteResult};
use crate::apdu::{ActionResult, Apdu, AttributeWithSelection, GetDataResult, SelectiveAccess};

const OBJECT_UNDEFINED: u8 = 4;
const TYPE_UNMATCHED: u8 = 12;
const SCOPE_OF_ACCESS_VIOLATED: u8 = 13;
const DATA_BLOCK_NUMBER_INVALID: u8 = 19;
const OTHER_REASON: u8 = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnKind {
    Read,
    Write,
    Unconfirmed,
}

/// How to answer a short-name request: per requested name, its result
/// from the shell (None) or an error code decided here.
#[derive(Debug, Clone)]
pub(super) struct SnReply {
    kind: SnKind,
    slots: Vec<Option<u8>>,
}

/// The names of one request sorted out.
#[derive(Default)]
struct Resolved {
    slots: Vec<Option<u8>>,
    attributes: Vec<(AttributeWithSelection, Option<Vec<u8>>)>,
    methods: Vec<(crate::apdu::MethodDescriptor, Option<Vec<u8>>)>,
}

impl ServerAssociation {
    /// The short names this server answers to (its object list).
    pub fn set_short_names(&mut self, names: ShortNames) {
        self.names = names;
    }

    pub fn short_names(&self) -> &ShortNames {
        &self.names
    }

    /// A request of an SN association.
    pub(super) fn sn_dispatch(&mut self, apdu: Apdu, form: Option<Form>) {
        match apdu {
            Apdu::ReadRequest(r) => {
                if !self.allowed(bits::READ, "read") {
                    return;
                }
                if let [VariableAccess::BlockNumber(n)] = r.variables.as_slice() {
                    return self.sn_next_block(*n, form);
                }
                self.long = None;
                self.sn_request(SnKind::Read, r.variables, None, form);
            }
            Apdu::WriteRequest(w) => {
                if self.allowed(bits::WRITE, "write") {
                    self.sn_write(SnKind::Write, w, form);
                }
            }
            Apdu::UnconfirmedWriteRequest(w) => {
                if self.allowed(bits::UNCONFIRMED_WRITE, "unconfirmed-write") {
                    self.sn_write(SnKind::Unconfirmed, w, form);
                }
            }
            other => {
                let e = proto("APDU", format!("a {} in a short-name association", other.kind()));
                self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
            }
        }
    }

    fn sn_write(&mut self, kind: SnKind, w: WriteRequest, form: Option<Form>) {
        if w.variables.len() != w.data.len() {
            let e = proto("list-of-data", format!("{} values for {} variable names", w.data.len(), w.variables.len()));
            self.push_event(ServerEvent::ProtocolError(e));
            let slots = vec![Some(TYPE_UNMATCHED); w.variables.len()];
            return self.sn_answer_now(kind, slots, form);
        }
        self.sn_request(kind, w.variables, Some(w.data), form);
    }

    fn sn_resolve(&self, variables: Vec<VariableAccess>, data: Option<Vec<Vec<u8>>>) -> Resolved {
        let mut out = Resolved::default();
        let mut values = data.map(|d| d.into_iter());
        for v in variables {
            let value = values.as_mut().and_then(Iterator::next);
            let (name, access) = match v {
                VariableAccess::Name(n) => (n, None),
                VariableAccess::Parameterized { name, selector, parameters } => {
                    (name, Some(SelectiveAccess { selector, parameters }))
                }
                _ => {
                    out.slots.push(Some(SCOPE_OF_ACCESS_VIOLATED));
                    continue;
                }
            };
            match self.names.target(name) {
                Some(SnTarget::Attribute(a)) => {
                    out.slots.push(None);
                    out.attributes.push((AttributeWithSelection { attribute: a, access }, value));
                }
                Some(SnTarget::Method(m)) => {
                    out.slots.push(None);
                    // The Read's parameter, or the Write's value (null-data: none).
                    let params = match value {
                        Some(v) => Some(v).filter(|v| v.as_slice() != [0]),
                        None => access.map(|a| a.parameters),
                    };
                    out.methods.push((m, params));
                }
                None => out.slots.push(Some(OBJECT_UNDEFINED)),
            }
        }
        out
    }

    fn sn_request(
        &mut self,
        kind: SnKind,
        variables: Vec<VariableAccess>,
        data: Option<Vec<Vec<u8>>>,
        form: Option<Form>,
    ) {
        let n = variables.len();
        if n > 1 && !self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references") {
            return;
        }
        let parameterized = variables.iter().any(|v| matches!(v, VariableAccess::Parameterized { .. }));
        if parameterized && !self.allowed(bits::PARAMETERIZED_ACCESS, "parameterized-access") {
            return;
        }
        let Resolved { slots, attributes, methods } = self.sn_resolve(variables, data);
        let request = match (attributes.is_empty(), methods.is_empty()) {
            (true, true) => return self.sn_answer_now(kind, slots, form),
            (false, false) => return self.sn_mixed(kind, slots, form),
            (false, true) => match kind {
                SnKind::Read => IncomingRequest::Get(attributes.into_iter().map(|(a, _)| a).collect()),
                _ => IncomingRequest::Set(attributes.into_iter().map(|(a, v)| (a, v.unwrap_or_default())).collect()),
            },
            (true, false) => IncomingRequest::Action(methods),
        };
        self.sn_emit(kind, slots, request, form);
    }

    /// A list mixing attributes and methods is not served: each name is
    /// answered scope-of-access-violated (undefined ones object-undefined).
    fn sn_mixed(&mut self, kind: SnKind, mut slots: Vec<Option<u8>>, form: Option<Form>) {
        let e = proto("variable-access-specification", "a list mixing attributes and methods".into());
        self.push_event(ServerEvent::ProtocolError(e));
        for s in slots.iter_mut().filter(|s| s.is_none()) {
            *s = Some(SCOPE_OF_ACCESS_VIOLATED);
        }
        self.sn_answer_now(kind, slots, form);
    }

    fn sn_emit(&mut self, kind: SnKind, slots: Vec<Option<u8>>, request: IncomingRequest, form: Option<Form>) {
        let id = self.next_id;
        self.next_id += 1;
        let (service, count) = (request.service(), request.len());
        let sn = Some(SnReply { kind, slots });
        self.reqs.push(SReq { id, invoke: 0, service, list: count > 1, count, form, last_block: None, sn });
        self.push_event(ServerEvent::Request { id, request });
    }

    /// Every name answered here (nothing for the shell).
    fn sn_answer_now(&mut self, kind: SnKind, slots: Vec<Option<u8>>, form: Option<Form>) {
        let codes: Vec<u8> = slots.into_iter().map(|s| s.unwrap_or(OTHER_REASON)).collect();
        match kind {
            SnKind::Read => {
                let results = codes.into_iter().map(ReadResult::DataAccessError).collect();
                self.sn_read_answer(ReadResponse { results }, form);
            }
            SnKind::Write => {
                let results = codes.into_iter().map(write_result).collect();
                self.answer(Apdu::WriteResponse(WriteResponse { results }), form);
            }
            SnKind::Unconfirmed => {}
        }
    }

    /// The shell's answer to an SN request.
    pub(super) fn sn_respond(&mut self, r: SReq, outcome: Outcome) {
        let Some(SnReply { kind, slots }) = r.sn else { return };
        let from_shell: Vec<(u8, Option<Vec<u8>>)> = match outcome {
            Outcome::Get(v) => v
                .into_iter()
                .map(|g| match g {
                    GetDataResult::Data(d) => (0, Some(d)),
                    GetDataResult::DataAccessResult(c) => (c, None),
                })
                .collect(),
            Outcome::Set(v) => v.into_iter().map(|c| (c, None)).collect(),
            Outcome::Action(v) => v
                .into_iter()
                .map(|ActionResult { result, return_data }| match return_data {
                    Some(GetDataResult::Data(d)) => (result, Some(d)),
                    Some(GetDataResult::DataAccessResult(c)) if result == 0 => (c, None),
                    _ => (result, None),
                })
                .collect(),
        };
        let mut from_shell: Vec<(u8, Option<Vec<u8>>)> = from_shell.into_iter().rev().collect();
        let mut merged = Vec::with_capacity(slots.len());
        for s in slots {
            merged.push(match s {
                Some(code) => (code, None),
                None => from_shell.pop().unwrap_or((OTHER_REASON, None)),
            });
        }
        match kind {
            SnKind::Read => {
                let results = merged
                    .into_iter()
                    .map(|(code, data)| match (code, data) {
                        (0, Some(d)) => ReadResult::Data(d),
                        (0, None) => ReadResult::Data(vec![0]),
                        (c, _) => ReadResult::DataAccessError(c),
                    })
                    .collect();
                self.sn_read_answer(ReadResponse { results }, r.form);
            }
            SnKind::Write => {
                let results = merged.into_iter().map(|(c, _)| write_result(c)).collect();
                self.answer(Apdu::WriteResponse(WriteResponse { results }), r.form);
            }
            SnKind::Unconfirmed => {}
        }
    }

    /// A ReadResponse: whole, or in data-block-results, or refused.
    fn sn_read_answer(&mut self, answer: ReadResponse, request_form: Option<Form>) {
        let form = self.answer_form(request_form);
        let apdu = Apdu::ReadResponse(answer.clone());
        let plain = apdu.encode();
        let wire = form.map_or(plain.len(), |f| ciphered_len(plain.len(), f));
        let limit = self.send_limit();
        if wire <= limit {
            return self.answer(apdu, request_form);
        }
        let body = match answer.results.as_slice() {
            [ReadResult::Data(d)] => d.clone(),
            _ => {
                let mut body = Vec::new();
                answer.encode_body(&mut body);
                body
            }
        };
        let header = block_header();
        match fit(limit, header, form) {
            Some(size) => {
                self.long = Some(LongAnswer { service: Service::Get, chunks: split(&body, size, size), sent: 0 });
                self.sn_send_block(1, request_form);
            }
            None => {
                let e = proto(
                    "answer",
                    format!("a Read answer of {wire} bytes: the client's {limit} leave no room for a block"),
                );
                self.push_event(ServerEvent::ProtocolError(e));
                let results = vec![ReadResult::DataAccessError(OTHER_REASON); answer.results.len()];
                self.answer(Apdu::ReadResponse(ReadResponse { results }), request_form);
            }
        }
    }

    /// block-number-access: the client got block `n`, the next one goes out.
    fn sn_next_block(&mut self, n: u16, form: Option<Form>) {
        let pending = self.long.as_ref().filter(|l| l.service == Service::Get).map(|l| l.sent);
        match pending {
            Some(sent) if u32::from(n) == sent => self.sn_send_block(sent + 1, form),
            _ => {
                self.long = None;
                let e = proto("block-number-access", format!("block {n} acknowledged, none of that number was sent"));
                self.push_event(ServerEvent::ProtocolError(e));
                let results = vec![ReadResult::DataAccessError(DATA_BLOCK_NUMBER_INVALID)];
                self.answer(Apdu::ReadResponse(ReadResponse { results }), form);
            }
        }
    }

    fn sn_send_block(&mut self, number: u32, form: Option<Form>) {
        let Some(l) = self.long.as_mut() else { return };
        let total = l.chunks.len() as u32;
        let raw_data = l.chunks.get((number as usize).saturating_sub(1)).cloned().unwrap_or_default();
        let last_block = number >= total;
        l.sent = number;
        if last_block {
            self.long = None;
        }
        let block_number = u16::try_from(number).unwrap_or(u16::MAX);
        let results = vec![ReadResult::DataBlock { last_block, block_number, raw_data }];
        self.answer(Apdu::ReadResponse(ReadResponse { results }), form);
    }
}

fn write_result(code: u8) -> WriteResult {
    match code {
        0 => WriteResult::Success,
        c => WriteResult::DataAccessError(c),
    }
}

/// The plain header of a ReadResponse data-block-result (without the raw data's length).
fn block_header() -> usize {
    let r =
        ReadResponse { results: vec![ReadResult::DataBlock { last_block: false, block_number: 1, raw_data: vec![] }] };
    Apdu::ReadResponse(r).encode().len() - 1
}
