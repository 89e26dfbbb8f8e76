//! The server's association: the AARQ checks in Green Book order and the
//! AARE (with the HLS-GMAC challenge), the RLRQ/RLRE, the end of an association.

use subtle::ConstantTimeEq;

use super::cipher::{Crypto, Refusal};
use super::config::{hex, Authentication};
use super::server::{proto, Pending, ServerAssociation, ServerState};
use super::types::{Agreement, ServerEvent};
use crate::apdu::association::{context_oid, mechanism_oid};
use crate::apdu::{self, Aare, Aarq, Apdu, ConfirmedServiceError, Diagnostic, InitiateResponse, Release};

/// Why an AARQ is refused: the AARE's result and acse-service-user
/// diagnostic, the reason for the log, and the user-information to send.
pub(super) struct Rejection {
    result: i64,
    diag: i64,
    why: String,
    ui: Option<Box<Apdu>>,
}

fn rej(result: i64, diag: i64, why: impl Into<String>, ui: Option<Apdu>) -> Rejection {
    Rejection { result, diag, why: why.into(), ui: ui.map(Box::new) }
}

impl ServerAssociation {
    pub(super) fn drop_association(&mut self) {
        if self.state != ServerState::Idle {
            self.push_event(ServerEvent::Released);
        }
        self.state = ServerState::Idle;
        self.agreement = None;
        self.reqs.clear();
        self.long = None;
        self.incoming = None;
        self.gbt_tx = None;
        self.gbt_rx.reset();
        self.peer_window = 1;
        self.outbox.retain(|p| matches!(p, Pending::Acse { .. }));
    }

    /// The base name of the current association (SN) or 7 (LN).
    fn vaa_name(&self) -> u16 {
        if self.cfg.sn() {
            crate::apdu::sn::CURRENT_ASSOCIATION_BASE_NAME
        } else {
            0x0007
        }
    }

    pub(super) fn reject(&mut self, r: Rejection) {
        let Rejection { result, diag, why, ui } = r;
        let ctx = context_oid(self.cfg.context());
        let aare = Aare {
            application_context_name: Some(ctx),
            result,
            result_source_diagnostic: Some(Diagnostic::ServiceUser(diag)),
            user_information: ui,
            ..Aare::default()
        };
        self.stats.refused += 1;
        self.send(Apdu::Aare(aare).encode(), None);
        self.push_event(ServerEvent::Refused { result, diagnostic: Diagnostic::ServiceUser(diag), why });
    }

    pub(super) fn on_aarq(&mut self, data: &[u8]) {
        self.drop_association();
        let aarq = match apdu::decode(data) {
            Ok(Apdu::Aarq(a)) => a,
            Ok(_) | Err(_) => {
                let aare = Aare {
                    application_context_name: Some(context_oid(self.cfg.context())),
                    result: 1,
                    result_source_diagnostic: Some(Diagnostic::ServiceProvider(1)),
                    ..Aare::default()
                };
                self.send(Apdu::Aare(aare).encode(), None);
                let why = apdu::decode(data).err().map_or("not an AARQ".to_string(), |e| e.to_string());
                return self.push_event(ServerEvent::Refused {
                    result: 1,
                    diagnostic: Diagnostic::ServiceProvider(1),
                    why,
                });
            }
        };
        if let Some(why) = self.refusing.clone() {
            return self.reject(rej(1, 1, why, None));
        }
        if let Err(r) = self.accept(aarq) {
            self.reject(r);
        }
    }

    /// Green Book order: context, mechanism, credentials, calling AP title,
    /// then the xDLMS InitiateRequest.
    pub(super) fn accept(&mut self, aarq: Aarq) -> std::result::Result<(), Rejection> {
        let ciphered = self.ciphered();
        let ours = context_oid(self.cfg.context());
        if aarq.application_context_name != ours {
            let name = |oid: &[u8]| match crate::apdu::association::context_name(oid) {
                Some(n) => n.to_string(),
                None => hex(oid),
            };
            return Err(rej(
                1,
                2,
                format!(
                    "application context {} asked, the server uses {}",
                    name(&aarq.application_context_name),
                    name(&ours)
                ),
                None,
            ));
        }
        let want = self.cfg.authentication.mechanism();
        let got = match &aarq.mechanism_name {
            None => 0,
            Some(oid) => (0..=7u8).find(|n| mechanism_oid(*n) == *oid).unwrap_or(u8::MAX),
        };
        if got != want {
            let diag = if got == 0 { 12 } else { 11 };
            return Err(rej(
                1,
                diag,
                format!("mechanism {got} used, {} required", self.cfg.authentication.name()),
                None,
            ));
        }
        let secret = aarq.calling_authentication_value.clone().unwrap_or_default();
        let hls = matches!(self.cfg.authentication, Authentication::HlsGmac);
        match &self.cfg.authentication {
            Authentication::Lls { password } if !bool::from(password.as_slice().ct_eq(&secret)) => {
                return Err(rej(1, 13, "wrong LLS password", None));
            }
            Authentication::HlsGmac if !(8..=64).contains(&secret.len()) => {
                return Err(rej(1, 13, format!("a CtoS of {} bytes (8..=64)", secret.len()), None));
            }
            _ => {}
        }
        let title = match aarq.calling_ap_title.as_deref() {
            None => self.cfg.peer_system_title,
            Some(t) => match <[u8; 8]>::try_from(t) {
                Ok(t) => Some(t),
                Err(_) => return Err(rej(1, 3, format!("calling-AP-title {} is not 8 bytes", hex(t)), None)),
            },
        };
        if let (Some(t), Some(p)) = (title, self.cfg.peer_system_title) {
            if t != p {
                return Err(rej(
                    1,
                    3,
                    format!("calling-AP-title {} is not the configured client {}", hex(&t), hex(&p)),
                    None,
                ));
            }
        }
        if (ciphered || hls) && title.is_none() {
            return Err(rej(1, 3, "no calling-AP-title (a system title is needed for ciphering / HLS-GMAC)", None));
        }
        let stoc = if hls {
            match self.challenge.take() {
                Some(c) => Some(c),
                None => return Err(rej(2, 1, "no server challenge was provided (set_challenge)", None)),
            }
        } else {
            None
        };
        self.crypto = match &self.cfg.keys {
            Some(k) => {
                let last = self.crypto.as_ref().map_or(self.cfg.last_incoming_counter, |c| c.last_incoming);
                Crypto::new(k, title, last).ok().map(|mut c| {
                    c.set_known(&self.known);
                    c
                })
            }
            None => None,
        };
        let initiate_error =
            |value: u8| Some(Apdu::ConfirmedServiceError(ConfirmedServiceError { service: 1, error: 6, value }));
        let Some(ui) = aarq.user_information.map(|b| *b) else {
            return Err(rej(1, 1, "an AARQ without an xDLMS InitiateRequest", None));
        };
        let mut initiate_sc = 0x30;
        let initiate = if ciphered {
            let is_glo = matches!(&ui, Apdu::Ciphered(c) if c.tag == 0x21)
                || matches!(&ui, Apdu::GeneralCiphering(g) if !g.dedicated);
            if !is_glo {
                return Err(rej(
                    1,
                    1,
                    format!("a ciphered context needs a glo-initiate-request, got {}", ui.kind()),
                    None,
                ));
            }
            let required = self.required();
            let Some(c) = self.crypto.as_mut() else { return Err(rej(1, 1, "no keys", None)) };
            match c.unprotect(&ui.encode(), required) {
                Ok((p, f)) => {
                    initiate_sc = f.security_control & 0x30;
                    apdu::decode(&p).ok()
                }
                Err(r) => {
                    return Err(rej(1, 1, format!("the InitiateRequest was refused: {}", r.error()), initiate_error(0)))
                }
            }
        } else {
            Some(ui)
        };
        let Some(Apdu::InitiateRequest(ir)) = initiate else {
            return Err(rej(1, 1, "the user-information holds no InitiateRequest", initiate_error(0)));
        };
        let common = ir.proposed_conformance & self.cfg.conformance;
        let pdu = ir.client_max_receive_pdu_size;
        let error = if ir.proposed_dlms_version_number < 6 {
            Some((1, "dlms-version-too-low"))
        } else if pdu != 0 && pdu < 12 {
            Some((3, "pdu-size-too-short"))
        } else if common == 0 {
            Some((2, "incompatible-conformance"))
        } else {
            None
        };
        if let Some((value, name)) = error {
            return Err(rej(1, 1, format!("InitiateRequest refused: {name}"), initiate_error(value)));
        }
        let mut dedicated = false;
        if let (true, Some(k)) = (ciphered, ir.dedicated_key.as_deref()) {
            let Some(c) = self.crypto.as_mut() else { return Err(rej(1, 1, "no keys", None)) };
            if c.set_dedicated(k).is_err() {
                return Err(rej(1, 1, format!("a dedicated key of {} bytes", k.len()), initiate_error(0)));
            }
            dedicated = true;
        }
        self.agreement = Some(Agreement {
            conformance: common,
            peer_max_pdu: if pdu == 0 { 0xFFFF } else { pdu },
            dlms_version: 6,
            peer_system_title: title,
            mechanism: want,
            ciphered,
            dedicated_key: dedicated,
            quirks_used: Vec::new(),
            initiate_response_missing: false,
        });
        let response = InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version_number: 6,
            negotiated_conformance: common,
            server_max_receive_pdu_size: self.cfg.max_receive_pdu,
            vaa_name: self.vaa_name(),
        };
        let mut aare = Aare {
            application_context_name: Some(ours),
            result: 0,
            result_source_diagnostic: Some(Diagnostic::ServiceUser(if hls { 14 } else { 0 })),
            ..Aare::default()
        };
        if ciphered || hls {
            aare.responding_ap_title = self.cfg.keys.as_ref().map(|k| k.system_title.to_vec());
        }
        if let Some(stoc) = stoc {
            aare.responder_acse_requirements = Some(true);
            aare.mechanism_name = Some(mechanism_oid(5));
            aare.responding_authentication_value = Some(stoc.clone());
            self.stoc = stoc;
            self.ctos = secret;
        }
        if ciphered {
            let initiate = Apdu::InitiateResponse(response).encode();
            self.outbox.push_back(Pending::Acse {
                apdu: Box::new(Apdu::Aare(aare)),
                initiate,
                security_control: initiate_sc,
            });
            self.flush();
        } else {
            aare.user_information = Some(Box::new(Apdu::InitiateResponse(response)));
            self.send(Apdu::Aare(aare).encode(), None);
        }
        if hls {
            self.state = ServerState::AwaitingHls;
        } else {
            self.state = ServerState::Associated;
            if let Some(a) = self.agreement.clone() {
                self.push_event(ServerEvent::Associated(a));
            }
        }
        Ok(())
    }

    pub(super) fn on_rlrq(&mut self, data: &[u8]) {
        let ui = match apdu::decode(data) {
            Ok(Apdu::Rlrq(r)) => r.user_information.map(|b| *b),
            _ => None,
        };
        let rlre = |reason| Release { reason: Some(reason), user_information: None };
        if self.state == ServerState::Idle || !self.ciphered() || ui.is_none() {
            self.drop_association();
            return self.send(Apdu::Rlre(rlre(0)).encode(), None);
        }
        let required = self.required();
        let checked = match (self.crypto.as_mut(), ui) {
            (Some(c), Some(ui)) => c.unprotect(&ui.encode(), required).map_err(Refusal::error),
            _ => Err(proto("RLRQ", "no keys".into())),
        };
        match checked {
            Ok((_, f)) => {
                let response = InitiateResponse {
                    negotiated_quality_of_service: None,
                    negotiated_dlms_version_number: 6,
                    negotiated_conformance: self.conformance(),
                    server_max_receive_pdu_size: self.cfg.max_receive_pdu,
                    vaa_name: self.vaa_name(),
                };
                self.drop_association();
                let initiate = Apdu::InitiateResponse(response).encode();
                let sc = f.security_control & 0x30;
                self.outbox.push_back(Pending::Acse {
                    apdu: Box::new(Apdu::Rlre(rlre(0))),
                    initiate,
                    security_control: sc,
                });
                self.flush();
            }
            Err(e) => {
                // A release that does not authenticate leaves the association as it is.
                self.send(Apdu::Rlre(rlre(1)).encode(), None);
                self.push_event(ServerEvent::ProtocolError(e));
            }
        }
    }
}
