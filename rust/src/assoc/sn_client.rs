//! The client's short-name services: `get`/`set`/`action` of an SN
//! association become ReadRequest / WriteRequest APDUs on the short names of
//! the table (`sn_names.rs`), and their answers the same typed [`Outcome`]s
//! as with logical names.
//!
//! * GET: a ReadRequest of `variable-name`s (`parameterized-access` for
//!   selective access: selector and parameters as they are). One Read at a
//!   time (SN has no invoke id): requests queue behind each other.
//! * SET: a WriteRequest; ACTION: a WriteRequest on the method's short name
//!   with its parameters (null-data when none), as IEC 62056-5-3 maps
//!   methods without return data; the write result is the action result
//!   (both tables share their codes).
//! * A Read answer in blocks (`data-block-result`) is asked for block by block
//!   with `block-number-access` naming the last block received (as the LN
//!   get-request-next does) and reassembled under `max_block_transfer`; the
//!   reassembled raw data is taken as the whole ReadResponse list
//!   (`count, results`), or, for a single item, as the bare value when it is
//!   exactly one A-XDR value (the form Gurux and our simulator send).
//! * Ciphering is the association's (glo-/ded- read/write tags 0x25/0x26,
//!   0x2C/0x2D, …): the SN APDUs go through the same outgoing pipeline.
//! * A request too long for the server's PDU size is refused at once (write
//!   blocks are not sent).
//! * SN answers carry no invoke id: after a request that went out is
//!   abandoned (timeout, cancel) no new request starts until its late answer
//!   has come (and is dropped, `LateAnswerDropped`); the caller releases and
//!   associates again when it does not come.

use super::blocks::{too_long, DATABLOCKS_CEILING};
use super::client::{proto, ClientAssociation, ClientState, Pending};
use super::client_req::{Body, Phase};
use super::config::bits;
use super::sn_names::ShortNames;
use super::types::{AttributeRef, Outcome, RequestError, RequestId, Service};
use crate::apdu::sn::{
    ReadRequest, ReadResponse, ReadResult, VariableAccess, WriteRequest, WriteResponse, WriteResult,
    TAG_UNCONFIRMED_WRITE_REQUEST,
};
use crate::apdu::{ActionResult, Apdu, GetDataResult};
use crate::axdr::Reader;
use crate::error::{ErrorKind, Layer, Result};

/// The request APDU (None when nothing is left to send) and, per item, the
/// result decided here (None: from the answer).
type SnPlan = (Option<Vec<u8>>, Vec<Option<u8>>);

fn check(conformance: u32, bit: u32, what: &str) -> Result<()> {
    if conformance & bit == 0 {
        return Err(proto("conformance", format!("{what} was not agreed in the association's conformance")));
    }
    Ok(())
}

fn one_value(v: &[u8], what: &'static str, i: usize) -> Result<()> {
    crate::axdr::decode(v).map(|_| ()).map_err(|e| proto(what, format!("item {i}: not one A-XDR value: {e}")))
}

impl ClientAssociation {
    /// The short-name table in use (the current association only until
    /// [`Self::set_short_names`]).
    pub fn short_names(&self) -> &ShortNames {
        &self.names
    }

    /// Install the short names of the meter (from its object list).
    pub fn set_short_names(&mut self, names: ShortNames) {
        self.names = names;
    }

    fn sn_conformance(&self, service: &str) -> Result<u32> {
        match (self.state, &self.agreement) {
            (ClientState::Associated, Some(a)) => Ok(a.conformance),
            (s, _) => Err(proto("association state", format!("{service} needs an open association, it is {s:?}"))),
        }
    }

    fn sn_variable(&self, a: &AttributeRef) -> Result<VariableAccess> {
        let name = self.names.attribute(&a.attribute)?;
        Ok(match &a.access {
            None => VariableAccess::Name(name),
            Some(s) => VariableAccess::Parameterized { name, selector: s.selector, parameters: s.parameters.clone() },
        })
    }

    /// A GET/SET/ACTION of an SN association: checked and resolved now (a
    /// name the meter's object list does not have is object-undefined in its
    /// place, as the meter would answer it; with nothing left to send the
    /// answer is reported at once), sent in its turn.
    pub(super) fn sn_enqueue(&mut self, service: Service, body: Body, now: f64) -> Result<RequestId> {
        if self.abandoned != 0 {
            return Err(proto(
                "association",
                "a short-name request was abandoned (timeout or cancel) after it went out and its \
                 answer has not come: a late answer could not be told from the next one (SN has no \
                 invoke id); release and associate again"
                    .into(),
            ));
        }
        let (plain, slots) = self.sn_request(service, &body)?;
        let sent = slots.iter().filter(|s| s.is_none()).count();
        match plain {
            Some(plain) => Ok(self.enqueue(service, sent, Body::Sn(plain, slots), None, now)),
            None => {
                let id = self.next_id;
                self.next_id += 1;
                let outcome = merge(empty(service), &slots);
                self.push_event(super::types::ClientEvent::Response { id, result: Ok(outcome) });
                Ok(id)
            }
        }
    }

    fn sn_request(&self, service: Service, body: &Body) -> Result<SnPlan> {
        let conf = self.sn_conformance(service.name())?;
        let n = match body {
            Body::Get(v) => v.len(),
            Body::Set(v) => v.len(),
            Body::Action(v) => v.len(),
            Body::Hls(_) | Body::Sn(..) => {
                return Err(proto("request", "HLS-GMAC is not supported with short names".into()))
            }
        };
        if n == 0 {
            return Err(proto("request", format!("{}: no item", service.name())));
        }
        if n > 1 {
            check(conf, bits::MULTIPLE_REFERENCES, "multiple-references (several names in one Read/Write)")?;
        }
        let mut slots = Vec::with_capacity(n);
        let mut variables = Vec::with_capacity(n);
        let mut data = Vec::with_capacity(n);
        let mut lacks = |class_id: u16, obis: &[u8; 6]| {
            let missing = self.names.lacks(class_id, obis);
            slots.push(missing.then_some(OBJECT_UNDEFINED));
            missing
        };
        let apdu = match body {
            Body::Get(items) => {
                check(conf, bits::READ, "read")?;
                if items.iter().any(|a| a.access.is_some()) {
                    check(conf, bits::PARAMETERIZED_ACCESS, "parameterized-access (selective access)")?;
                }
                for a in items {
                    if !lacks(a.attribute.class_id, &a.attribute.obis) {
                        variables.push(self.sn_variable(a)?);
                    }
                }
                Apdu::ReadRequest(ReadRequest { variables })
            }
            Body::Set(items) => {
                check(conf, bits::WRITE, "write")?;
                for (i, (a, v)) in items.iter().enumerate() {
                    if a.access.is_some() {
                        return Err(proto("request", "a Write has no selective access".into()));
                    }
                    one_value(v, "SET value", i)?;
                    if !lacks(a.attribute.class_id, &a.attribute.obis) {
                        variables.push(self.sn_variable(a)?);
                        data.push(v.clone());
                    }
                }
                Apdu::WriteRequest(WriteRequest { variables, data })
            }
            Body::Action(items) => {
                check(conf, bits::WRITE, "write (methods are invoked with Write)")?;
                for (i, (m, p)) in items.iter().enumerate() {
                    if let Some(p) = p {
                        one_value(p, "ACTION parameters", i)?;
                    }
                    if !lacks(m.class_id, &m.obis) {
                        variables.push(VariableAccess::Name(self.names.method(m)?));
                        data.push(p.clone().unwrap_or_else(|| vec![0]));
                    }
                }
                Apdu::WriteRequest(WriteRequest { variables, data })
            }
            Body::Hls(_) | Body::Sn(..) => unreachable!("refused above"),
        };
        if slots.iter().all(Option::is_some) {
            return Ok((None, slots));
        }
        let plain = apdu.encode();
        let wire = self.wire_len(plain.len());
        let limit = self.send_limit();
        if wire > limit {
            return Err(too_long("SN request (the server's max receive PDU size)", wire, limit));
        }
        Ok((Some(plain), slots))
    }

    /// UnconfirmedWriteRequest: write attributes without an answer. The id
    /// names nothing that will be answered (no event follows it).
    pub fn unconfirmed_write(&mut self, items: &[(AttributeRef, Vec<u8>)]) -> Result<RequestId> {
        if !self.cfg.sn() {
            return Err(proto("request", "unconfirmed-write is a short-name service (referencing ln)".into()));
        }
        let conf = self.sn_conformance("unconfirmed-write")?;
        check(conf, bits::UNCONFIRMED_WRITE, "unconfirmed-write")?;
        if items.is_empty() {
            return Err(proto("request", "unconfirmed-write: no item".into()));
        }
        if items.len() > 1 {
            check(conf, bits::MULTIPLE_REFERENCES, "multiple-references (several names in one Write)")?;
        }
        for (i, (_, v)) in items.iter().enumerate() {
            one_value(v, "SET value", i)?;
        }
        let variables = items.iter().map(|(a, _)| self.sn_variable(a)).collect::<Result<Vec<_>>>()?;
        let w = WriteRequest { variables, data: items.iter().map(|(_, v)| v.clone()).collect() };
        let mut plain = Vec::new();
        w.encode(TAG_UNCONFIRMED_WRITE_REQUEST, &mut plain);
        let id = self.next_id;
        self.next_id += 1;
        if self.ciphered() {
            self.outbox.push_back(Pending::Cipher { plain, req: id });
        } else {
            self.outbox.push_back(Pending::Plain { apdu: plain, req: None });
        }
        self.flush();
        Ok(id)
    }

    /// A ReadResponse / WriteResponse: the answer of the request in flight.
    pub(super) fn sn_answer(&mut self, answer: Apdu, authenticated: bool, now: f64) {
        let Some(idx) = self.oldest() else {
            if self.abandoned != 0 {
                // The late answer of the abandoned request: in step again.
                self.abandoned = 0;
                self.stats.late_answers_dropped += 1;
                return self.push_event(super::types::ClientEvent::LateAnswerDropped { invoke_id: 0 });
            }
            return self.stray(proto("APDU", format!("a {} but no request is waiting", answer.kind())));
        };
        if authenticated {
            if let Some(c) = self.reqs[idx].counter {
                self.confirm(c);
            }
        }
        let rid = self.reqs[idx].id;
        self.touch(Some(rid), now);
        let (service, count) = (self.reqs[idx].service, self.reqs[idx].count);
        let slots = match &self.reqs[idx].body {
            Body::Sn(_, slots) => slots.clone(),
            _ => Vec::new(),
        };
        let result: std::result::Result<Option<Outcome>, RequestError> = match (service, answer) {
            (Service::Get, Apdu::ReadResponse(r)) => self.sn_read_answer(idx, r, count),
            (Service::Set, Apdu::WriteResponse(w)) => write_codes(w, count).map(|c| Some(Outcome::Set(c))),
            (Service::Action, Apdu::WriteResponse(w)) => write_codes(w, count).map(|c| {
                Some(Outcome::Action(c.into_iter().map(|result| ActionResult { result, return_data: None }).collect()))
            }),
            (s, a) => {
                let msg = format!("a {} answering a {} request", a.kind(), s.name());
                Err(RequestError::Protocol(proto("answer", msg)))
            }
        };
        match result {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                self.finish(idx, Ok(merge(outcome, &slots)));
                self.pump(now);
            }
            Err(e) => {
                self.finish(idx, Err(e));
                self.pump(now);
            }
        }
    }

    fn sn_read_answer(
        &mut self,
        idx: usize,
        r: ReadResponse,
        count: usize,
    ) -> std::result::Result<Option<Outcome>, RequestError> {
        if let [ReadResult::DataBlock { last_block, block_number, raw_data }] = r.results.as_slice() {
            return match self.sn_block(idx, *last_block, *block_number, raw_data)? {
                None => Ok(None),
                Some(raw) => reassembled(&raw, count).map(|v| Some(Outcome::Get(v))),
            };
        }
        if matches!(self.reqs[idx].phase, Phase::Receiving { .. }) {
            if let [ReadResult::DataAccessError(code)] = r.results.as_slice() {
                return Ok(Some(Outcome::Get(vec![GetDataResult::DataAccessResult(*code); count])));
            }
        }
        read_results(r.results, count).map(|v| Some(Outcome::Get(v)))
    }

    /// One block of a Read answer: the next is asked for with block-number-access.
    fn sn_block(
        &mut self,
        idx: usize,
        last: bool,
        number: u16,
        data: &[u8],
    ) -> std::result::Result<Option<Vec<u8>>, RequestError> {
        let ceiling = self.cfg.max_block_transfer;
        let r = &mut self.reqs[idx];
        if !matches!(r.phase, Phase::Receiving { .. }) {
            // The first block sets the numbering (some meters count from 0).
            r.phase = Phase::Receiving { expected: u32::from(number), buf: Default::default() };
        }
        let Phase::Receiving { expected, buf } = &mut r.phase else {
            return Err(RequestError::Protocol(proto("data-block-result", "not receiving blocks".into())));
        };
        if u32::from(number) != *expected {
            let msg = format!("block {number} received, expected {expected}");
            return Err(RequestError::Protocol(proto("block-number", msg)));
        }
        buf.push(data, ceiling, DATABLOCKS_CEILING, u32::from(number)).map_err(RequestError::Protocol)?;
        if last {
            return Ok(Some(std::mem::take(&mut buf.buf)));
        }
        if number == u16::MAX {
            return Err(RequestError::Protocol(proto("block-number", "past 65535".into())));
        }
        *expected += 1;
        let id = r.id;
        let next = Apdu::ReadRequest(ReadRequest { variables: vec![VariableAccess::BlockNumber(number)] });
        self.sn_send(next.encode(), id);
        Ok(None)
    }

    /// Queue one SN request APDU (ciphered when the association is).
    pub(super) fn sn_send(&mut self, plain: Vec<u8>, req: RequestId) {
        if self.ciphered() {
            self.outbox.push_back(Pending::Cipher { plain, req });
        } else {
            self.outbox.push_back(Pending::Plain { apdu: plain, req: Some(req) });
        }
        self.flush();
    }
}

const OBJECT_UNDEFINED: u8 = 4;

fn empty(service: Service) -> Outcome {
    match service {
        Service::Get => Outcome::Get(Vec::new()),
        Service::Set => Outcome::Set(Vec::new()),
        Service::Action => Outcome::Action(Vec::new()),
    }
}

/// The answer to the names sent, with the results decided here put back in place.
fn merge(outcome: Outcome, slots: &[Option<u8>]) -> Outcome {
    if slots.iter().all(Option::is_none) {
        return outcome;
    }
    fn fill<T>(got: Vec<T>, slots: &[Option<u8>], local: impl Fn(u8) -> T) -> Vec<T> {
        let mut got = got.into_iter();
        slots
            .iter()
            .filter_map(|s| match s {
                Some(code) => Some(local(*code)),
                None => got.next(),
            })
            .collect()
    }
    match outcome {
        Outcome::Get(v) => Outcome::Get(fill(v, slots, GetDataResult::DataAccessResult)),
        Outcome::Set(v) => Outcome::Set(fill(v, slots, |c| c)),
        Outcome::Action(v) => Outcome::Action(fill(v, slots, |result| ActionResult { result, return_data: None })),
    }
}

fn counted<T>(v: Vec<T>, count: usize) -> std::result::Result<Vec<T>, RequestError> {
    if v.len() != count {
        let msg = format!("{} results for {count} items", v.len());
        return Err(RequestError::Protocol(proto("result list", msg)));
    }
    Ok(v)
}

fn read_results(results: Vec<ReadResult>, count: usize) -> std::result::Result<Vec<GetDataResult>, RequestError> {
    let v = counted(results, count)?;
    v.into_iter()
        .map(|r| match r {
            ReadResult::Data(d) => Ok(GetDataResult::Data(d)),
            ReadResult::DataAccessError(c) => Ok(GetDataResult::DataAccessResult(c)),
            other => Err(RequestError::Protocol(proto("read-data-result", format!("{other:?} in a list answer")))),
        })
        .collect()
}

fn write_codes(w: WriteResponse, count: usize) -> std::result::Result<Vec<u8>, RequestError> {
    counted(w.results, count)?
        .into_iter()
        .map(|r| match r {
            WriteResult::BlockNumber(n) => Err(RequestError::Protocol(proto(
                "write-result",
                format!("block-number {n}: no Write went out in blocks"),
            ))),
            other => Ok(other.code().unwrap_or(250)),
        })
        .collect()
}

/// The raw data of a Read answer in blocks: the ReadResponse list, or (one
/// item) the bare value.
fn reassembled(raw: &[u8], count: usize) -> std::result::Result<Vec<GetDataResult>, RequestError> {
    if count == 1 && crate::axdr::decode(raw).is_ok() {
        return Ok(vec![GetDataResult::Data(raw.to_vec())]);
    }
    let mut r = Reader::new(raw, Layer::Apdu);
    let list = ReadResponse::decode(&mut r).and_then(|l| {
        if r.is_empty() {
            Ok(l)
        } else {
            Err(r.error("reassembled Read answer", ErrorKind::Trailing(r.remaining())))
        }
    });
    let list = list.map_err(|e| {
        RequestError::Protocol(proto(
            "reassembled Read answer",
            format!("neither a ReadResponse list nor one value: {e}"),
        ))
    })?;
    read_results(list.results, count)
}
