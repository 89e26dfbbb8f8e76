//! Associating and releasing: none, LLS, HLS-GMAC with and without
//! ciphering (glo, ded, general-glo), refusals, timeouts, release.

use super::tests::*;
use super::*;
use crate::apdu::{self, Aare, Apdu, Diagnostic, InitiateResponse};

#[test]
fn lowest_level_both_sides_agree() {
    let mut s = plain_cfg();
    s.conformance = bits::GET | bits::SET | bits::ACTION | bits::MULTIPLE_REFERENCES;
    s.max_receive_pdu = 512;
    let mut w = Wire::new(plain_cfg(), s);
    w.associate(None, None);
    let a = w.c.agreement().unwrap().clone();
    assert_eq!(a.conformance, bits::GET | bits::SET | bits::ACTION | bits::MULTIPLE_REFERENCES);
    assert_eq!((a.peer_max_pdu, a.mechanism, a.ciphered, a.dlms_version), (512, 0, false, 6));
    let sa = w.s.agreement().unwrap();
    assert_eq!((sa.conformance, sa.peer_max_pdu), (a.conformance, 0xFFFF));
    // no counter was needed
    assert!(!w.cev.contains(&ClientEvent::NeedCounters));
    assert_eq!(w.c.last_outgoing_counter(), None);
}

#[test]
fn lls_password_checked() {
    let lls =
        |p: &[u8]| AssociationConfig { authentication: Authentication::Lls { password: p.to_vec() }, ..plain_cfg() };
    let mut w = Wire::new(lls(b"12345678"), lls(b"12345678"));
    w.associate(None, None);
    assert_eq!(w.c.agreement().unwrap().mechanism, 1);

    let mut w = Wire::new(lls(b"wrong"), lls(b"12345678"));
    w.c.open(0.0, None, None).unwrap();
    w.run();
    assert_eq!(w.c.state(), ClientState::Idle);
    let refused = w.cev.iter().find_map(|e| match e {
        ClientEvent::Refused { result, diagnostic, .. } => Some((*result, *diagnostic)),
        _ => None,
    });
    assert_eq!(refused, Some((1, Some(Diagnostic::ServiceUser(13)))));
    assert!(matches!(&w.sev[..], [ServerEvent::Refused { result: 1, .. }]), "{:?}", w.sev);
    // a password is never shown
    assert!(!format!("{:?}", lls(b"sekrit")).contains("sekrit"));
}

#[test]
fn mechanism_and_context_mismatches_are_refused_with_their_diagnostic() {
    let lls = AssociationConfig { authentication: Authentication::Lls { password: b"1".to_vec() }, ..plain_cfg() };
    let cases = [
        (plain_cfg(), lls.clone(), 12),                   // mechanism-name-required
        (lls, plain_cfg(), 11),                           // mechanism-name-not-recognised
        (plain_cfg(), hls_cfg(true, CipherMode::Glo), 2), // application-context-name-not-supported
    ];
    for (c, s, diag) in cases {
        let mut w = Wire::new(c, s);
        w.c.open(0.0, None, None).unwrap();
        w.run();
        let got = w.cev.iter().find_map(|e| match e {
            ClientEvent::Refused { diagnostic, .. } => *diagnostic,
            _ => None,
        });
        assert_eq!(got, Some(Diagnostic::ServiceUser(diag)), "{:?}", w.cev);
    }
}

#[test]
fn hls_gmac_without_ciphering() {
    let plain_hls = |server| AssociationConfig { ciphering: None, ..hls_cfg(server, CipherMode::Glo) };
    let mut w = Wire::new(plain_hls(false), plain_hls(true));
    w.associate(Some(b"K56iVagY"), None);
    let a = w.c.agreement().unwrap();
    assert_eq!((a.mechanism, a.ciphered), (5, false));
    assert_eq!(a.peer_system_title, Some(h(SERVER_ST).try_into().unwrap()));
    // pass 3 used one counter (f(StoC)), pass 4 one of the server's (f(CtoS))
    assert_eq!((w.c.last_outgoing_counter(), w.s.last_outgoing_counter()), (Some(1), Some(1)));
    // the requests that follow are plain
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 1))]);
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), octets(12, 1));
    assert_eq!(w.sent_with_tag(true, 0xC0).len(), 1);
}

fn hls_ciphered(mode: CipherMode, request_tag: u8, answer_tag: u8) {
    let mut w = Wire::hls(mode);
    let ded = if mode.dedicated() { Some(&[7u8; 16][..]) } else { None };
    w.associate(Some(b"K56iVagY-challenge"), ded);
    let a = w.c.agreement().unwrap().clone();
    assert_eq!((a.ciphered, a.dedicated_key), (true, mode.dedicated()));
    assert_eq!(w.s.agreement().unwrap().dedicated_key, mode.dedicated());
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 3))]);
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), octets(12, 3));
    // general-ciphering also carries the pass-3 ACTION and its answer
    let n = if mode.general() { 2 } else { 1 };
    assert_eq!(w.sent_with_tag(true, request_tag).len(), n, "{mode:?}");
    assert_eq!(w.sent_with_tag(false, answer_tag).len(), n, "{mode:?}");
    // no plain xDLMS APDU went either way after the AARQ/AARE
    for (_, apdu) in &w.log {
        assert!(!matches!(apdu[0], 0xC0..=0xC7), "plain {:02x} in {mode:?}", apdu[0]);
    }
    // counters: AARQ initiate 1, HLS request 2, f(StoC) 3, GET 4; every answer confirmed its request
    assert_eq!(w.c.last_outgoing_counter(), Some(4));
    assert_eq!(w.c.confirmed_outgoing_counter(), Some(4));
    assert_eq!(w.c.last_incoming_counter(), w.s.last_outgoing_counter());
    assert_eq!(w.s.last_incoming_counter(), Some(4));
}

#[test]
fn hls_gmac_glo() {
    hls_ciphered(CipherMode::Glo, 0xC8, 0xCC);
}

#[test]
fn hls_gmac_dedicated_key() {
    hls_ciphered(CipherMode::Ded, 0xD0, 0xD4);
}

#[test]
fn hls_gmac_general_glo() {
    hls_ciphered(CipherMode::GeneralGlo, 0xDB, 0xDB);
}

#[test]
fn hls_gmac_general_ded() {
    hls_ciphered(CipherMode::GeneralDed, 0xDC, 0xDC);
}

#[test]
fn hls_wrong_f_stoc_is_refused_and_a_forged_f_ctos_fails() {
    let plain_hls = |server| AssociationConfig { ciphering: None, ..hls_cfg(server, CipherMode::Glo) };
    // the server holds another AK: our f(StoC) does not verify
    let mut s = plain_hls(true);
    s.keys.as_mut().unwrap().ak[0] ^= 1;
    let mut w = Wire::new(plain_hls(false), s);
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    w.run();
    assert_eq!(w.c.state(), ClientState::Idle);
    assert!(w.cev.iter().any(|e| matches!(e, ClientEvent::Refused { result: 1, diagnostic: Some(Diagnostic::ServiceUser(13)), detail } if detail.contains("f(StoC)"))), "{:?}", w.cev);
    assert_eq!(w.s.state(), ServerState::AwaitingHls);

    // a man in the middle alters f(CtoS) in the pass-4 answer
    let mut w = Wire::new(plain_hls(false), plain_hls(true));
    w.hook = Box::new(|from_client, _, a| {
        let mut a = a.to_vec();
        if !from_client && a[0] == 0xC7 {
            let n = a.len();
            a[n - 1] ^= 0x01;
        }
        Some(a)
    });
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    w.run();
    let failed = w.cev.iter().find_map(|e| match e {
        ClientEvent::AssociationFailed(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(failed.unwrap().kind, crate::error::ErrorKind::AuthenticationFailed);
}

#[test]
fn hls_server_without_a_challenge_refuses_transiently() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.c.release(w.now).unwrap();
    w.run();
    // the challenge was consumed by the first AARQ
    w.c.open(w.now, Some(b"K56iVagY"), None).unwrap();
    w.run();
    assert!(w.cev.iter().any(|e| matches!(e, ClientEvent::Refused { result: 2, .. })), "{:?}", w.cev);
}

#[test]
fn only_hls_reply_is_served_before_pass_3() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    // deliver the AARQ and the AARE only
    w.hook = Box::new(|from_client, n, a| if !from_client || n == 0 { Some(a.to_vec()) } else { None });
    w.settle();
    assert_eq!(w.s.state(), ServerState::AwaitingHls);
    assert!(w.c.get(&[attr(8, CLOCK, 2)], w.now).is_err(), "not associated yet");
    // a GET before pass 3 (crafted plain) is refused
    w.s.receive_data(&h("C001C100080000010000FF0200"), 1.0);
    assert_eq!(w.s.data_to_send(), vec![h("D80101")]);
}

#[test]
fn release_plain_and_ciphered() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.c.release(w.now).unwrap();
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Released { confirmed: true }));
    assert_eq!(w.sev.last(), Some(&ServerEvent::Released));
    assert_eq!(w.sent_with_tag(true, 0x62), vec![h("6203800100")]);

    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.c.release(w.now).unwrap();
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Released { confirmed: true }));
    let rlrq = apdu::decode(&w.sent_with_tag(true, 0x62)[0]).unwrap();
    let Apdu::Rlrq(r) = rlrq else { panic!() };
    assert_eq!(r.user_information.unwrap().kind(), "glo-initiate-request");
    let rlre = apdu::decode(&w.sent_with_tag(false, 0x63)[0]).unwrap();
    let Apdu::Rlre(r) = rlre else { panic!() };
    assert_eq!(r.user_information.unwrap().kind(), "glo-initiate-response");
    // the association can be opened again (new challenges from the caller)
    w.s.set_challenge(b"another-StoC").unwrap();
    w.associate(Some(b"another-CtoS"), None);
}

#[test]
fn release_pending_requests_are_abandoned_and_rlre_may_never_come() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.auto_answer = false;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    w.c.release(w.now).unwrap();
    assert!(
        matches!(w.c.next_event(), Some(ClientEvent::Response { id: i, result: Err(RequestError::Abandoned(_)) }) if i == id)
    );
    w.hook = Box::new(|_, _, _| None); // the RLRQ is lost
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Released { confirmed: false }));
    assert_eq!(w.c.state(), ClientState::Idle);
}

#[test]
fn no_aare_times_out() {
    let mut w = Wire::plain();
    w.hook = Box::new(|_, _, _| None);
    w.c.open(0.0, None, None).unwrap();
    assert_eq!(w.c.next_deadline(), Some(5.0));
    w.run();
    assert!(
        matches!(w.cev.last(), Some(ClientEvent::AssociationFailed(e)) if e.kind == crate::ErrorKind::NoAnswer { millis: 5000 } && e.field == "AARE")
    );
    assert_eq!(w.c.state(), ClientState::Idle);
}

#[test]
fn open_checks_its_arguments() {
    let mut c = ClientAssociation::new(hls_cfg(false, CipherMode::Ded)).unwrap();
    assert_eq!(c.open(0.0, None, Some(&[1; 16])).unwrap_err().field, "challenge (CtoS)");
    assert_eq!(c.open(0.0, Some(b"short"), Some(&[1; 16])).unwrap_err().field, "challenge (CtoS)");
    assert_eq!(c.open(0.0, Some(b"K56iVagY"), None).unwrap_err().field, "dedicated key");
    let mut p = ClientAssociation::new(plain_cfg()).unwrap();
    assert!(p.open(0.0, Some(b"K56iVagY"), None).is_err());
    p.open(0.0, None, None).unwrap();
    assert!(p.open(0.0, None, None).is_err(), "already opening");
    // configurations name the field at fault
    let bad = AssociationConfig {
        ciphering: Some(Ciphering { security_control: 0x10, mode: CipherMode::Ded }),
        ..hls_cfg(false, CipherMode::Ded)
    };
    assert!(ClientAssociation::new(bad).unwrap_err().to_string().contains("dedicated key"));
    let bad = AssociationConfig { quirks: vec!["lenient".into()], ..plain_cfg() };
    assert!(ClientAssociation::new(bad).unwrap_err().to_string().contains("not a known quirk"));
    let bad = AssociationConfig {
        ciphering: Some(Ciphering { security_control: 0x30, mode: CipherMode::Glo }),
        ..plain_cfg()
    };
    assert_eq!(ClientAssociation::new(bad).err().unwrap().field, "config.keys");
}

/// An AARE for the client's ciphered AARQ with a plain InitiateResponse.
fn ciphered_client_fed(aare: Aare, quirks: Vec<String>) -> Vec<ClientEvent> {
    let cfg = AssociationConfig { authentication: Authentication::None, quirks, ..hls_cfg(false, CipherMode::Glo) };
    let mut c = ClientAssociation::new(cfg).unwrap();
    c.grant_counters(1, 10).unwrap();
    c.open(0.0, None, None).unwrap();
    c.data_to_send();
    c.receive_data(&Apdu::Aare(aare).encode(), 0.5);
    std::iter::from_fn(|| c.next_event()).collect()
}

#[test]
fn plain_or_missing_initiate_response_in_a_ciphered_association_needs_the_quirk() {
    let ir = InitiateResponse {
        negotiated_quality_of_service: None,
        negotiated_dlms_version_number: 6,
        negotiated_conformance: bits::GET,
        server_max_receive_pdu_size: 256,
        vaa_name: 7,
    };
    let aare = Aare {
        application_context_name: Some(apdu::association::context_oid(3)),
        result: 0,
        responding_ap_title: Some(h(SERVER_ST)),
        user_information: Some(Box::new(Apdu::InitiateResponse(ir))),
        ..Aare::default()
    };
    let quirk = vec!["plain-initiate-response".to_string()];
    for a in [aare.clone(), Aare { user_information: None, ..aare }] {
        let ev = ciphered_client_fed(a.clone(), vec![]);
        assert!(
            matches!(&ev[..], [ClientEvent::AssociationFailed(e)] if e.to_string().contains("plain-initiate-response")),
            "{ev:?}"
        );
        let ev = ciphered_client_fed(a, quirk.clone());
        let [ClientEvent::Quirk(q), ClientEvent::Associated(agreement)] = &ev[..] else { panic!("{ev:?}") };
        assert_eq!(q.quirk, "plain-initiate-response");
        assert_eq!(agreement.quirks_used, vec!["plain-initiate-response"]);
    }
}

#[test]
fn aare_naming_another_server_is_refused() {
    let aare = Aare {
        application_context_name: Some(apdu::association::context_oid(3)),
        result: 0,
        responding_ap_title: Some(h("4D4D4D0000000099")),
        ..Aare::default()
    };
    let ev = ciphered_client_fed(aare, vec!["plain-initiate-response".into()]);
    assert!(matches!(&ev[..], [ClientEvent::AssociationFailed(e)] if e.field == "AARE responding-AP-title"), "{ev:?}");
}

#[test]
fn aarq_replay_is_refused_by_the_server() {
    // the server saw counter 500 from this client: an AARQ ciphered with 1 is a replay
    let mut s = hls_cfg(true, CipherMode::Glo);
    s.last_incoming_counter = Some(500);
    let mut w = Wire::new(hls_cfg(false, CipherMode::Glo), s);
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    w.run();
    let detail = w.cev.iter().find_map(|e| match e {
        ClientEvent::Refused { result: 1, detail, .. } => Some(detail.clone()),
        _ => None,
    });
    assert!(detail.unwrap().contains("wrong keys?"));
    assert!(w
        .sev
        .iter()
        .any(|e| matches!(e, ServerEvent::Refused { why, .. } if why.contains("replayed invocation counter 1"))));
}

#[test]
fn a_server_refusing_all_rejects_every_aarq() {
    let mut w = Wire::plain();
    w.s.refuse_all("client SAP 5 has no association");
    w.c.open(w.now, None, None).unwrap();
    w.run();
    assert!(matches!(w.cev.last(), Some(ClientEvent::Refused { result: 1, .. })), "{:?}", w.cev);
    assert!(w.sev.iter().any(
        |e| matches!(e, ServerEvent::Refused { result: 1, diagnostic: crate::apdu::Diagnostic::ServiceUser(1), why } if why.contains("SAP 5"))
    ));
    assert_eq!(w.s.state(), ServerState::Idle);
    // anything else gets the exception-response of an APDU without an association
    w.s.receive_data(&h("C001C100080000010000FF0200"), w.now);
    assert_eq!(w.s.data_to_send(), vec![h("D80101")]);
}
