//! The client's services: GET/SET/ACTION requests (normal or with-list by the
//! item count), SET/ACTION request blocks when the server's PDU size asks for
//! them (service blocks when agreed, else whole in GBT), and the answers:
//! datablocks and pblocks asked for one by one, results typed per item.

use std::collections::VecDeque;

use super::blocks::{fit, split, too_long, Reassembly, DATABLOCKS_CEILING, PBLOCKS_CEILING};
use super::cipher::{ciphered_len, len_prefix};
use super::client::{proto, ClientAssociation, ClientState, Pending};
use super::config::bits;
use super::types::{AttributeRef, MethodRef, Outcome, RequestError, RequestId, Service};
use crate::apdu::{
    self, ActionRequest, ActionResponse, ActionResult, Apdu, BlockResult, DataBlockSa, GetDataResult, GetRequest,
    GetResponse, SetRequest, SetResponse,
};
use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

pub(super) enum Body {
    Get(Vec<AttributeRef>),
    Set(Vec<(AttributeRef, Vec<u8>)>),
    Action(Vec<(MethodRef, Option<Vec<u8>>)>),
    /// reply_to_HLS_authentication with the server's challenge.
    Hls(Vec<u8>),
    /// A short-name Read/Write, built and resolved (`sn_client.rs`), and per
    /// requested item None (sent) or the result decided here (object-undefined).
    Sn(Vec<u8>, Vec<Option<u8>>),
}

pub(super) enum Phase {
    /// Waiting for its turn (or only just started).
    Queued,
    /// The request (or its last block) is out; the answer is awaited.
    Awaiting,
    /// Request blocks: block `sent` awaits its acknowledgement, `rest` follow.
    Sending { sent: u32, rest: VecDeque<Vec<u8>> },
    /// Answer blocks: `expected` is the next block number.
    Receiving { expected: u32, buf: Reassembly },
}

pub(super) struct Req {
    pub id: RequestId,
    pub service: Service,
    pub list: bool,
    pub count: usize,
    pub body: Body,
    /// Request blocks planned when the whole request does not fit.
    pub chunks: Option<Vec<Vec<u8>>>,
    /// invoke-id-and-priority once started.
    pub invoke: Option<u8>,
    pub phase: Phase,
    pub deadline: f64,
    pub hls: bool,
    pub retries: u8,
    /// The last invocation counter used for this request.
    pub counter: Option<u32>,
    /// Something of it went on the wire (a late answer is then possible).
    pub sent_any: bool,
}

fn check(conformance: u32, bit: u32, what: &str) -> Result<()> {
    if conformance & bit == 0 {
        return Err(proto("conformance", format!("{what} was not agreed in the association's conformance")));
    }
    Ok(())
}

fn data_block(last: bool, number: u32, raw: Vec<u8>) -> DataBlockSa {
    DataBlockSa { last_block: last, block_number: number, raw_data: raw }
}

/// The plain header of a block APDU: its encoding with empty data, minus the data's length byte.
fn header_of(apdu: Apdu) -> usize {
    apdu.encode().len() - 1
}

const DUMMY_INVOKE: u8 = 0xC1;

impl ClientAssociation {
    fn conformance(&self, service: &str) -> Result<u32> {
        match (self.state, &self.agreement) {
            (ClientState::Associated, Some(a)) => Ok(a.conformance),
            (s, _) => Err(proto("association state", format!("{service} needs an open association, it is {s:?}"))),
        }
    }

    /// The size of a plain APDU of `n` bytes on the wire.
    pub(super) fn wire_len(&self, n: usize) -> usize {
        match self.form() {
            Some(f) => ciphered_len(n, f),
            None => n,
        }
    }

    fn gbt_agreed(&self) -> bool {
        self.agreement.as_ref().is_some_and(|a| a.conformance & bits::GENERAL_BLOCK_TRANSFER != 0)
    }

    /// GET one attribute (normal) or several (with-list, when
    /// multiple-references was agreed). The answer is one `Outcome::Get`
    /// entry per attribute; datablocks are asked for and reassembled.
    pub fn get(&mut self, items: &[AttributeRef], now: f64) -> Result<RequestId> {
        if self.cfg.sn() {
            return self.sn_enqueue(Service::Get, Body::Get(items.to_vec()), now);
        }
        let conf = self.conformance("GET")?;
        self.check_items(conf, bits::GET, "get", items.len(), items.iter().any(|a| a.access.is_some()))?;
        let plain = get_request(DUMMY_INVOKE, items).encode();
        let wire = self.wire_len(plain.len());
        let limit = self.send_limit();
        if wire > limit && !self.gbt_agreed() {
            return Err(too_long(
                "GET request (the server's max receive PDU size; general-block-transfer not agreed)",
                wire,
                limit,
            ));
        }
        Ok(self.enqueue(Service::Get, items.len(), Body::Get(items.to_vec()), None, now))
    }

    /// SET attributes to raw A-XDR values (normal or with-list); a request
    /// longer than the server takes goes in datablocks (or in GBT when only
    /// GBT was agreed). One data-access-result per attribute.
    pub fn set(&mut self, items: &[(AttributeRef, Vec<u8>)], now: f64) -> Result<RequestId> {
        if self.cfg.sn() {
            return self.sn_enqueue(Service::Set, Body::Set(items.to_vec()), now);
        }
        let conf = self.conformance("SET")?;
        self.check_items(conf, bits::SET, "set", items.len(), items.iter().any(|(a, _)| a.access.is_some()))?;
        for (i, (_, v)) in items.iter().enumerate() {
            crate::axdr::decode(v).map_err(|e| {
                Error::new(Layer::Apdu, "SET value", 0, ErrorKind::Other(format!("item {i}: not one A-XDR value: {e}")))
            })?;
        }
        let list = items.len() > 1;
        let plain = set_request(DUMMY_INVOKE, items).encode();
        let raw = if list { sequence_of(items.iter().map(|(_, v)| v.as_slice())) } else { items[0].1.clone() };
        let attrs: Vec<AttributeRef> = items.iter().map(|(a, _)| a.clone()).collect();
        let first = |raw: Vec<u8>| match list {
            true => SetRequest::WithListAndFirstDatablock {
                invoke_id_and_priority: DUMMY_INVOKE,
                attributes: attrs.clone(),
                block: data_block(false, 1, raw),
            },
            false => SetRequest::WithFirstDatablock {
                invoke_id_and_priority: DUMMY_INVOKE,
                attribute: attrs[0].clone(),
                block: data_block(false, 1, raw),
            },
        };
        let next =
            SetRequest::WithDatablock { invoke_id_and_priority: DUMMY_INVOKE, block: data_block(false, 2, vec![]) };
        let headers = (header_of(Apdu::SetRequest(first(vec![]))), header_of(Apdu::SetRequest(next)));
        let chunks = self.plan_blocks(plain.len(), &raw, headers, bits::BLOCK_TRANSFER_WITH_SET, "SET")?;
        Ok(self.enqueue(Service::Set, items.len(), Body::Set(items.to_vec()), chunks, now))
    }

    /// ACTION: invoke methods with optional raw A-XDR parameters (normal or
    /// with-list); long parameters go in pblocks (or GBT), long return data is
    /// asked for pblock by pblock. One action result per method.
    pub fn action(&mut self, items: &[(MethodRef, Option<Vec<u8>>)], now: f64) -> Result<RequestId> {
        if self.cfg.sn() {
            return self.sn_enqueue(Service::Action, Body::Action(items.to_vec()), now);
        }
        let conf = self.conformance("ACTION")?;
        self.check_items(conf, bits::ACTION, "action", items.len(), false)?;
        for (i, (_, p)) in items.iter().enumerate() {
            if let Some(p) = p {
                crate::axdr::decode(p).map_err(|e| {
                    Error::new(
                        Layer::Apdu,
                        "ACTION parameters",
                        0,
                        ErrorKind::Other(format!("item {i}: not one A-XDR value: {e}")),
                    )
                })?;
            }
        }
        let list = items.len() > 1;
        let plain = action_request(DUMMY_INVOKE, items).encode();
        let raw = match list {
            true => sequence_of(items.iter().map(|(_, p)| p.as_deref().unwrap_or(&[0]))),
            false => items[0].1.clone().unwrap_or_default(),
        };
        let methods: Vec<MethodRef> = items.iter().map(|(m, _)| m.clone()).collect();
        let first = match list {
            true => ActionRequest::WithListAndFirstPblock {
                invoke_id_and_priority: DUMMY_INVOKE,
                methods,
                block: data_block(false, 1, vec![]),
            },
            false => ActionRequest::WithFirstPblock {
                invoke_id_and_priority: DUMMY_INVOKE,
                method: items[0].0.clone(),
                block: data_block(false, 1, vec![]),
            },
        };
        let next =
            ActionRequest::WithPblock { invoke_id_and_priority: DUMMY_INVOKE, block: data_block(false, 2, vec![]) };
        let headers = (header_of(Apdu::ActionRequest(first)), header_of(Apdu::ActionRequest(next)));
        let chunks = self.plan_blocks(plain.len(), &raw, headers, bits::BLOCK_TRANSFER_WITH_ACTION, "ACTION")?;
        Ok(self.enqueue(Service::Action, items.len(), Body::Action(items.to_vec()), chunks, now))
    }

    fn check_items(&self, conf: u32, bit: u32, name: &str, n: usize, access: bool) -> Result<()> {
        check(conf, bit, name)?;
        if n == 0 {
            return Err(proto("request", format!("{name}: no item")));
        }
        if n > 1 {
            check(conf, bits::MULTIPLE_REFERENCES, "multiple-references (with-list requests)")?;
        }
        if access {
            check(conf, bits::SELECTIVE_ACCESS, "selective-access")?;
        }
        Ok(())
    }

    /// None: the whole request fits (or goes in GBT); else the request blocks.
    fn plan_blocks(
        &self,
        plain: usize,
        raw: &[u8],
        (first, next): (usize, usize),
        bit: u32,
        what: &str,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let limit = self.send_limit();
        let wire = self.wire_len(plain);
        if wire <= limit {
            return Ok(None);
        }
        let conf = self.agreement.as_ref().map_or(0, |a| a.conformance);
        if conf & bit == 0 {
            if self.gbt_agreed() {
                return Ok(None);
            }
            return Err(too_long(
                "request (the server's max receive PDU size; neither its block transfer nor GBT agreed)",
                wire,
                limit,
            ));
        }
        let form = self.form();
        match (fit(limit, first, form), fit(limit, next, form)) {
            (Some(a), Some(b)) => Ok(Some(split(raw, a, b))),
            _ => Err(proto("max PDU size", format!("{what}: {limit} bytes leave no room for block data"))),
        }
    }

    pub(super) fn enqueue(
        &mut self,
        service: Service,
        count: usize,
        body: Body,
        chunks: Option<Vec<Vec<u8>>>,
        now: f64,
    ) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.reqs.push(Req {
            id,
            service,
            list: count > 1,
            count,
            body,
            chunks,
            invoke: None,
            phase: Phase::Queued,
            deadline: f64::INFINITY,
            hls: false,
            retries: 0,
            counter: None,
            sent_any: false,
        });
        self.pump(now);
        id
    }

    /// Start queued requests while the rules allow.
    pub(super) fn pump(&mut self, now: f64) {
        while self.can_start() {
            let Some(idx) = self.reqs.iter().position(|r| r.invoke.is_none()) else { return };
            self.start(idx, now);
        }
    }

    pub(super) fn start_hls(&mut self, stoc: Vec<u8>, now: f64) {
        let id = self.next_id;
        self.next_id += 1;
        self.reqs.push(Req {
            id,
            service: Service::Action,
            list: false,
            count: 1,
            body: Body::Hls(stoc),
            chunks: None,
            invoke: None,
            phase: Phase::Queued,
            deadline: now,
            hls: true,
            retries: 0,
            counter: None,
            sent_any: false,
        });
        self.start(self.reqs.len() - 1, now);
    }

    fn start(&mut self, idx: usize, now: f64) {
        let invoke = self.alloc_invoke();
        let timeout = self.cfg.response_timeout;
        let r = &mut self.reqs[idx];
        r.invoke = Some(invoke);
        r.deadline = now + timeout;
        let id = r.id;
        let plain = match (&r.body, r.chunks.take()) {
            (Body::Hls(stoc), _) => {
                r.phase = Phase::Awaiting;
                let stoc = stoc.clone();
                self.outbox.push_back(Pending::Hls { invoke, stoc, req: id });
                return self.flush();
            }
            (Body::Sn(plain, _), _) => {
                r.phase = Phase::Awaiting;
                let plain = plain.clone();
                return self.sn_send(plain, id);
            }
            (Body::Get(items), _) => get_request(invoke, items),
            (Body::Set(items), None) => set_request(invoke, items),
            (Body::Action(items), None) => action_request(invoke, items),
            (body, Some(chunks)) => {
                let mut rest: VecDeque<Vec<u8>> = chunks.into();
                let first = rest.pop_front().unwrap_or_default();
                let block = data_block(rest.is_empty(), 1, first);
                let apdu = match body {
                    Body::Set(items) if items.len() > 1 => Apdu::SetRequest(SetRequest::WithListAndFirstDatablock {
                        invoke_id_and_priority: invoke,
                        attributes: items.iter().map(|(a, _)| a.clone()).collect(),
                        block,
                    }),
                    Body::Set(items) => Apdu::SetRequest(SetRequest::WithFirstDatablock {
                        invoke_id_and_priority: invoke,
                        attribute: items[0].0.clone(),
                        block,
                    }),
                    Body::Action(items) if items.len() > 1 => {
                        Apdu::ActionRequest(ActionRequest::WithListAndFirstPblock {
                            invoke_id_and_priority: invoke,
                            methods: items.iter().map(|(m, _)| m.clone()).collect(),
                            block,
                        })
                    }
                    _ => Apdu::ActionRequest(ActionRequest::WithFirstPblock {
                        invoke_id_and_priority: invoke,
                        method: match body {
                            Body::Action(items) => items[0].0.clone(),
                            _ => super::client::HLS_METHOD,
                        },
                        block,
                    }),
                };
                r.phase = Phase::Sending { sent: 1, rest };
                self.send_request(apdu.encode(), id);
                return;
            }
        };
        r.phase = Phase::Awaiting;
        self.send_request(plain.encode(), id);
    }

    /// Queue one request APDU (ciphered on the way out when the association is).
    fn send_request(&mut self, plain: Vec<u8>, req: RequestId) {
        if self.ciphered() {
            self.outbox.push_back(Pending::Cipher { plain, req });
        } else {
            self.outbox.push_back(Pending::Plain { apdu: plain, req: Some(req) });
        }
        self.flush();
    }

    /// The next request block after `sent` was acknowledged.
    fn next_block(&mut self, idx: usize, acked: u32) -> std::result::Result<(), RequestError> {
        let r = &mut self.reqs[idx];
        let Phase::Sending { sent, rest } = &mut r.phase else {
            return Err(RequestError::Protocol(proto(
                "block acknowledgement",
                "no request block is awaiting one".into(),
            )));
        };
        if acked != *sent {
            let msg = format!("block {acked} acknowledged, block {sent} was sent");
            return Err(RequestError::Protocol(proto("block-number", msg)));
        }
        let Some(chunk) = rest.pop_front() else {
            return Err(RequestError::Protocol(proto(
                "block acknowledgement",
                "the last block was acknowledged as a middle one".into(),
            )));
        };
        *sent += 1;
        let block = data_block(rest.is_empty(), *sent, chunk);
        let invoke = r.invoke.unwrap_or(DUMMY_INVOKE);
        let apdu = match r.service {
            Service::Set => Apdu::SetRequest(SetRequest::WithDatablock { invoke_id_and_priority: invoke, block }),
            _ => Apdu::ActionRequest(ActionRequest::WithPblock { invoke_id_and_priority: invoke, block }),
        };
        let id = r.id;
        self.send_request(apdu.encode(), id);
        Ok(())
    }

    /// One answer block (datablock / pblock) of request `idx`: None while more follow.
    fn take_block(
        &mut self,
        idx: usize,
        last: bool,
        number: u32,
        data: &[u8],
    ) -> std::result::Result<Option<Vec<u8>>, RequestError> {
        let ceiling = self.cfg.max_block_transfer;
        let r = &mut self.reqs[idx];
        if !matches!(r.phase, Phase::Receiving { .. }) {
            r.phase = Phase::Receiving { expected: 1, buf: Reassembly::default() };
        }
        let Phase::Receiving { expected, buf } = &mut r.phase else {
            return Err(RequestError::Protocol(proto("block", "not receiving blocks".into())));
        };
        if number != *expected {
            let msg = format!("block {number} received, expected {expected}");
            return Err(RequestError::Protocol(proto("block-number", msg)));
        }
        let what = if r.service == Service::Get { DATABLOCKS_CEILING } else { PBLOCKS_CEILING };
        buf.push(data, ceiling, what, number).map_err(RequestError::Protocol)?;
        if last {
            return Ok(Some(std::mem::take(&mut buf.buf)));
        }
        *expected =
            number.checked_add(1).ok_or_else(|| RequestError::Protocol(proto("block-number", "past 2^32".into())))?;
        let invoke = r.invoke.unwrap_or(DUMMY_INVOKE);
        let apdu = match r.service {
            Service::Get => Apdu::GetRequest(GetRequest::Next { invoke_id_and_priority: invoke, block_number: number }),
            _ => {
                Apdu::ActionRequest(ActionRequest::NextPblock { invoke_id_and_priority: invoke, block_number: number })
            }
        };
        let id = r.id;
        self.send_request(apdu.encode(), id);
        Ok(None)
    }

    /// An answer (invoke id matched) to request `idx`.
    pub(super) fn on_answer(&mut self, idx: usize, answer: Apdu, now: f64) {
        let kind = answer.kind();
        let (service, list, count) = (self.reqs[idx].service, self.reqs[idx].list, self.reqs[idx].count);
        let sending = matches!(self.reqs[idx].phase, Phase::Sending { .. });
        let last_sent = matches!(&self.reqs[idx].phase, Phase::Sending { rest, .. } if rest.is_empty());
        let result: std::result::Result<Option<Outcome>, RequestError> = match (service, answer) {
            (Service::Get, Apdu::GetResponse(GetResponse::Normal { result, .. })) if !list => {
                Ok(Some(Outcome::Get(vec![result])))
            }
            (Service::Get, Apdu::GetResponse(GetResponse::WithList { results, .. })) if list => {
                counted(results, count).map(|v| Some(Outcome::Get(v)))
            }
            (Service::Get, Apdu::GetResponse(GetResponse::WithDatablock { last_block, block_number, result, .. })) => {
                match result {
                    BlockResult::DataAccessResult(r) => {
                        Ok(Some(Outcome::Get(vec![GetDataResult::DataAccessResult(r); count])))
                    }
                    BlockResult::RawData(d) => match self.take_block(idx, last_block, block_number, &d) {
                        Ok(None) => Ok(None),
                        Ok(Some(raw)) if list => {
                            decode_list(&raw, count, GetDataResult::decode).map(|v| Some(Outcome::Get(v)))
                        }
                        Ok(Some(raw)) => Ok(Some(Outcome::Get(vec![GetDataResult::Data(raw)]))),
                        Err(e) => Err(e),
                    },
                }
            }
            (Service::Set, Apdu::SetResponse(SetResponse::Normal { result, .. })) if !list => {
                Ok(Some(Outcome::Set(vec![result])))
            }
            (Service::Set, Apdu::SetResponse(SetResponse::WithList { results, .. })) if list && !sending => {
                counted(results, count).map(|v| Some(Outcome::Set(v)))
            }
            (Service::Set, Apdu::SetResponse(SetResponse::Datablock { block_number, .. })) if sending => {
                self.next_block(idx, block_number).map(|()| None)
            }
            (Service::Set, Apdu::SetResponse(SetResponse::LastDatablock { result, .. })) if sending => {
                Ok(Some(Outcome::Set(vec![result; count])))
            }
            (Service::Set, Apdu::SetResponse(SetResponse::LastDatablockWithList { results, .. }))
                if sending && list =>
            {
                counted(results, count).map(|v| Some(Outcome::Set(v)))
            }
            (Service::Action, Apdu::ActionResponse(ActionResponse::Normal { result, .. })) if !list || sending => {
                Ok(Some(Outcome::Action(vec![result; count])))
            }
            (Service::Action, Apdu::ActionResponse(ActionResponse::WithList { results, .. })) if list => {
                counted(results, count).map(|v| Some(Outcome::Action(v)))
            }
            (Service::Action, Apdu::ActionResponse(ActionResponse::NextPblock { block_number, .. })) if sending => {
                self.next_block(idx, block_number).map(|()| None)
            }
            (Service::Action, Apdu::ActionResponse(ActionResponse::WithPblock { block, .. }))
                if !sending || last_sent =>
            {
                match self.take_block(idx, block.last_block, block.block_number, &block.raw_data) {
                    Ok(None) => Ok(None),
                    Ok(Some(raw)) if list => {
                        decode_list(&raw, count, decode_action_result).map(|v| Some(Outcome::Action(v)))
                    }
                    Ok(Some(raw)) => action_pblocks(raw).map(|r| Some(Outcome::Action(vec![r]))),
                    Err(e) => Err(e),
                }
            }
            (s, _) => {
                let form = if list { "with-list " } else { "" };
                let msg = format!("a {kind} answering a {form}{} request", s.name());
                Err(RequestError::Protocol(proto("answer", msg)))
            }
        };
        match result {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                self.finish(idx, Ok(outcome));
                self.pump(now);
            }
            Err(e) => {
                self.finish(idx, Err(e));
                self.pump(now);
            }
        }
    }
}

fn get_request(invoke: u8, items: &[AttributeRef]) -> Apdu {
    Apdu::GetRequest(match items {
        [one] => GetRequest::Normal { invoke_id_and_priority: invoke, attribute: one.clone() },
        _ => GetRequest::WithList { invoke_id_and_priority: invoke, attributes: items.to_vec() },
    })
}

fn set_request(invoke: u8, items: &[(AttributeRef, Vec<u8>)]) -> Apdu {
    Apdu::SetRequest(match items {
        [(a, v)] => SetRequest::Normal { invoke_id_and_priority: invoke, attribute: a.clone(), value: v.clone() },
        _ => SetRequest::WithList {
            invoke_id_and_priority: invoke,
            attributes: items.iter().map(|(a, _)| a.clone()).collect(),
            values: items.iter().map(|(_, v)| v.clone()).collect(),
        },
    })
}

fn action_request(invoke: u8, items: &[(MethodRef, Option<Vec<u8>>)]) -> Apdu {
    Apdu::ActionRequest(match items {
        [(m, p)] => ActionRequest::Normal { invoke_id_and_priority: invoke, method: m.clone(), parameters: p.clone() },
        _ => ActionRequest::WithList {
            invoke_id_and_priority: invoke,
            methods: items.iter().map(|(m, _)| m.clone()).collect(),
            parameters: items.iter().map(|(_, p)| p.clone().unwrap_or_else(|| vec![0])).collect(),
        },
    })
}

/// SEQUENCE OF (already encoded) elements: A-XDR count, then the elements.
pub(super) fn sequence_of<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(len_prefix(items.len()));
    crate::axdr::write_length(&mut out, items.len());
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

fn counted<T>(v: Vec<T>, count: usize) -> std::result::Result<Vec<T>, RequestError> {
    if v.len() != count {
        let msg = format!("{} results for {count} items", v.len());
        return Err(RequestError::Protocol(proto("result list", msg)));
    }
    Ok(v)
}

/// A reassembled SEQUENCE OF `T` (the with-list answer in blocks).
pub(super) fn decode_list<T>(
    raw: &[u8],
    count: usize,
    item: impl Fn(&mut Reader<'_>) -> Result<T>,
) -> std::result::Result<Vec<T>, RequestError> {
    let mut r = Reader::new(raw, Layer::Apdu);
    let parse = |r: &mut Reader<'_>| -> Result<Vec<T>> {
        let n = r.bounded_length("result list", 1)?;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(item(r)?);
        }
        if !r.is_empty() {
            return Err(r.error("result list", ErrorKind::Trailing(r.remaining())));
        }
        Ok(v)
    };
    let v = parse(&mut r).map_err(RequestError::Protocol)?;
    counted(v, count)
}

pub(super) fn decode_action_result(r: &mut Reader<'_>) -> Result<ActionResult> {
    apdu::action::ActionResult::decode(r)
}

/// An ACTION answer in pblocks carries Action-Response-With-Optional-Data;
/// some meters (and the Python simulator) put only the return Data there.
fn action_pblocks(raw: Vec<u8>) -> std::result::Result<ActionResult, RequestError> {
    let mut r = Reader::new(&raw, Layer::Apdu);
    if let Ok(a) = decode_action_result(&mut r) {
        if r.is_empty() {
            return Ok(a);
        }
    }
    crate::axdr::decode(&raw).map_err(RequestError::Protocol)?;
    Ok(ActionResult { result: 0, return_data: Some(GetDataResult::Data(raw)) })
}
