//! The server's services: each complete request (SET/ACTION blocks
//! reassembled) becomes a [`ServerEvent::Request`]; [`ServerAssociation::respond`]
//! turns the shell's [`Outcome`] into the answer, in datablocks / pblocks
//! (asked for by the client) or GBT when it does not fit the client's PDU
//! size, with a refusal result when neither was agreed. What the negotiated
//! conformance does not allow is refused with an exception-response.

use super::blocks::{fit, split, Reassembly, DATABLOCKS_CEILING, PBLOCKS_CEILING};
use super::cipher::{ciphered_len, Form};
use super::client::HLS_METHOD;
use super::client_req::sequence_of;
use super::config::bits;
use super::server::{
    proto, ServerAssociation, ServerState, OPERATION_NOT_POSSIBLE, SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED,
};
use super::types::{AttributeRef, IncomingRequest, MethodRef, Outcome, RequestId, ServerEvent, Service};
use crate::apdu::{
    ActionRequest, ActionResponse, ActionResult, Apdu, BlockResult, DataBlockSa, GetDataResult, GetRequest,
    GetResponse, SetRequest, SetResponse,
};
use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

// data-access-result / action-result values used here
const TYPE_UNMATCHED: u8 = 12;
const NO_LONG_IN_PROGRESS: u8 = 16; // no-long-get / no-long-action-in-progress
const NO_LONG_SET_IN_PROGRESS: u8 = 18;
const LONG_SET_ABORTED: u8 = 17;
const LONG_ACTION_ABORTED: u8 = 15;
const DATA_BLOCK_NUMBER_INVALID: u8 = 19;
const OTHER_REASON: u8 = 250;

/// A request handed to the shell, awaiting `respond`.
pub(super) struct SReq {
    pub id: RequestId,
    pub invoke: u8,
    pub service: Service,
    pub list: bool,
    pub count: usize,
    pub form: Option<Form>,
    /// The number of the last request block, when it came in blocks.
    pub last_block: Option<u32>,
    /// A short-name Read/Write: how to answer it (`sn_server.rs`).
    pub sn: Option<super::sn_server::SnReply>,
}

/// An answer going out in datablocks / pblocks, one per next-block request.
pub(super) struct LongAnswer {
    pub service: Service,
    pub chunks: Vec<Vec<u8>>,
    /// The last block number sent.
    pub sent: u32,
}

pub(super) enum Target {
    Attributes(Vec<AttributeRef>),
    Methods(Vec<MethodRef>),
}

/// A SET/ACTION request arriving in blocks.
pub(super) struct BlockIn {
    pub service: Service,
    pub target: Target,
    pub list: bool,
    pub buf: Reassembly,
    pub next: u32,
}

fn data_block(last: bool, number: u32, raw: Vec<u8>) -> DataBlockSa {
    DataBlockSa { last_block: last, block_number: number, raw_data: raw }
}

/// A SEQUENCE OF Data as the raw bytes of each value.
fn sequence_of_data(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader::new(raw, Layer::Apdu);
    let n = r.bounded_length("SEQUENCE OF Data", 1)?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let start = r.pos();
        crate::axdr::decode_from(&mut r)?;
        out.push(raw.get(start..r.pos()).unwrap_or_default().to_vec());
    }
    if !r.is_empty() {
        return Err(r.error("SEQUENCE OF Data", ErrorKind::Trailing(r.remaining())));
    }
    Ok(out)
}

fn get_response(invoke: u8, list: bool, results: Vec<GetDataResult>) -> Apdu {
    Apdu::GetResponse(match (list, results.len()) {
        (false, 1) => {
            let result = results.into_iter().next().unwrap_or(GetDataResult::DataAccessResult(OTHER_REASON));
            GetResponse::Normal { invoke_id_and_priority: invoke, result }
        }
        _ => GetResponse::WithList { invoke_id_and_priority: invoke, results },
    })
}

fn action_response(invoke: u8, list: bool, results: Vec<ActionResult>) -> Apdu {
    Apdu::ActionResponse(match (list, results.len()) {
        (false, 1) => {
            let result = results.into_iter().next().unwrap_or(ActionResult { result: OTHER_REASON, return_data: None });
            ActionResponse::Normal { invoke_id_and_priority: invoke, result }
        }
        _ => ActionResponse::WithList { invoke_id_and_priority: invoke, results },
    })
}

fn encoded<T>(items: &[T], enc: impl Fn(&T, &mut Vec<u8>)) -> Vec<Vec<u8>> {
    items
        .iter()
        .map(|x| {
            let mut v = Vec::new();
            enc(x, &mut v);
            v
        })
        .collect()
}

impl ServerAssociation {
    pub(super) fn allowed(&mut self, bit: u32, what: &str) -> bool {
        if self.conformance() & bit != 0 {
            return true;
        }
        let e = proto("conformance", format!("{what} was not agreed in the association's conformance"));
        self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
        false
    }

    fn emit(&mut self, invoke: u8, request: IncomingRequest, list: bool, form: Option<Form>, last_block: Option<u32>) {
        let id = self.next_id;
        self.next_id += 1;
        let (service, count) = (request.service(), request.len());
        self.reqs.push(SReq { id, invoke, service, list, count, form, last_block, sn: None });
        self.push_event(ServerEvent::Request { id, request });
    }

    /// A decoded (deciphered) request.
    pub(super) fn dispatch(&mut self, apdu: Apdu, form: Option<Form>) {
        let hls_reply = matches!(&apdu, Apdu::ActionRequest(ActionRequest::Normal { method, .. }) if *method == HLS_METHOD)
            && self.agreement.as_ref().is_some_and(|a| a.mechanism == 5);
        if self.state == ServerState::AwaitingHls && !hls_reply {
            let e = proto(
                "association",
                format!("a {} before HLS pass 3 (only reply_to_HLS_authentication is served)", apdu.kind()),
            );
            return self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
        }
        if self.cfg.sn() {
            return self.sn_dispatch(apdu, form);
        }
        let sel = |a: &AttributeRef| a.access.is_some();
        match apdu {
            Apdu::GetRequest(GetRequest::Normal { invoke_id_and_priority: i, attribute }) => {
                if self.allowed(bits::GET, "get")
                    && (!sel(&attribute) || self.allowed(bits::SELECTIVE_ACCESS, "selective-access"))
                {
                    self.long = None;
                    self.emit(i, IncomingRequest::Get(vec![attribute]), false, form, None);
                }
            }
            Apdu::GetRequest(GetRequest::WithList { invoke_id_and_priority: i, attributes }) => {
                if self.allowed(bits::GET, "get")
                    && self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references")
                    && (!attributes.iter().any(sel) || self.allowed(bits::SELECTIVE_ACCESS, "selective-access"))
                {
                    self.long = None;
                    self.emit(i, IncomingRequest::Get(attributes), true, form, None);
                }
            }
            Apdu::GetRequest(GetRequest::Next { invoke_id_and_priority: i, block_number }) => {
                if self.allowed(bits::BLOCK_TRANSFER_WITH_GET, "block-transfer-with-get-or-read") {
                    self.next_block(Service::Get, i, block_number, form);
                }
            }
            Apdu::SetRequest(SetRequest::Normal { invoke_id_and_priority: i, attribute, value }) => {
                if self.allowed(bits::SET, "set")
                    && (!sel(&attribute) || self.allowed(bits::SELECTIVE_ACCESS, "selective-access"))
                {
                    self.emit(i, IncomingRequest::Set(vec![(attribute, value)]), false, form, None);
                }
            }
            Apdu::SetRequest(SetRequest::WithList { invoke_id_and_priority: i, attributes, values }) => {
                if self.allowed(bits::SET, "set") && self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references") {
                    if attributes.len() != values.len() {
                        let results = vec![TYPE_UNMATCHED; attributes.len()];
                        let r = SetResponse::WithList { invoke_id_and_priority: i, results };
                        return self.answer(Apdu::SetResponse(r), form);
                    }
                    self.emit(i, IncomingRequest::Set(attributes.into_iter().zip(values).collect()), true, form, None);
                }
            }
            Apdu::SetRequest(SetRequest::WithFirstDatablock { invoke_id_and_priority: i, attribute, block }) => {
                self.first_block(Service::Set, i, Target::Attributes(vec![attribute]), false, block, form);
            }
            Apdu::SetRequest(SetRequest::WithListAndFirstDatablock {
                invoke_id_and_priority: i,
                attributes,
                block,
            }) => {
                if self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references") {
                    self.first_block(Service::Set, i, Target::Attributes(attributes), true, block, form);
                }
            }
            Apdu::SetRequest(SetRequest::WithDatablock { invoke_id_and_priority: i, block }) => {
                if self.allowed(bits::BLOCK_TRANSFER_WITH_SET, "block-transfer-with-set-or-write") {
                    self.request_block(Service::Set, i, block, form);
                }
            }
            Apdu::ActionRequest(ActionRequest::Normal { invoke_id_and_priority: i, method, parameters }) => {
                if hls_reply {
                    return self.on_hls_reply(i, parameters, form);
                }
                if self.allowed(bits::ACTION, "action") {
                    self.emit(i, IncomingRequest::Action(vec![(method, parameters)]), false, form, None);
                }
            }
            Apdu::ActionRequest(ActionRequest::WithList { invoke_id_and_priority: i, methods, parameters }) => {
                if self.allowed(bits::ACTION, "action")
                    && self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references")
                {
                    if methods.len() != parameters.len() {
                        let results = vec![ActionResult { result: TYPE_UNMATCHED, return_data: None }; methods.len()];
                        return self.answer(action_response(i, true, results), form);
                    }
                    let items = methods.into_iter().zip(parameters.into_iter().map(Some)).collect();
                    self.emit(i, IncomingRequest::Action(items), true, form, None);
                }
            }
            Apdu::ActionRequest(ActionRequest::WithFirstPblock { invoke_id_and_priority: i, method, block }) => {
                self.first_block(Service::Action, i, Target::Methods(vec![method]), false, block, form);
            }
            Apdu::ActionRequest(ActionRequest::WithListAndFirstPblock {
                invoke_id_and_priority: i,
                methods,
                block,
            }) => {
                if self.allowed(bits::MULTIPLE_REFERENCES, "multiple-references") {
                    self.first_block(Service::Action, i, Target::Methods(methods), true, block, form);
                }
            }
            Apdu::ActionRequest(ActionRequest::WithPblock { invoke_id_and_priority: i, block }) => {
                if self.allowed(bits::BLOCK_TRANSFER_WITH_ACTION, "block-transfer-with-action") {
                    self.request_block(Service::Action, i, block, form);
                }
            }
            Apdu::ActionRequest(ActionRequest::NextPblock { invoke_id_and_priority: i, block_number }) => {
                if self.allowed(bits::BLOCK_TRANSFER_WITH_ACTION, "block-transfer-with-action") {
                    self.next_block(Service::Action, i, block_number, form);
                }
            }
            other => {
                let e = proto("APDU", format!("a {} is not a request this server serves", other.kind()));
                self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
            }
        }
    }

    /// Send an answer, ciphered in the form of its request.
    pub(super) fn answer(&mut self, apdu: Apdu, form: Option<Form>) {
        let f = self.answer_form(form);
        self.send(apdu.encode(), f);
    }

    /// A block answer ending a SET/ACTION block transfer early.
    fn block_refusal(&mut self, service: Service, invoke: u8, number: u32, result: u8, form: Option<Form>) {
        self.incoming = None;
        let apdu = match service {
            Service::Set => Apdu::SetResponse(SetResponse::LastDatablock {
                invoke_id_and_priority: invoke,
                result,
                block_number: number,
            }),
            _ => action_response(invoke, false, vec![ActionResult { result, return_data: None }]),
        };
        self.answer(apdu, form);
    }

    fn first_block(
        &mut self,
        service: Service,
        invoke: u8,
        target: Target,
        list: bool,
        block: DataBlockSa,
        form: Option<Form>,
    ) {
        let (bit, name) = match service {
            Service::Set => (bits::SET | bits::BLOCK_TRANSFER_WITH_SET, "set with block-transfer-with-set-or-write"),
            _ => (bits::ACTION | bits::BLOCK_TRANSFER_WITH_ACTION, "action with block-transfer-with-action"),
        };
        if self.conformance() & bit != bit {
            let e = proto("conformance", format!("{name} was not agreed in the association's conformance"));
            return self.refuse(SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED, None, e);
        }
        let buf = Reassembly::default();
        self.incoming = Some(BlockIn { service, target, list, buf, next: block.block_number });
        self.request_block(service, invoke, block, form);
    }

    fn request_block(&mut self, service: Service, invoke: u8, block: DataBlockSa, form: Option<Form>) {
        let number = block.block_number;
        let ceiling = self.cfg.max_block_transfer;
        let Some(bin) = self.incoming.as_mut().filter(|b| b.service == service) else {
            let none = if service == Service::Set { NO_LONG_SET_IN_PROGRESS } else { NO_LONG_IN_PROGRESS };
            return self.block_refusal(service, invoke, number, none, form);
        };
        if number != bin.next {
            let msg = format!("request block {number} received, block {} expected", bin.next);
            self.push_event(ServerEvent::ProtocolError(proto("block-number", msg)));
            return self.block_refusal(service, invoke, number, DATA_BLOCK_NUMBER_INVALID, form);
        }
        let what = if service == Service::Set { DATABLOCKS_CEILING } else { PBLOCKS_CEILING };
        if let Err(e) = bin.buf.push(&block.raw_data, ceiling, what, number) {
            self.push_event(ServerEvent::ProtocolError(e));
            let aborted = if service == Service::Set { LONG_SET_ABORTED } else { LONG_ACTION_ABORTED };
            return self.block_refusal(service, invoke, number, aborted, form);
        }
        bin.next = number.saturating_add(1);
        if !block.last_block {
            let ack = match service {
                Service::Set => {
                    Apdu::SetResponse(SetResponse::Datablock { invoke_id_and_priority: invoke, block_number: number })
                }
                _ => Apdu::ActionResponse(ActionResponse::NextPblock {
                    invoke_id_and_priority: invoke,
                    block_number: number,
                }),
            };
            return self.answer(ack, form);
        }
        let Some(bin) = self.incoming.take() else { return };
        let raw = bin.buf.buf;
        let values: Result<Vec<Vec<u8>>> =
            if bin.list { sequence_of_data(&raw) } else { crate::axdr::decode(&raw).map(|_| vec![raw.clone()]) };
        let request = match (bin.target, values) {
            (Target::Attributes(a), Ok(v)) if a.len() == v.len() => {
                IncomingRequest::Set(a.into_iter().zip(v).collect())
            }
            (Target::Methods(m), Ok(v)) if m.len() == v.len() => {
                IncomingRequest::Action(m.into_iter().zip(v.into_iter().map(Some)).collect())
            }
            (target, values) => {
                let n = match &target {
                    Target::Attributes(a) => a.len(),
                    Target::Methods(m) => m.len(),
                };
                let why = match values {
                    Ok(v) => format!("{} values for {n} items", v.len()),
                    Err(e) => e.to_string(),
                };
                self.push_event(ServerEvent::ProtocolError(proto("block request", why)));
                let apdu = match service {
                    Service::Set if bin.list => Apdu::SetResponse(SetResponse::LastDatablockWithList {
                        invoke_id_and_priority: invoke,
                        results: vec![TYPE_UNMATCHED; n],
                        block_number: number,
                    }),
                    Service::Set => Apdu::SetResponse(SetResponse::LastDatablock {
                        invoke_id_and_priority: invoke,
                        result: TYPE_UNMATCHED,
                        block_number: number,
                    }),
                    _ => action_response(
                        invoke,
                        bin.list,
                        vec![ActionResult { result: TYPE_UNMATCHED, return_data: None }; n],
                    ),
                };
                return self.answer(apdu, form);
            }
        };
        self.emit(invoke, request, bin.list, form, Some(number));
    }

    /// get-request-next / action-request-next-pblock: the block after `number`
    /// (again the last one sent when the client asks for it once more).
    fn next_block(&mut self, service: Service, invoke: u8, number: u32, form: Option<Form>) {
        let pending = self.long.as_ref().filter(|l| l.service == service).map(|l| l.sent);
        match pending {
            Some(sent) if number == sent || number.saturating_add(1) == sent => {
                self.send_block(invoke, number + 1, form)
            }
            _ => {
                let result = if pending.is_some() { DATA_BLOCK_NUMBER_INVALID } else { NO_LONG_IN_PROGRESS };
                self.long = None;
                let apdu = match service {
                    Service::Get => Apdu::GetResponse(GetResponse::WithDatablock {
                        invoke_id_and_priority: invoke,
                        last_block: true,
                        block_number: number,
                        result: BlockResult::DataAccessResult(result),
                    }),
                    _ => action_response(invoke, false, vec![ActionResult { result, return_data: None }]),
                };
                self.answer(apdu, form);
            }
        }
    }

    fn send_block(&mut self, invoke: u8, number: u32, form: Option<Form>) {
        let Some(l) = self.long.as_mut() else { return };
        let total = l.chunks.len() as u32;
        let data = l.chunks.get((number as usize).saturating_sub(1)).cloned().unwrap_or_default();
        let last = number >= total;
        l.sent = number;
        let apdu = match l.service {
            Service::Get => Apdu::GetResponse(GetResponse::WithDatablock {
                invoke_id_and_priority: invoke,
                last_block: last,
                block_number: number,
                result: BlockResult::RawData(data),
            }),
            _ => Apdu::ActionResponse(ActionResponse::WithPblock {
                invoke_id_and_priority: invoke,
                block: data_block(last, number, data),
            }),
        };
        if last {
            self.long = None;
        }
        self.answer(apdu, form);
    }

    /// Answer request `id` with the shell's outcome: one entry per item, of
    /// the request's service. Too long for the client: GBT when agreed, else
    /// datablocks / pblocks when agreed, else a refusal result (other-reason).
    pub fn respond(&mut self, id: RequestId, outcome: Outcome) -> Result<()> {
        let bad = |msg: String| Error::new(Layer::Apdu, "respond", 0, ErrorKind::Other(msg));
        let Some(idx) = self.reqs.iter().position(|r| r.id == id) else {
            return Err(bad(format!("no request {id} is waiting for an answer")));
        };
        let r = &self.reqs[idx];
        if outcome.service() != r.service || outcome.len() != r.count {
            return Err(bad(format!(
                "request {id} is a {} of {} item(s); the answer is a {} of {}",
                r.service.name(),
                r.count,
                outcome.service().name(),
                outcome.len()
            )));
        }
        let check = |d: &GetDataResult| match d {
            GetDataResult::Data(raw) => crate::axdr::decode(raw).map(|_| ()),
            GetDataResult::DataAccessResult(_) => Ok(()),
        };
        match &outcome {
            Outcome::Get(v) => v.iter().try_for_each(check)?,
            Outcome::Action(v) => v.iter().filter_map(|a| a.return_data.as_ref()).try_for_each(check)?,
            Outcome::Set(_) => {}
        }
        let r = self.reqs.remove(idx);
        if r.sn.is_some() {
            self.sn_respond(r, outcome);
            return Ok(());
        }
        let (i, list) = (r.invoke, r.list);
        let apdu = match (outcome, r.last_block) {
            (Outcome::Set(results), Some(n)) if list => Apdu::SetResponse(SetResponse::LastDatablockWithList {
                invoke_id_and_priority: i,
                results,
                block_number: n,
            }),
            (Outcome::Set(results), Some(n)) => Apdu::SetResponse(SetResponse::LastDatablock {
                invoke_id_and_priority: i,
                result: results.first().copied().unwrap_or(OTHER_REASON),
                block_number: n,
            }),
            (Outcome::Set(results), None) if list => {
                Apdu::SetResponse(SetResponse::WithList { invoke_id_and_priority: i, results })
            }
            (Outcome::Set(results), None) => Apdu::SetResponse(SetResponse::Normal {
                invoke_id_and_priority: i,
                result: results.first().copied().unwrap_or(OTHER_REASON),
            }),
            (Outcome::Get(results), _) => {
                self.long_answer(r, get_response(i, list, results));
                return Ok(());
            }
            (Outcome::Action(results), _) => {
                self.long_answer(r, action_response(i, list, results));
                return Ok(());
            }
        };
        self.answer(apdu, r.form);
        Ok(())
    }

    /// A GET or ACTION answer: whole, in GBT, in blocks, or refused.
    fn long_answer(&mut self, r: SReq, apdu: Apdu) {
        let form = self.answer_form(r.form);
        let plain = apdu.encode();
        let wire = form.map_or(plain.len(), |f| ciphered_len(plain.len(), f));
        let limit = self.send_limit();
        let conf = self.conformance();
        if wire <= limit || conf & bits::GENERAL_BLOCK_TRANSFER != 0 {
            return self.send(plain, form);
        }
        let i = r.invoke;
        let (bit, raw, header) = match &apdu {
            Apdu::GetResponse(GetResponse::Normal { result: GetDataResult::Data(d), .. }) => {
                (bits::BLOCK_TRANSFER_WITH_GET, d.clone(), get_block_header())
            }
            Apdu::GetResponse(GetResponse::WithList { results, .. }) => {
                let items = encoded(results, GetDataResult::encode);
                (bits::BLOCK_TRANSFER_WITH_GET, sequence_of(items.iter().map(Vec::as_slice)), get_block_header())
            }
            Apdu::ActionResponse(ActionResponse::Normal { result, .. }) => {
                let mut v = Vec::new();
                result.encode(&mut v);
                (bits::BLOCK_TRANSFER_WITH_ACTION, v, action_block_header())
            }
            Apdu::ActionResponse(ActionResponse::WithList { results, .. }) => {
                let items = encoded(results, ActionResult::encode);
                (bits::BLOCK_TRANSFER_WITH_ACTION, sequence_of(items.iter().map(Vec::as_slice)), action_block_header())
            }
            _ => (0, Vec::new(), 0),
        };
        let size = fit(limit, header, form);
        match (conf & bit != 0 && bit != 0, size) {
            (true, Some(size)) => {
                let service = if bit == bits::BLOCK_TRANSFER_WITH_GET { Service::Get } else { Service::Action };
                self.long = Some(LongAnswer { service, chunks: split(&raw, size, size), sent: 0 });
                self.send_block(i, 1, r.form);
            }
            _ => {
                let e = proto(
                    "answer",
                    format!(
                        "an answer of {wire} bytes does not fit the client's {limit} and no block transfer was agreed"
                    ),
                );
                self.push_event(ServerEvent::ProtocolError(e));
                let refusal = match r.service {
                    Service::Get => {
                        get_response(i, r.list, vec![GetDataResult::DataAccessResult(OTHER_REASON); r.count])
                    }
                    _ => action_response(
                        i,
                        r.list,
                        vec![ActionResult { result: OTHER_REASON, return_data: None }; r.count],
                    ),
                };
                self.answer(refusal, r.form);
            }
        }
    }

    /// Requests handed to the shell and not answered yet.
    pub fn pending_requests(&self) -> Vec<RequestId> {
        self.reqs.iter().map(|r| r.id).collect()
    }

    /// Refuse a request without answering it item by item (the shell cannot
    /// serve it): an exception-response (service-not-allowed / operation-not-possible).
    pub fn refuse_request(&mut self, id: RequestId) -> Result<()> {
        let Some(idx) = self.reqs.iter().position(|r| r.id == id) else {
            return Err(Error::new(
                Layer::Apdu,
                "refuse_request",
                0,
                ErrorKind::Other(format!("no request {id} is waiting")),
            ));
        };
        self.reqs.remove(idx);
        let e = proto("request", format!("request {id} refused by the shell"));
        self.refuse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE, None, e);
        Ok(())
    }
}

fn get_block_header() -> usize {
    let a = Apdu::GetResponse(GetResponse::WithDatablock {
        invoke_id_and_priority: 0,
        last_block: false,
        block_number: 1,
        result: BlockResult::RawData(Vec::new()),
    });
    a.encode().len() - 1
}

fn action_block_header() -> usize {
    let a = Apdu::ActionResponse(ActionResponse::WithPblock {
        invoke_id_and_priority: 0,
        block: data_block(false, 1, Vec::new()),
    });
    a.encode().len() - 1
}
