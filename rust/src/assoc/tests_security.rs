//! The security rules: counters handed in by the caller, replays refused,
//! counter hints surfaced within a bound only, plain APDUs refused in a
//! ciphered association, the PDU size and `max_block_transfer` caps, the
//! bounded event queue.

use super::tests::*;
use super::*;
use crate::apdu::GetDataResult;
use crate::error::ErrorKind;

#[test]
fn nothing_ciphered_leaves_without_a_granted_counter() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.auto_grant = false;
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    w.settle();
    assert_eq!(w.cev, vec![ClientEvent::NeedCounters]);
    assert!(w.log.is_empty(), "the AARQ waits for its counter");
    w.c.grant_counters(41, 1).unwrap();
    w.settle();
    // AARQ sent with 41; the server needs a counter for its AARE
    assert_eq!(w.log.len(), 1);
    assert_eq!(w.sev, vec![ServerEvent::NeedCounters]);
    w.s.grant_counters(7, 1).unwrap(); // the AARE's glo-InitiateResponse
    w.settle();
    // pass 3 needs two counters (request, then f(StoC)): asked for again, once
    assert_eq!(w.cev.iter().filter(|e| **e == ClientEvent::NeedCounters).count(), 2);
    w.c.grant_counters(50, 1).unwrap();
    w.settle();
    assert_eq!(w.c.last_outgoing_counter(), Some(41), "one counter is not enough for pass 3");
    w.c.grant_counters(51, 10).unwrap();
    w.settle();
    // pass 4 takes two of the server's: f(CtoS), then the answer's
    assert_eq!(w.sev.iter().filter(|e| **e == ServerEvent::NeedCounters).count(), 2);
    w.s.grant_counters(8, 2).unwrap();
    w.settle();
    assert_eq!(w.c.state(), ClientState::Associated);
    // 51.. continued the grant of 50: the request took 50, f(StoC) 51
    assert_eq!(w.c.last_outgoing_counter(), Some(51));
    assert_eq!(w.s.last_incoming_counter(), Some(50), "the request's counter, taken before f(StoC)'s");
    // a counter is never granted twice
    assert!(w.c.grant_counters(51, 5).is_err());
    assert!(w.c.grant_counters(10, 5).is_err());
}

#[test]
fn a_replayed_answer_is_refused() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    let first = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    let answer = w.sent_with_tag(false, 0xCC).pop().unwrap();
    assert_eq!(value(w.result(first)), octets(12, 0));
    let last = w.c.last_incoming_counter().unwrap();
    // the next GET gets the old answer (same invoke id would not even be needed)
    w.auto_answer = false;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    w.c.receive_data(&answer, w.now);
    let Some(ClientEvent::Response { id: got, result: Err(RequestError::Security(e)) }) = w.c.next_event() else {
        panic!()
    };
    assert_eq!(got, id);
    assert!(e.to_string().contains(&format!("replayed invocation counter {last}")), "{e}");
    assert_eq!(w.c.last_incoming_counter(), Some(last));
    // the caller's persisted last-seen counter counts from the start
    let cfg = AssociationConfig { last_incoming_counter: Some(1_000_000), ..hls_cfg(false, CipherMode::Glo) };
    let mut w = Wire::new(cfg, hls_cfg(true, CipherMode::Glo));
    w.c.open(0.0, Some(b"K56iVagY"), None).unwrap();
    w.run();
    assert!(
        matches!(w.cev.last(), Some(ClientEvent::AssociationFailed(e)) if e.to_string().contains("replayed invocation counter 1 ")),
        "{:?}",
        w.cev
    );
}

#[test]
fn a_tampered_answer_fails_authentication() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    w.hook = Box::new(|from_client, _, a| {
        let mut a = a.to_vec();
        if !from_client && a[0] == 0xCC {
            a[10] ^= 0x40;
        }
        Some(a)
    });
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    let Err(RequestError::Security(e)) = w.result(id) else { panic!("{:?}", w.result(id)) };
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
}

#[test]
fn plain_apdus_in_a_ciphered_association() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.auto_answer = false;
    // a plain get-response with the right invoke id is refused
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    let invoke = w.sent_with_tag(true, 0xC8).len() as u8 + 0xC1;
    w.c.receive_data(&[0xC4, 0x01, invoke, 0x00, 0x09, 0x00], w.now);
    let Some(ClientEvent::Response { id: got, result: Err(RequestError::Security(e)) }) = w.c.next_event() else {
        panic!()
    };
    assert_eq!(got, id);
    assert!(e.to_string().contains("unciphered c4 APDU in a ciphered association"), "{e}");
    // a plain exception-response of 3 (or 7) bytes is read; it ends the request
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.c.receive_data(&h("D80102"), w.now);
    assert_eq!(
        w.c.next_event(),
        Some(ClientEvent::Response {
            id,
            result: Err(RequestError::Exception { state_error: 1, service_error: 2, invocation_counter: None })
        })
    );
    // ... but not one reassembled from GBT (tested in the GBT wire below), nor a confirmed-service-error
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.c.receive_data(&h("0E010302"), w.now);
    assert!(
        matches!(w.c.next_event(), Some(ClientEvent::Response { id: i, result: Err(RequestError::Security(_)) }) if i == id)
    );
    // the server refuses a plain request in a ciphered association
    w.s.receive_data(&h("C001C100080000010000FF0200"), w.now);
    assert_eq!(w.s.data_to_send(), vec![h("D80101")]);
}

#[test]
fn plain_payload_via_gbt_is_refused() {
    let conformance = bits::GET | bits::GENERAL_BLOCK_TRANSFER;
    let mut c = AssociationConfig { conformance, ..hls_cfg(false, CipherMode::Glo) };
    c.authentication = Authentication::None;
    let mut c = ClientAssociation::new(c).unwrap();
    c.grant_counters(1, 100).unwrap();
    c.open(0.0, None, None).unwrap();
    c.data_to_send();
    // an AARE carrying a properly ciphered InitiateResponse, built by a server
    let mut s = ServerAssociation::new(AssociationConfig {
        conformance,
        authentication: Authentication::None,
        ..hls_cfg(true, CipherMode::Glo)
    })
    .unwrap();
    s.grant_counters(1, 100).unwrap();
    let aarq = {
        let mut c2 = ClientAssociation::new(AssociationConfig {
            conformance,
            authentication: Authentication::None,
            ..hls_cfg(false, CipherMode::Glo)
        })
        .unwrap();
        c2.grant_counters(1, 1).unwrap();
        c2.open(0.0, None, None).unwrap();
        c2.data_to_send().remove(0)
    };
    s.receive_data(&aarq, 0.0);
    let aare = s.data_to_send().remove(0);
    c.receive_data(&aare, 0.1);
    assert!(matches!(c.next_event(), Some(ClientEvent::Associated(_))));
    let id = c.get(&[attr(8, CLOCK, 2)], 0.2).unwrap();
    // D80102 in one GBT block
    c.receive_data(&h("E0 80 0001 0000 03 D80102"), 0.3);
    let Some(ClientEvent::Response { id: got, result: Err(RequestError::Security(e)) }) = c.next_event() else {
        panic!()
    };
    assert_eq!(got, id);
    assert!(e.to_string().contains("reassembled from general-block-transfer"), "{e}");
}

#[test]
fn counter_hints_are_surfaced_within_the_bound_only() {
    let cfg = AssociationConfig {
        authentication: Authentication::None,
        max_counter_hint_jump: 5000,
        ..hls_cfg(false, CipherMode::Glo)
    };
    let mut w =
        Wire::new(cfg, AssociationConfig { authentication: Authentication::None, ..hls_cfg(true, CipherMode::Glo) });
    w.next_counter[0] = 1000;
    w.associate(None, None);
    w.auto_answer = false;
    // AARQ used 1000, confirmed by the ciphered InitiateResponse: the base is 1001
    assert_eq!(w.c.confirmed_outgoing_counter(), Some(1000));
    let hint = |w: &mut Wire, ic: u32| {
        let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
        w.settle();
        let mut x = h("D80106");
        x.extend_from_slice(&ic.to_be_bytes());
        w.c.receive_data(&x, w.now);
        let events: Vec<ClientEvent> = std::iter::from_fn(|| w.c.next_event()).collect();
        assert!(events.contains(&ClientEvent::Response {
            id,
            result: Err(RequestError::Exception { state_error: 1, service_error: 6, invocation_counter: Some(ic) }),
        }));
        (id, events)
    };
    let (id, ev) = hint(&mut w, 3000);
    assert_eq!(ev[0], ClientEvent::CounterHint { id, expected: 3000, confirmed_base: 1001 });
    // beyond the bound: reported, not surfaced
    let (_, ev) = hint(&mut w, 1001 + 5001);
    assert!(
        matches!(&ev[0], ClientEvent::ProtocolError(e) if e.to_string().contains("at most 5000 followed")),
        "{ev:?}"
    );
    // not ahead of what we would send next: ignored
    let (_, ev) = hint(&mut w, 1002);
    assert!(matches!(&ev[0], ClientEvent::ProtocolError(e) if e.to_string().contains("not ahead")), "{ev:?}");
    // the caller follows the first hint: grants from 3000; an authenticated answer confirms it
    w.c.grant_counters(3000, 10).unwrap();
    w.auto_answer = true;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert!(w.result(id).is_ok());
    assert_eq!(w.c.confirmed_outgoing_counter(), Some(3000));
    // unciphered associations never surface hints
    let mut p = Wire::plain();
    p.associate(None, None);
    p.auto_answer = false;
    p.c.get(&[attr(8, CLOCK, 2)], p.now).unwrap();
    p.settle();
    p.c.receive_data(&h("D8010600000BB8"), p.now);
    assert!(matches!(p.c.next_event(), Some(ClientEvent::Response { .. })));
    assert_eq!(p.c.next_event(), None);
}

#[test]
fn the_server_answers_a_replayed_request_with_its_expected_counter() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    let request = w.sent_with_tag(true, 0xC8).pop().unwrap();
    let last = w.s.last_incoming_counter().unwrap();
    w.s.receive_data(&request, w.now);
    let mut want = h("D80106");
    want.extend_from_slice(&(last + 1).to_be_bytes());
    assert_eq!(w.s.data_to_send(), vec![want]);
    assert!(w.server_errors().is_empty() || w.s.next_event().is_some());
    // and a tampered one with deciphering-error
    let mut bad = request.clone();
    bad[12] ^= 1;
    w.s.receive_data(&bad, w.now);
    assert_eq!(w.s.data_to_send(), vec![h("D80105")]);
}

#[test]
fn encryption_only_counters_are_compared_not_recorded() {
    let sc20 = |server| {
        let mut c = hls_cfg(server, CipherMode::Glo);
        c.authentication = Authentication::None;
        c.ciphering = Some(Ciphering { security_control: 0x20, mode: CipherMode::Glo });
        c
    };
    let mut w = Wire::new(sc20(false), sc20(true));
    w.associate(None, None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), octets(12, 0));
    assert_eq!(w.c.last_incoming_counter(), None, "nothing authenticated, nothing recorded");
    assert_eq!(w.c.confirmed_outgoing_counter(), None);
    assert_eq!(w.s.last_incoming_counter(), None);
}

#[test]
fn an_apdu_over_our_pdu_size_is_refused() {
    let mut w = Wire::new(AssociationConfig { max_receive_pdu: 128, ..plain_cfg() }, plain_cfg());
    w.associate(None, None);
    w.auto_answer = false;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    let mut big = h("C401C100");
    big.extend(octets(130, 0));
    w.c.receive_data(&big, w.now);
    let Some(ClientEvent::Response { id: got, result: Err(RequestError::Protocol(e)) }) = w.c.next_event() else {
        panic!()
    };
    assert_eq!(got, id);
    assert_eq!(e.kind, ErrorKind::TooLong { length: 137, limit: 128 });
    assert!(e.to_string().contains("our max receive PDU size"));
    // the server too
    let mut s = ServerAssociation::new(AssociationConfig { max_receive_pdu: 100, ..plain_cfg() }).unwrap();
    s.receive_data(&[0xC0; 101], 0.0);
    assert_eq!(s.data_to_send(), vec![h("D80104")]);
}

#[test]
fn a_reassembled_answer_over_max_block_transfer_is_refused() {
    let conf = bits::GET | bits::BLOCK_TRANSFER_WITH_GET | bits::GENERAL_BLOCK_TRANSFER;
    for gbt in [false, true] {
        let conformance = if gbt { conf } else { conf & !bits::GENERAL_BLOCK_TRANSFER };
        let c = AssociationConfig { max_receive_pdu: 128, max_block_transfer: 1024, conformance, ..plain_cfg() };
        let mut w = Wire::new(c, AssociationConfig { conformance, ..plain_cfg() });
        w.associate(None, None);
        w.model = Model::with(&[(7, PROFILE, 2, octets(5000, 1))]);
        let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
        w.run();
        let Err(RequestError::Protocol(e)) = w.result(id) else { panic!("{:?}", w.result(id)) };
        let what = if gbt { "general-block-transfer (max_block_transfer)" } else { "data blocks (max_block_transfer)" };
        assert_eq!(e.field, what);
        assert!(
            matches!(e.kind, ErrorKind::TooLongAtBlock { limit: 1024, length, block } if length > 1024 && block > 1)
        );
        // it stopped asking: at most 1024 bytes were taken
        let moved: usize = w.log.iter().filter(|(c, _)| !c).map(|(_, a)| a.len()).sum();
        assert!(moved < 1024 + 2 * 128 + 64, "{moved}");
    }
    // the server caps requests in blocks the same way
    let s = AssociationConfig { max_block_transfer: 1024, ..plain_cfg() };
    let c = AssociationConfig { max_send_pdu: Some(128), ..plain_cfg() };
    let mut w = Wire::new(c, s);
    w.associate(None, None);
    let id = w.c.set(&[(attr(1, FIRMWARE, 2), octets(3000, 1))], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![17])), "long-set-aborted");
}

#[test]
fn the_event_queue_is_bounded() {
    let mut w = Wire::new(AssociationConfig { max_events: 8, ..plain_cfg() }, plain_cfg());
    w.associate(None, None);
    w.cev.clear();
    for _ in 0..50 {
        w.c.receive_data(&h("C401C900090100"), w.now); // unexpected invoke id: an event each
    }
    assert_eq!(w.c.stats().dropped_queue_full, 42);
    assert_eq!(std::iter::from_fn(|| w.c.next_event()).count(), 8);
    let mut s = ServerAssociation::new(AssociationConfig { max_events: 8, ..plain_cfg() }).unwrap();
    for _ in 0..50 {
        s.receive_data(&h("C001C100080000010000FF0200"), 0.0);
    }
    assert_eq!(s.stats().dropped_queue_full, 42);
}

#[test]
fn keys_never_show() {
    let k = keys(CLIENT_ST);
    let shown = format!("{:?} {:?}", k, hls_cfg(false, CipherMode::Glo));
    assert!(!shown.contains("d0d1") && !shown.contains("208, 209"), "{shown}");
    assert!(shown.contains("4d4d4d0000000001"));
    let _ = GetDataResult::DataAccessResult(0);
}

#[test]
fn persisted_peer_counters_are_applied_once_the_peer_is_known() {
    // The client learns the server's title from the AARE: a counter the
    // caller persisted for that title makes an older answer a replay.
    let server_title: [u8; 8] = h(SERVER_ST).try_into().unwrap();
    let client_title: [u8; 8] = h(CLIENT_ST).try_into().unwrap();
    let mut ccfg = hls_cfg(false, CipherMode::Glo);
    ccfg.peer_system_title = None;
    let mut w = Wire::new(ccfg.clone(), hls_cfg(true, CipherMode::Glo));
    w.c.remember_peer_counter(server_title, 5000);
    w.c.remember_peer_counter(*b"OTHERMTR", 9_000_000); // another meter: not applied
    w.c.open(w.now, Some(b"K56iVagY"), None).unwrap();
    w.run();
    // the server's counters start at 1: its AARE InitiateResponse is a replay
    assert_eq!(w.c.state(), ClientState::Idle, "{:#?}", w.cev);
    let failed = w.cev.iter().find_map(|e| match e {
        ClientEvent::AssociationFailed(e) => Some(e.to_string()),
        _ => None,
    });
    assert!(failed.as_deref().is_some_and(|m| m.contains("replayed invocation counter 1")), "{failed:?}");
    // past the persisted counter all is well, and the last counter is readable back
    let mut w = Wire::new(ccfg, hls_cfg(true, CipherMode::Glo));
    w.next_counter[1] = 5001;
    w.c.remember_peer_counter(server_title, 5000);
    w.associate(Some(b"K56iVagY"), None);
    assert!(w.c.last_incoming_counter().is_some_and(|c| c > 5000));

    // The server: the client's title comes with the AARQ.
    let mut w = Wire::hls(CipherMode::Glo);
    w.s.remember_peer_counter(client_title, 700);
    w.c.open(w.now, Some(b"K56iVagY"), None).unwrap();
    w.run();
    assert!(w.sev.iter().any(|e| matches!(e, ServerEvent::Refused { .. })), "{:#?}", w.sev);
    let mut w = Wire::hls(CipherMode::Glo);
    w.next_counter[0] = 701;
    w.s.remember_peer_counter(client_title, 700);
    w.associate(Some(b"K56iVagY"), None);
    assert!(w.s.last_incoming_counter().is_some_and(|c| c > 700));
}

#[test]
fn transport_progress_restarts_the_silence_timer() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.auto_answer = false;
    let t0 = w.now;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    assert_eq!(w.c.next_deadline(), Some(t0 + 5.0));
    // segments of a long answer keep arriving below: the request is not late
    w.c.progress(t0 + 4.0);
    w.c.handle_timeout(t0 + 6.0);
    assert!(w.c.next_event().is_none());
    assert_eq!(w.c.next_deadline(), Some(t0 + 9.0));
    w.c.handle_timeout(t0 + 9.0);
    assert_eq!(w.c.next_event(), Some(ClientEvent::Timeout { id }));
    // the AARE deadline moves the same way
    let mut c = ClientAssociation::new(plain_cfg()).unwrap();
    c.open(0.0, None, None).unwrap();
    c.progress(3.0);
    assert_eq!(c.next_deadline(), Some(8.0));
}
