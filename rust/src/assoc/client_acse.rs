//! The client's association: the AARQ, the AARE and its quirks, HLS-GMAC
//! passes 3 and 4, the RLRQ/RLRE, and how the association ends.

use super::cipher::{Crypto, Refusal};
use super::client::{proto, security, ClientAssociation, ClientState, Pending};
use super::config::{hex, Authentication};
use super::types::{Agreement, ClientEvent, Outcome, RequestError};
use crate::apdu::association::{context_oid, mechanism_oid};
use crate::apdu::quirks::{self, Tolerated};
use crate::apdu::{self, Aare, Aarq, Apdu, Diagnostic, InitiateRequest, InitiateResponse, Release};
use crate::error::{Error, Layer, Result};

impl ClientAssociation {
    /// Queue the AARQ. `challenge` is CtoS for HLS-GMAC (8..=64 random
    /// bytes, from the caller); `dedicated_key` (16 random bytes) is required
    /// by the ded- cipher modes. Both are the caller's randomness: the core has none.
    pub fn open(&mut self, now: f64, challenge: Option<&[u8]>, dedicated_key: Option<&[u8]>) -> Result<()> {
        if self.state != ClientState::Idle {
            return Err(proto(
                "association state",
                format!("open() needs an idle association, it is {:?}", self.state),
            ));
        }
        let hls = matches!(self.cfg.authentication, Authentication::HlsGmac);
        match (hls, challenge) {
            (true, Some(c)) if (8..=64).contains(&c.len()) => self.ctos = c.to_vec(),
            (true, c) => {
                let found = c.map_or("none".to_string(), |c| format!("{} bytes", c.len()));
                return Err(Error::invalid(
                    Layer::Security,
                    "challenge (CtoS)",
                    0,
                    found,
                    "8..=64 random bytes for HLS-GMAC",
                ));
            }
            (false, Some(_)) => {
                return Err(Error::invalid(
                    Layer::Security,
                    "challenge (CtoS)",
                    0,
                    "given",
                    "none: only HLS-GMAC uses a challenge",
                ))
            }
            (false, None) => self.ctos.clear(),
        }
        let dedicated = self.cfg.ciphering.is_some_and(|c| c.mode.dedicated());
        match (dedicated, dedicated_key) {
            (true, Some(k)) if k.len() == 16 => {}
            (true, k) => {
                let found = k.map_or("none".to_string(), |k| format!("{} bytes", k.len()));
                return Err(Error::invalid(
                    Layer::Security,
                    "dedicated key",
                    0,
                    found,
                    "16 random bytes for the ded- cipher modes",
                ));
            }
            (false, Some(_)) => {
                return Err(Error::invalid(
                    Layer::Security,
                    "dedicated key",
                    0,
                    "given",
                    "none: the cipher mode is not ded-",
                ))
            }
            (false, None) => {}
        }
        let last = self.last_incoming_counter().or(self.cfg.last_incoming_counter);
        self.crypto = match &self.cfg.keys {
            Some(k) => {
                let mut c = Crypto::new(k, self.cfg.peer_system_title, last)?;
                c.set_known(&self.known);
                Some(c)
            }
            None => None,
        };
        if let (Some(c), Some(k)) = (self.crypto.as_mut(), dedicated_key) {
            c.set_dedicated(k)?;
        }
        self.clear_association();
        let initiate = Apdu::InitiateRequest(InitiateRequest {
            dedicated_key: dedicated_key.filter(|_| dedicated).map(<[u8]>::to_vec),
            response_allowed: None,
            proposed_quality_of_service: None,
            proposed_dlms_version_number: 6,
            proposed_conformance: self.cfg.conformance,
            client_max_receive_pdu_size: self.cfg.max_receive_pdu,
        })
        .encode();
        let ciphered = self.ciphered();
        let mut aarq = Aarq { application_context_name: context_oid(self.cfg.context()), ..Aarq::default() };
        if ciphered || hls {
            aarq.calling_ap_title = self.cfg.keys.as_ref().map(|k| k.system_title.to_vec());
        }
        match &self.cfg.authentication {
            Authentication::None => {}
            Authentication::Lls { password } => {
                aarq.sender_acse_requirements = Some(true);
                aarq.mechanism_name = Some(mechanism_oid(1));
                aarq.calling_authentication_value = Some(password.clone());
            }
            Authentication::HlsGmac => {
                aarq.sender_acse_requirements = Some(true);
                aarq.mechanism_name = Some(mechanism_oid(5));
                aarq.calling_authentication_value = Some(self.ctos.clone());
            }
        }
        self.state = ClientState::AwaitingAare;
        self.deadline = Some(now + self.cfg.response_timeout);
        if ciphered {
            self.outbox.push_back(Pending::Acse { apdu: Box::new(Apdu::Aarq(aarq)), initiate });
        } else {
            aarq.user_information = apdu::decode(&initiate).ok().map(Box::new);
            self.outbox.push_back(Pending::Plain { apdu: Apdu::Aarq(aarq).encode(), req: None });
        }
        self.flush();
        Ok(())
    }

    /// Queue the RLRQ (with a glo-InitiateRequest in a ciphered association).
    /// Requests still pending end with [`RequestError::Abandoned`].
    pub fn release(&mut self, now: f64) -> Result<()> {
        if !matches!(self.state, ClientState::Associated | ClientState::AwaitingHls) {
            return Err(proto("association state", format!("release() needs an association, it is {:?}", self.state)));
        }
        self.abandon_all("the association is being released");
        let rlrq = Release { reason: Some(0), user_information: None };
        if self.ciphered() {
            let initiate = Apdu::InitiateRequest(InitiateRequest {
                dedicated_key: None,
                response_allowed: None,
                proposed_quality_of_service: None,
                proposed_dlms_version_number: 6,
                proposed_conformance: self.cfg.conformance,
                client_max_receive_pdu_size: self.cfg.max_receive_pdu,
            })
            .encode();
            self.outbox.push_back(Pending::Acse { apdu: Box::new(Apdu::Rlrq(rlrq)), initiate });
        } else {
            self.outbox.push_back(Pending::Plain { apdu: Apdu::Rlrq(rlrq).encode(), req: None });
        }
        self.state = ClientState::Releasing;
        self.deadline = Some(now + self.cfg.response_timeout);
        self.flush();
        Ok(())
    }

    /// The transport is gone: every pending request ends with
    /// [`RequestError::Abandoned`], nothing is sent, the state is idle.
    pub fn reset(&mut self) {
        self.abandon_all("the association was reset (link lost)");
        self.clear_association();
        self.out.clear();
        self.state = ClientState::Idle;
    }

    pub(super) fn clear_association(&mut self) {
        self.outbox.clear();
        self.reqs.clear();
        self.gbt_tx = None;
        self.gbt_rx.reset();
        self.peer_window = 1;
        self.agreement = None;
        self.abandoned = 0;
        self.deadline = None;
    }

    /// Every request ends (released, reset, HLS failed).
    pub(super) fn abandon_all(&mut self, why: &str) {
        for r in std::mem::take(&mut self.reqs) {
            if !r.hls {
                let result = Err(RequestError::Abandoned(why.to_string()));
                self.push_event(ClientEvent::Response { id: r.id, result });
            }
        }
        self.outbox.retain(|p| {
            !matches!(p, Pending::Cipher { .. } | Pending::Hls { .. } | Pending::Plain { req: Some(_), .. })
        });
        self.gbt_tx = None;
        self.gbt_rx.reset();
    }

    pub(super) fn association_failed(&mut self, e: Error) {
        self.abandon_all("the association failed");
        self.clear_association();
        self.state = ClientState::Idle;
        self.push_event(ClientEvent::AssociationFailed(e));
    }

    pub(super) fn refused(&mut self, result: i64, diagnostic: Option<Diagnostic>, detail: String) {
        self.abandon_all("the association was refused");
        self.clear_association();
        self.state = ClientState::Idle;
        self.push_event(ClientEvent::Refused { result, diagnostic, detail });
    }

    /// An AARE; `quirks`: those its decode took.
    pub(super) fn on_aare(&mut self, aare: Aare, mut quirks: Vec<&'static str>, now: f64) {
        self.deadline = None;
        if aare.result != 0 {
            if aare.user_information.is_none() {
                let q = quirks::REJECTION_WITHOUT_USER_INFORMATION;
                let what = format!(
                    "an AARE rejecting the association (result {}, diagnostic {}) without user-information",
                    aare.result,
                    aare.result_source_diagnostic.map_or("none".into(), |d| format!("{d:?}"))
                );
                if !self.cfg.quirk(q) {
                    let msg = format!("{what}: refused, the quirk {q} is not allowed for this meter model");
                    return self.association_failed(proto("AARE user-information", msg));
                }
                self.took(vec![Tolerated { quirk: q, detail: what }]);
            }
            let detail = self.refusal_detail(aare.user_information.map(|b| *b));
            return self.refused(aare.result, aare.result_source_diagnostic, detail);
        }
        let title = match aare.responding_ap_title.as_deref().map(<[u8; 8]>::try_from) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => {
                let n = aare.responding_ap_title.as_ref().map_or(0, Vec::len);
                return self
                    .association_failed(proto("AARE responding-AP-title", format!("{n} bytes, a system title has 8")));
            }
        };
        if let (Some(t), Some(want)) = (title, self.cfg.peer_system_title) {
            if t != want {
                let msg =
                    format!("the AARE names system title {}, the meter is configured with {}", hex(&t), hex(&want));
                return self.association_failed(security("AARE responding-AP-title", msg));
            }
        }
        let title = title.or(self.cfg.peer_system_title);
        if let (Some(c), Some(t)) = (self.crypto.as_mut(), title) {
            c.set_peer(t);
        }
        let initiate = match self.initiate_response(aare.user_information.map(|b| *b), &mut quirks) {
            Ok(Ok(ir)) => ir,
            Ok(Err(detail)) => return self.refused(0, aare.result_source_diagnostic, detail),
            Err(e) => return self.association_failed(e),
        };
        let dedicated = self.crypto.as_ref().is_some_and(Crypto::has_dedicated);
        let missing = initiate.is_none();
        let (conformance, pdu, version) = match initiate {
            Some(ir) => (ir.negotiated_conformance, ir.server_max_receive_pdu_size, ir.negotiated_dlms_version_number),
            None => (self.cfg.conformance, 0, 6),
        };
        self.agreement = Some(Agreement {
            conformance: conformance & self.cfg.conformance,
            peer_max_pdu: if pdu == 0 { 0xFFFF } else { pdu },
            dlms_version: version,
            peer_system_title: title,
            mechanism: self.cfg.authentication.mechanism(),
            ciphered: self.ciphered(),
            dedicated_key: dedicated,
            quirks_used: {
                quirks.sort_unstable();
                quirks.dedup();
                quirks
            },
            initiate_response_missing: missing,
        });
        if !matches!(self.cfg.authentication, Authentication::HlsGmac) {
            self.state = ClientState::Associated;
            let a = self.agreement.clone();
            if let Some(a) = a {
                self.push_event(ClientEvent::Associated(a));
            }
            return;
        }
        let stoc = aare.responding_authentication_value.unwrap_or_default();
        if stoc.is_empty() {
            return self.association_failed(proto(
                "AARE responding-authentication-value",
                "an AARE for HLS-GMAC without the server challenge (StoC)".into(),
            ));
        }
        if self.crypto.as_ref().map_or(true, |c| c.peer_title.is_none()) {
            return self.association_failed(security(
                "AARE responding-AP-title",
                "HLS-GMAC needs the server's system title: the AARE has none and none is configured".into(),
            ));
        }
        self.state = ClientState::AwaitingHls;
        self.start_hls(stoc, now);
    }

    /// The InitiateResponse of an accepted AARE: `Ok(Ok(Some))`, `Ok(Ok(None))`
    /// when absent and allowed, `Ok(Err(detail))` for an initiate error
    /// (accepted-with-error), `Err` when the AARE cannot be used.
    #[allow(clippy::type_complexity)]
    pub(super) fn initiate_response(
        &mut self,
        ui: Option<Apdu>,
        quirks: &mut Vec<&'static str>,
    ) -> Result<std::result::Result<Option<InitiateResponse>, String>> {
        let ciphered = self.ciphered();
        let plain = match ui {
            None if !ciphered => return Ok(Ok(None)),
            None if self.cfg.quirk(quirks::PLAIN_INITIATE_RESPONSE) => {
                self.plain_initiate(quirks, "no InitiateResponse in the AARE of a ciphered association");
                return Ok(Ok(None));
            }
            None => {
                return Err(security(
                    "AARE user-information",
                    "no InitiateResponse in the AARE of a ciphered association: refused, unauthenticated (the model quirk plain-initiate-response allows it)".into(),
                ))
            }
            Some(a @ (Apdu::Ciphered(_) | Apdu::GeneralCiphering(_))) => {
                if !ciphered {
                    return Err(proto("AARE user-information", format!("a {} to a plain association request", a.kind())));
                }
                let sc = self.cfg.ciphering.map_or(0x30, |c| c.security_control);
                let c = self.crypto.as_mut().ok_or_else(|| security("keys", "no keys".into()))?;
                let (bytes, form) = c.unprotect(&a.encode(), sc).map_err(Refusal::error)?;
                if form.security_control & 0x10 != 0 {
                    if let Some(ic) = self.aarq_counter {
                        self.confirm(ic);
                    }
                }
                apdu::decode(&bytes)?
            }
            Some(a) => {
                if ciphered && matches!(a, Apdu::InitiateResponse(_)) {
                    if !self.cfg.quirk(quirks::PLAIN_INITIATE_RESPONSE) {
                        return Err(security(
                            "AARE user-information",
                            "a plain InitiateResponse in the AARE of a ciphered association: refused, unauthenticated (the model quirk plain-initiate-response allows it)".into(),
                        ));
                    }
                    self.plain_initiate(quirks, "a plain InitiateResponse in the AARE of a ciphered association");
                }
                a
            }
        };
        match plain {
            Apdu::InitiateResponse(ir) => Ok(Ok(Some(ir))),
            Apdu::ConfirmedServiceError(e) => Ok(Err(initiate_error(&e))),
            other => Err(proto("AARE user-information", format!("a {}, expected an InitiateResponse", other.kind()))),
        }
    }

    fn plain_initiate(&mut self, quirks: &mut Vec<&'static str>, what: &str) {
        quirks.push(quirks::PLAIN_INITIATE_RESPONSE);
        let detail = format!("{what}, taken unauthenticated");
        self.took(vec![Tolerated { quirk: quirks::PLAIN_INITIATE_RESPONSE, detail }]);
    }

    pub(super) fn refusal_detail(&mut self, ui: Option<Apdu>) -> String {
        let ciphered = self.ciphered();
        let sc = self.cfg.ciphering.map_or(0x30, |c| c.security_control);
        let hint = if ciphered { " (the meter did not accept our ciphered InitiateRequest: wrong keys?)" } else { "" };
        match ui {
            None => String::new(),
            Some(Apdu::ConfirmedServiceError(e)) => format!("{}{hint}", initiate_error(&e)),
            Some(a @ (Apdu::Ciphered(_) | Apdu::GeneralCiphering(_))) => {
                let plain = self.crypto.as_mut().map(|c| c.unprotect(&a.encode(), sc));
                match plain.map(|r| r.map(|(b, _)| apdu::decode(&b))) {
                    Some(Ok(Ok(Apdu::ConfirmedServiceError(e)))) => format!("{}{hint}", initiate_error(&e)),
                    _ => format!("a {} the gateway cannot decipher{hint}", a.kind()),
                }
            }
            Some(other) => format!("user-information: {}", other.kind()),
        }
    }

    pub(super) fn hls_done(&mut self, result: std::result::Result<Outcome, RequestError>) {
        let refused = |s: &mut Self, detail: String| s.refused(1, Some(Diagnostic::ServiceUser(13)), detail);
        let r = match result {
            Ok(Outcome::Action(mut v)) if v.len() == 1 => v.remove(0),
            Ok(other) => {
                return self.association_failed(proto("reply_to_HLS_authentication", format!("answered {other:?}")))
            }
            Err(RequestError::Security(e)) => return self.association_failed(e),
            Err(e) => return refused(self, format!("reply_to_HLS_authentication: {e}")),
        };
        if r.result != 0 {
            let name = super::types::result_name(super::types::Service::Action, r.result);
            return refused(self, format!("the meter refused our f(StoC): action result {name}"));
        }
        let f = match r.return_data {
            Some(apdu::GetDataResult::Data(raw)) => match crate::axdr::decode(&raw) {
                Ok(crate::axdr::Data::OctetString(f)) => f,
                Ok(d) => {
                    return self.association_failed(security(
                        "f(CtoS)",
                        format!("a {}, expected an octet-string", d.type_name()),
                    ))
                }
                Err(e) => return self.association_failed(e),
            },
            _ => {
                return self.association_failed(security(
                    "f(CtoS)",
                    "the meter returned no f(CtoS) in reply_to_HLS_authentication".into(),
                ))
            }
        };
        let ctos = std::mem::take(&mut self.ctos);
        let checked = self.crypto.as_ref().map(|c| c.hls_check(&ctos, &f));
        match checked {
            Some(Ok(_)) => {
                self.state = ClientState::Associated;
                if let Some(a) = self.agreement.clone() {
                    self.push_event(ClientEvent::Associated(a));
                }
            }
            Some(Err(e)) => self.association_failed(e),
            None => self.association_failed(security("keys", "no keys".into())),
        }
    }
}

fn initiate_error(e: &apdu::ConfirmedServiceError) -> String {
    use crate::apdu::errors::{INITIATE_ERRORS, SERVICE_ERROR_CLASSES};
    use crate::apdu::results::name_of;
    let class = name_of(SERVICE_ERROR_CLASSES, e.error).unwrap_or("?");
    let value =
        if e.error == 6 { name_of(INITIATE_ERRORS, e.value).unwrap_or("?").to_string() } else { e.value.to_string() };
    format!("initiate refused: {class}: {value}")
}
