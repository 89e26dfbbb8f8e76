//! The test bench of the association machines: a client and a server wired
//! together through APDU queues and a fake clock (as `hdlc/link_tests.rs`
//! does for the link), a toy object model answering the server's requests,
//! counters granted on demand, and hooks to drop or rewrite APDUs in flight.

use std::collections::HashMap;

use super::*;
use crate::apdu::{ActionResult, AttributeDescriptor, GetDataResult, MethodDescriptor};
use crate::axdr::Data;

pub(super) fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// Green Book (DLMS UA 1000-2) security example keys and system titles.
pub(super) const EK: &str = "000102030405060708090A0B0C0D0E0F";
pub(super) const AK: &str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";
pub(super) const CLIENT_ST: &str = "4D4D4D0000000001";
pub(super) const SERVER_ST: &str = "4D4D4D0000BC614E";

pub(super) fn keys(title: &str) -> Keys {
    Keys { system_title: h(title).try_into().unwrap(), ek: h(EK).try_into().unwrap(), ak: h(AK).try_into().unwrap() }
}

pub(super) fn attr(class_id: u16, obis: [u8; 6], attribute_id: i8) -> AttributeRef {
    AttributeRef { attribute: AttributeDescriptor { class_id, obis, attribute_id }, access: None }
}

pub(super) fn method(class_id: u16, obis: [u8; 6], method_id: i8) -> MethodRef {
    MethodDescriptor { class_id, obis, method_id }
}

pub(super) const CLOCK: [u8; 6] = [0, 0, 1, 0, 0, 255];
pub(super) const FIRMWARE: [u8; 6] = [1, 0, 0, 2, 0, 255];
pub(super) const PROFILE: [u8; 6] = [1, 0, 99, 1, 0, 255];

pub(super) fn octets(n: usize, seed: u8) -> Vec<u8> {
    Data::OctetString((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()).encode()
}

/// Plain association, no authentication, 5 s response timeout.
pub(super) fn plain_cfg() -> AssociationConfig {
    AssociationConfig { response_timeout: 5.0, ..AssociationConfig::default() }
}

/// HLS-GMAC with glo-ciphering (SC 0x30) on both sides.
pub(super) fn hls_cfg(server: bool, mode: CipherMode) -> AssociationConfig {
    let (ours, theirs) = if server { (SERVER_ST, CLIENT_ST) } else { (CLIENT_ST, SERVER_ST) };
    AssociationConfig {
        authentication: Authentication::HlsGmac,
        keys: Some(keys(ours)),
        ciphering: Some(Ciphering { security_control: 0x30, mode }),
        peer_system_title: Some(h(theirs).try_into().unwrap()),
        ..plain_cfg()
    }
}

/// A toy object model: attribute values by (class, obis, attribute); a
/// method returns its parameters (or nothing).
#[derive(Default)]
pub(super) struct Model {
    pub values: HashMap<(u16, [u8; 6], i8), Vec<u8>>,
    pub seen: Vec<IncomingRequest>,
}

impl Model {
    pub fn with(values: &[(u16, [u8; 6], i8, Vec<u8>)]) -> Self {
        let mut m = Model::default();
        for (c, o, a, v) in values {
            m.values.insert((*c, *o, *a), v.clone());
        }
        m
    }

    pub fn answer(&mut self, req: &IncomingRequest) -> Outcome {
        self.seen.push(req.clone());
        match req {
            IncomingRequest::Get(items) => Outcome::Get(
                items
                    .iter()
                    .map(|a| {
                        let d = &a.attribute;
                        match self.values.get(&(d.class_id, d.obis, d.attribute_id)) {
                            Some(v) => GetDataResult::Data(v.clone()),
                            None => GetDataResult::DataAccessResult(4),
                        }
                    })
                    .collect(),
            ),
            IncomingRequest::Set(items) => Outcome::Set(
                items
                    .iter()
                    .map(|(a, v)| {
                        let d = &a.attribute;
                        self.values.insert((d.class_id, d.obis, d.attribute_id), v.clone());
                        0
                    })
                    .collect(),
            ),
            IncomingRequest::Action(items) => Outcome::Action(
                items
                    .iter()
                    .map(|(_, p)| ActionResult { result: 0, return_data: p.clone().map(GetDataResult::Data) })
                    .collect(),
            ),
        }
    }
}

type Hook<'a> = Box<dyn FnMut(bool, usize, &[u8]) -> Option<Vec<u8>> + 'a>;

/// A client and a server wired together.
pub(super) struct Wire<'a> {
    pub c: ClientAssociation,
    pub s: ServerAssociation,
    pub now: f64,
    pub cev: Vec<ClientEvent>,
    pub sev: Vec<ServerEvent>,
    pub model: Model,
    /// Every APDU moved: (from the client, bytes as sent).
    pub log: Vec<(bool, Vec<u8>)>,
    sent: [usize; 2],
    /// Rewrite or drop (None) the n-th APDU of a direction.
    pub hook: Hook<'a>,
    pub auto_grant: bool,
    pub auto_answer: bool,
    pub next_counter: [u32; 2],
}

impl<'a> Wire<'a> {
    pub fn new(ccfg: AssociationConfig, scfg: AssociationConfig) -> Self {
        let c = ClientAssociation::new(ccfg).unwrap();
        let mut s = ServerAssociation::new(scfg).unwrap();
        s.set_challenge(b"P6wRJ21F").unwrap();
        Wire {
            c,
            s,
            now: 0.0,
            cev: vec![],
            sev: vec![],
            model: Model::default(),
            log: vec![],
            sent: [0, 0],
            hook: Box::new(|_, _, a| Some(a.to_vec())),
            auto_grant: true,
            auto_answer: true,
            next_counter: [1, 1],
        }
    }

    pub fn plain() -> Self {
        Wire::new(plain_cfg(), plain_cfg())
    }

    pub fn hls(mode: CipherMode) -> Self {
        Wire::new(hls_cfg(false, mode), hls_cfg(true, mode))
    }

    fn collect(&mut self) {
        while let Some(e) = self.c.next_event() {
            if e == ClientEvent::NeedCounters && self.auto_grant {
                self.c.grant_counters(self.next_counter[0], 1000).unwrap();
                self.next_counter[0] += 1000;
            }
            self.cev.push(e);
        }
        while let Some(e) = self.s.next_event() {
            match &e {
                ServerEvent::NeedCounters if self.auto_grant => {
                    self.s.grant_counters(self.next_counter[1], 1000).unwrap();
                    self.next_counter[1] += 1000;
                }
                ServerEvent::Request { id, request } if self.auto_answer => {
                    let out = self.model.answer(request);
                    self.s.respond(*id, out).unwrap();
                }
                _ => {}
            }
            self.sev.push(e);
        }
    }

    /// Move APDUs both ways once; false when nothing moved.
    pub fn step(&mut self) -> bool {
        self.collect();
        let mut moved = false;
        for from_client in [true, false] {
            let out = if from_client { self.c.data_to_send() } else { self.s.data_to_send() };
            for apdu in out {
                moved = true;
                let i = usize::from(!from_client);
                let n = self.sent[i];
                self.sent[i] += 1;
                self.log.push((from_client, apdu.clone()));
                let Some(apdu) = (self.hook)(from_client, n, &apdu) else { continue };
                self.now += 0.01;
                if from_client {
                    self.s.receive_data(&apdu, self.now);
                } else {
                    self.c.receive_data(&apdu, self.now);
                }
            }
        }
        self.collect();
        moved
    }

    /// Run until quiet, firing the client's timeouts.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                match self.c.next_deadline() {
                    Some(d) if d.is_finite() => {
                        self.now = self.now.max(d);
                        self.c.handle_timeout(self.now);
                        self.collect();
                    }
                    _ => return,
                }
            }
        }
        panic!("the wire did not settle");
    }

    /// Move APDUs until quiet without firing timeouts.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the wire did not settle");
    }

    pub fn associate(&mut self, ctos: Option<&[u8]>, ded: Option<&[u8]>) {
        self.c.open(self.now, ctos, ded).unwrap();
        self.run();
        assert_eq!(self.c.state(), ClientState::Associated, "{:#?}\n{:#?}", self.cev, self.sev);
        assert_eq!(self.s.state(), ServerState::Associated);
        assert!(self.cev.iter().any(|e| matches!(e, ClientEvent::Associated(_))));
        assert!(self.sev.iter().any(|e| matches!(e, ServerEvent::Associated(_))));
    }

    /// The result of request `id` (it must have one).
    pub fn result(&self, id: RequestId) -> Result<Outcome, RequestError> {
        self.cev
            .iter()
            .find_map(|e| match e {
                ClientEvent::Response { id: i, result } if *i == id => Some(result.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no response to request {id}: {:#?}", self.cev))
    }

    /// APDUs sent by one side whose first byte is `tag`.
    pub fn sent_with_tag(&self, from_client: bool, tag: u8) -> Vec<Vec<u8>> {
        self.log.iter().filter(|(c, a)| *c == from_client && a.first() == Some(&tag)).map(|(_, a)| a.clone()).collect()
    }

    pub fn server_errors(&self) -> Vec<String> {
        self.sev
            .iter()
            .filter_map(|e| match e {
                ServerEvent::ProtocolError(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// The value of a one-item GET outcome.
pub(super) fn value(r: Result<Outcome, RequestError>) -> Vec<u8> {
    match r {
        Ok(Outcome::Get(mut v)) if v.len() == 1 => match v.remove(0) {
            GetDataResult::Data(d) => d,
            other => panic!("not data: {other:?}"),
        },
        other => panic!("not a one-value GET: {other:?}"),
    }
}
