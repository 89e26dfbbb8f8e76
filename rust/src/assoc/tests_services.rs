//! GET / SET / ACTION between the two machines: normal, with-list, service
//! blocks both ways, general-block-transfer (window 1 and streaming windows,
//! lost blocks), exception-responses, timeouts, late answers, invoke ids.

use super::tests::*;
use super::*;
use crate::apdu::{self, ActionResult, Apdu, GetDataResult};

const ALL: u32 = bits::GET
    | bits::SET
    | bits::ACTION
    | bits::MULTIPLE_REFERENCES
    | bits::SELECTIVE_ACCESS
    | bits::BLOCK_TRANSFER_WITH_GET
    | bits::BLOCK_TRANSFER_WITH_SET
    | bits::BLOCK_TRANSFER_WITH_ACTION;

/// Service blocks, no GBT; the client takes 128-byte APDUs and the server 200.
fn small_pdus(conformance: u32) -> Wire<'static> {
    let c = AssociationConfig { max_receive_pdu: 128, conformance, ..plain_cfg() };
    let s = AssociationConfig { max_receive_pdu: 200, conformance, ..plain_cfg() };
    let mut w = Wire::new(c, s);
    w.associate(None, None);
    w
}

#[test]
fn get_normal_and_with_list() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0)), (1, FIRMWARE, 2, octets(5, 9))]);
    let one = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(one)), octets(12, 0));
    let list = w.c.get(&[attr(1, FIRMWARE, 2), attr(3, PROFILE, 2), attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(
        w.result(list),
        Ok(Outcome::Get(vec![
            GetDataResult::Data(octets(5, 9)),
            GetDataResult::DataAccessResult(4),
            GetDataResult::Data(octets(12, 0)),
        ]))
    );
    assert_eq!(w.sent_with_tag(true, 0xC0).iter().map(|a| a[1]).collect::<Vec<_>>(), vec![1, 3]);
    // invoke ids 1, 2 with priority high and the confirmed service class
    assert_eq!(w.sent_with_tag(true, 0xC0).iter().map(|a| a[2]).collect::<Vec<_>>(), vec![0xC1, 0xC2]);
}

#[test]
fn conformance_is_enforced_before_sending() {
    let mut w = small_pdus(bits::GET);
    let sel = AttributeRef {
        access: Some(apdu::SelectiveAccess { selector: 2, parameters: apdu::entry_descriptor(1, 2, 1, 0).encode() }),
        ..attr(7, PROFILE, 2)
    };
    for e in [
        w.c.get(&[attr(8, CLOCK, 2), attr(8, CLOCK, 3)], 0.0).unwrap_err(),
        w.c.get(&[sel], 0.0).unwrap_err(),
        w.c.set(&[(attr(8, CLOCK, 2), octets(12, 0))], 0.0).unwrap_err(),
        w.c.action(&[(method(70, [0, 0, 96, 3, 10, 255], 1), None)], 0.0).unwrap_err(),
    ] {
        assert_eq!(e.field, "conformance", "{e}");
    }
    assert!(w.c.get(&[], 0.0).is_err());
    assert_eq!(w.c.set(&[(attr(8, CLOCK, 2), vec![0x09, 0x05])], 0.0).unwrap_err().field, "conformance");
    let mut w = Wire::plain();
    w.associate(None, None);
    assert_eq!(w.c.set(&[(attr(8, CLOCK, 2), vec![0x09, 0x05])], 0.0).unwrap_err().field, "SET value");
}

#[test]
fn get_in_datablocks_is_reassembled() {
    let mut w = small_pdus(ALL);
    let big = octets(1000, 4);
    w.model = Model::with(&[(7, PROFILE, 2, big.clone()), (8, CLOCK, 2, octets(12, 0))]);
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), big);
    let blocks = w.sent_with_tag(false, 0xC4);
    assert!(blocks.len() >= 9 && blocks.iter().all(|b| b.len() <= 128 && b[1] == 2), "{}", blocks.len());
    let nexts = w.sent_with_tag(true, 0xC0);
    assert_eq!(nexts.len(), blocks.len(), "the request and one get-request-next per block but the last");
    for (i, n) in nexts[1..].iter().enumerate() {
        assert_eq!(n, &[&[0xC0, 2, 0xC1][..], &(i as u32 + 1).to_be_bytes()].concat());
    }
    // the with-list form: SEQUENCE OF Get-Data-Result in the blocks
    let id = w.c.get(&[attr(8, CLOCK, 2), attr(7, PROFILE, 2), attr(1, FIRMWARE, 2)], w.now).unwrap();
    w.run();
    let want = vec![GetDataResult::Data(octets(12, 0)), GetDataResult::Data(big), GetDataResult::DataAccessResult(4)];
    assert_eq!(w.result(id), Ok(Outcome::Get(want)));
}

#[test]
fn an_answer_too_long_without_block_transfer_is_refused_by_the_server() {
    let mut w = small_pdus(bits::GET | bits::ACTION);
    w.model = Model::with(&[(7, PROFILE, 2, octets(1000, 4))]);
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Get(vec![GetDataResult::DataAccessResult(250)])));
    assert!(w.server_errors().iter().any(|e| e.contains("no block transfer was agreed")));
}

#[test]
fn set_normal_with_list_and_in_datablocks() {
    let mut w = small_pdus(ALL);
    let id = w.c.set(&[(attr(8, CLOCK, 2), octets(12, 1))], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0])));
    let id = w.c.set(&[(attr(8, CLOCK, 2), octets(12, 2)), (attr(1, FIRMWARE, 2), octets(3, 3))], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0, 0])));
    // 700 bytes > the server's 200: datablocks, each APDU within 200
    let big = octets(700, 5);
    let id = w.c.set(&[(attr(1, FIRMWARE, 2), big.clone())], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0])));
    assert_eq!(w.model.values[&(1, FIRMWARE, 2)], big);
    let blocks = w.sent_with_tag(true, 0xC1);
    let kinds: Vec<u8> = blocks[2..].iter().map(|b| b[1]).collect();
    assert_eq!(kinds[0], 2, "with-first-datablock");
    assert!(kinds[1..].iter().all(|k| *k == 3), "{kinds:?}");
    assert!(blocks.iter().all(|b| b.len() <= 200));
    assert_eq!(
        apdu::decode(w.sent_with_tag(false, 0xC5).last().unwrap()).unwrap().kind(),
        "set-response-last-datablock"
    );
    // with-list in datablocks
    let id = w.c.set(&[(attr(1, FIRMWARE, 2), octets(300, 6)), (attr(7, PROFILE, 3), octets(300, 7))], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0, 0])));
    assert_eq!(w.model.values[&(7, PROFILE, 3)], octets(300, 7));
    assert_eq!(w.sent_with_tag(true, 0xC1).iter().filter(|b| b[1] == 5).count(), 1);
}

#[test]
fn action_pblocks_both_ways_and_with_list() {
    let mut w = small_pdus(ALL);
    let disconnect = method(70, [0, 0, 96, 3, 10, 255], 1);
    let id = w.c.action(&[(disconnect.clone(), Some(vec![0x0F, 0x00]))], w.now).unwrap();
    w.run();
    assert_eq!(
        w.result(id),
        Ok(Outcome::Action(vec![ActionResult { result: 0, return_data: Some(GetDataResult::Data(vec![0x0F, 0])) }]))
    );
    // 600 bytes of parameters out in pblocks, echoed back as return data in pblocks
    let big = octets(600, 8);
    let image = method(18, [0, 0, 44, 0, 0, 255], 2);
    let id = w.c.action(&[(image.clone(), Some(big.clone()))], w.now).unwrap();
    w.run();
    assert_eq!(
        w.result(id),
        Ok(Outcome::Action(vec![ActionResult { result: 0, return_data: Some(GetDataResult::Data(big.clone())) }]))
    );
    assert!(w.sent_with_tag(true, 0xC3).iter().any(|b| b[1] == 4), "with-first-pblock");
    assert!(w.sent_with_tag(true, 0xC3).iter().any(|b| b[1] == 2), "next-pblock");
    assert!(w.sent_with_tag(false, 0xC7).iter().any(|b| b[1] == 2), "with-pblock");
    assert!(w.log.iter().all(|(c, a)| a.len() <= if *c { 200 } else { 128 }));
    // with-list, small and in pblocks
    let id = w.c.action(&[(disconnect.clone(), None), (image.clone(), Some(vec![0x11, 5]))], w.now).unwrap();
    w.run();
    let want = vec![
        ActionResult { result: 0, return_data: Some(GetDataResult::Data(vec![0])) },
        ActionResult { result: 0, return_data: Some(GetDataResult::Data(vec![0x11, 5])) },
    ];
    assert_eq!(w.result(id), Ok(Outcome::Action(want)));
    let id = w.c.action(&[(disconnect, Some(octets(250, 1))), (image, Some(octets(250, 2)))], w.now).unwrap();
    w.run();
    let Ok(Outcome::Action(v)) = w.result(id) else { panic!() };
    assert_eq!(v[1].return_data, Some(GetDataResult::Data(octets(250, 2))));
}

/// GBT agreed, service blocks not: the client takes `c_pdu`, the server `s_pdu`.
fn gbt_wire(c_window: u8, s_window: u8, c_pdu: u16, s_pdu: u16) -> Wire<'static> {
    let conformance = bits::GET | bits::SET | bits::ACTION | bits::GENERAL_BLOCK_TRANSFER;
    let c = AssociationConfig { max_receive_pdu: c_pdu, conformance, gbt_window: c_window, ..plain_cfg() };
    let s = AssociationConfig { max_receive_pdu: s_pdu, conformance, gbt_window: s_window, ..plain_cfg() };
    let mut w = Wire::new(c, s);
    w.associate(None, None);
    w
}

fn gbt_blocks(w: &Wire, from_client: bool) -> Vec<apdu::GeneralBlockTransfer> {
    w.sent_with_tag(from_client, 0xE0)
        .iter()
        .map(|a| match apdu::decode(a).unwrap() {
            Apdu::GeneralBlockTransfer(b) => b,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn gbt_window_1() {
    let mut w = gbt_wire(1, 1, 128, 128);
    let big = octets(1000, 2);
    w.model = Model::with(&[(7, PROFILE, 2, big.clone())]);
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), big);
    let data = gbt_blocks(&w, false);
    let acks = gbt_blocks(&w, true);
    assert!(data.len() >= 9 && data.iter().all(|b| !b.streaming && b.window == 1));
    assert_eq!(acks.len(), data.len() - 1, "every block but the last acknowledged");
    assert!(acks.iter().enumerate().all(|(i, a)| a.block_data.is_empty() && a.block_number_ack == i as u16 + 1));
    // a long SET goes out in GBT blocks the server acknowledges
    let id = w.c.set(&[(attr(1, FIRMWARE, 2), octets(500, 1))], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0])));
    assert_eq!(w.model.values[&(1, FIRMWARE, 2)], octets(500, 1));
}

#[test]
fn gbt_streaming_windows() {
    // the client announces a window of 5: after block 1 the server streams 5 at a time
    let mut w = gbt_wire(5, 1, 128, 128);
    let big = octets(2000, 3);
    w.model = Model::with(&[(7, PROFILE, 2, big.clone())]);
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), big);
    let data = gbt_blocks(&w, false);
    let streamed: Vec<bool> = data.iter().map(|b| b.streaming).collect();
    assert_eq!(&streamed[..7], &[false, true, true, true, true, false, true]);
    let acks = gbt_blocks(&w, true);
    assert_eq!(acks.iter().map(|a| a.block_number_ack).collect::<Vec<_>>()[..3], [1, 6, 11]);
    assert!(acks.iter().all(|a| a.window == 5));
    assert_eq!(acks.len(), (data.len() - 1).div_ceil(5));
}

#[test]
fn gbt_lost_block_is_asked_again() {
    let mut w = gbt_wire(4, 1, 128, 128);
    let big = octets(2000, 6);
    w.model = Model::with(&[(7, PROFILE, 2, big.clone())]);
    // lose the server's 4th APDU (block 3, mid-window)
    w.hook = Box::new(|from_client, n, a| if !from_client && n == 3 { None } else { Some(a.to_vec()) });
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), big);
    let acks = gbt_blocks(&w, true);
    assert_eq!(acks[1].block_number_ack, 2, "the window ended with a gap: ask from block 3");
    let numbers: Vec<u16> = gbt_blocks(&w, false).iter().map(|b| b.block_number).collect();
    assert_eq!(&numbers[..9], &[1, 2, 3, 4, 5, 3, 4, 5, 6]);
}

#[test]
fn gbt_stalled_transfer_is_retried_on_timeout_then_fails() {
    let mut w = gbt_wire(1, 1, 128, 128);
    let big = octets(1000, 6);
    w.model = Model::with(&[(7, PROFILE, 2, big.clone())]);
    // lose block 3 (the server's APDU 3 after the AARE; window 1: no ack can come)
    w.hook = Box::new(|from_client, n, a| if !from_client && n == 3 { None } else { Some(a.to_vec()) });
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), big);
    let acks = gbt_blocks(&w, true);
    assert_eq!(acks.iter().filter(|a| a.block_number_ack == 2).count(), 2, "acked, then asked again on timeout");
    assert!(w.now >= 5.0);
    // a transfer that never resumes ends in Timeout after gbt_retries
    let mut w = gbt_wire(1, 1, 128, 128);
    w.model = Model::with(&[(7, PROFILE, 2, big)]);
    w.hook = Box::new(|from_client, n, a| if !from_client && n >= 3 { None } else { Some(a.to_vec()) });
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Timeout { id }));
    assert!((w.now - 15.0).abs() < 0.5, "{} (3 x 5 s of silence)", w.now);
}

#[test]
fn gbt_request_with_lost_block_and_server_window() {
    // the server announces a window of 3 in its acks; the client streams; one block is lost
    let mut w = gbt_wire(1, 3, 128, 128);
    let big = octets(1500, 9);
    w.hook = Box::new(|from_client, n, a| if from_client && n == 5 { None } else { Some(a.to_vec()) });
    let id = w.c.set(&[(attr(1, FIRMWARE, 2), big.clone())], w.now).unwrap();
    w.run();
    assert_eq!(w.result(id), Ok(Outcome::Set(vec![0])));
    assert_eq!(w.model.values[&(1, FIRMWARE, 2)], big);
    assert!(gbt_blocks(&w, true).iter().any(|b| b.streaming), "the client streamed in the server's window");
}

#[test]
fn exception_response_ends_the_request() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.auto_answer = false;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    let ServerEvent::Request { id: sid, .. } = w.sev.last().unwrap().clone() else { panic!() };
    w.s.refuse_request(sid).unwrap();
    w.run();
    assert_eq!(
        w.result(id),
        Err(RequestError::Exception { state_error: 1, service_error: 1, invocation_counter: None })
    );
    assert!(w.result(id).unwrap_err().to_string().contains("service-not-allowed/operation-not-possible"));
}

#[test]
fn timeout_then_late_answer_dropped_by_invoke_id() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.auto_answer = false;
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    let t0 = w.now;
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Timeout { id }));
    assert!((w.now - t0 - 5.0).abs() < 0.1);
    // the server answers late: the client drops it and the next request is fine
    let ServerEvent::Request { id: sid, request } = w.sev.last().unwrap().clone() else { panic!() };
    let late = w.model.answer(&request);
    w.s.respond(sid, late).unwrap();
    w.auto_answer = true;
    w.settle();
    assert_eq!(w.cev.last(), Some(&ClientEvent::LateAnswerDropped { invoke_id: 1 }));
    let id2 = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id2)), octets(12, 0));
    assert_eq!(w.sent_with_tag(true, 0xC0)[1][2], 0xC2, "the abandoned invoke id is not reused at once");
    assert_eq!(w.c.stats().late_answers_dropped, 1);
}

#[test]
fn cancel_and_unexpected_invoke_id() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.auto_answer = false;
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    assert!(w.c.cancel(id, w.now));
    assert!(!w.c.cancel(id, w.now));
    assert_eq!(w.c.next_deadline(), None);
    // an answer nobody asked for (invoke id 9)
    w.c.receive_data(&h("C401C900090100"), w.now);
    assert!(matches!(w.c.next_event(), Some(ClientEvent::ProtocolError(e)) if e.field == "invoke-id"));
    // ACSE APDUs out of place are reported, not taken for answers
    w.c.receive_data(&h("6300"), w.now);
    assert!(matches!(w.c.next_event(), Some(ClientEvent::ProtocolError(e)) if e.to_string().contains("tag 0x63")));
    assert_eq!(w.c.state(), ClientState::Associated);
    // the cancelled one arrives late: dropped
    w.c.receive_data(&h("C401C100090100"), w.now);
    assert_eq!(w.c.next_event(), Some(ClientEvent::LateAnswerDropped { invoke_id: 1 }));
    // while a request waits, an answer with an id it never had fails it
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    w.c.receive_data(&h("C401C900090100"), w.now);
    let Some(ClientEvent::Response { id: got, result: Err(RequestError::Protocol(e)) }) = w.c.next_event() else {
        panic!()
    };
    assert_eq!((got, e.field), (id, "invoke-id"));
    assert!(e.to_string().contains("invoke id 9"), "{e}");
}

#[test]
fn requests_queue_and_outstanding_ones_match_by_invoke_id() {
    let mut w = Wire::plain();
    w.associate(None, None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0)), (1, FIRMWARE, 2, octets(5, 1))]);
    // one at a time by default: the second waits for the first
    let a = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    let b = w.c.get(&[attr(1, FIRMWARE, 2)], w.now).unwrap();
    let out = w.c.data_to_send();
    assert_eq!(out.len(), 1, "the second request waits for the first");
    assert_eq!(w.c.pending_requests(), vec![a, b]);
    w.s.receive_data(&out[0], w.now);
    w.run();
    assert_eq!((value(w.result(a)), value(w.result(b))), (octets(12, 0), octets(5, 1)));

    // three in flight, answered in reverse order
    let mut w = Wire::new(AssociationConfig { max_outstanding: 3, ..plain_cfg() }, plain_cfg());
    w.associate(None, None);
    w.model =
        Model::with(&[(8, CLOCK, 2, octets(12, 0)), (1, FIRMWARE, 2, octets(5, 1)), (1, FIRMWARE, 3, octets(2, 2))]);
    w.auto_answer = false;
    let ids: Vec<RequestId> = [attr(8, CLOCK, 2), attr(1, FIRMWARE, 2), attr(1, FIRMWARE, 3)]
        .iter()
        .map(|x| w.c.get(std::slice::from_ref(x), w.now).unwrap())
        .collect();
    w.settle();
    let reqs: Vec<(RequestId, IncomingRequest)> = w
        .sev
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Request { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 3);
    for (sid, r) in reqs.iter().rev() {
        let o = w.model.answer(r);
        w.s.respond(*sid, o).unwrap();
    }
    w.run();
    assert_eq!(value(w.result(ids[0])), octets(12, 0));
    assert_eq!(value(w.result(ids[2])), octets(2, 2));
    let order: Vec<RequestId> =
        w.cev.iter().filter_map(|e| if let ClientEvent::Response { id, .. } = e { Some(*id) } else { None }).collect();
    assert_eq!(order, vec![ids[2], ids[1], ids[0]]);
}

#[test]
fn server_checks_block_numbers_and_next_requests() {
    let mut w = small_pdus(ALL);
    // no long GET in progress
    w.s.receive_data(&h("C002C100000001"), w.now);
    let out = w.s.data_to_send();
    assert_eq!(
        apdu::decode(&out[0]).unwrap(),
        Apdu::GetResponse(apdu::GetResponse::WithDatablock {
            invoke_id_and_priority: 0xC1,
            last_block: true,
            block_number: 1,
            result: apdu::BlockResult::DataAccessResult(16),
        })
    );
    // a SET datablock without a first one
    w.s.receive_data(&h("C103C1 00 00000002 03 090100"), w.now);
    assert_eq!(w.s.data_to_send(), vec![h("C503C11200000002")]);
    // respond() checks what the shell answers
    w.auto_answer = false;
    w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.settle();
    let ServerEvent::Request { id, .. } = w.sev.last().unwrap().clone() else { panic!() };
    assert!(w.s.respond(id, Outcome::Set(vec![0])).is_err());
    assert!(w.s.respond(id, Outcome::Get(vec![GetDataResult::Data(vec![0x09])])).is_err(), "not one A-XDR value");
    assert!(w.s.respond(id + 1, Outcome::Get(vec![])).is_err());
    w.s.respond(id, Outcome::Get(vec![GetDataResult::DataAccessResult(3)])).unwrap();
}

#[test]
fn a_gbt_answer_given_up_on_does_not_block_the_next_request() {
    let mut w = gbt_wire(1, 1, 128, 128);
    w.model = Model::with(&[(7, PROFILE, 2, octets(1000, 2)), (8, CLOCK, 2, octets(12, 0))]);
    // the client hears nothing after the 3rd block of the answer: it asks
    // again, gives up (timeout), then asks for something else
    w.hook = Box::new(|from_client, n, a| if !from_client && (3..20).contains(&n) { None } else { Some(a.to_vec()) });
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(w.cev.last(), Some(&ClientEvent::Timeout { id }));
    w.hook = Box::new(|_, _, a| Some(a.to_vec()));
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), octets(12, 0));
    // and a long one again, whole
    let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
    w.run();
    assert_eq!(value(w.result(id)), octets(1000, 2));
}

#[test]
fn gbt_acknowledgement_with_last_block_set_is_an_acknowledgement() {
    // Some peers set last-block on an acknowledgement (it carries no data):
    // both sides take it as one, not as an empty transfer.
    for client_acks in [true, false] {
        let mut w = gbt_wire(1, 1, 128, 128);
        let fired = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = fired.clone();
        w.hook = Box::new(move |from_client, _, a| {
            let mut a = a.to_vec();
            if from_client == client_acks && a[0] == 0xE0 && a.ends_with(&[0x00]) && a.len() == 7 {
                a[1] |= 0x80; // last-block
                seen.set(seen.get() + 1);
            }
            Some(a)
        });
        let big = octets(1000, 2);
        w.model = Model::with(&[(7, PROFILE, 2, big.clone())]);
        let id = w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
        let sid = w.c.set(&[(attr(1, FIRMWARE, 2), octets(500, 1))], w.now).unwrap();
        w.run();
        assert_eq!(value(w.result(id)), big, "client acks: {client_acks}");
        assert_eq!(w.result(sid), Ok(Outcome::Set(vec![0])), "client acks: {client_acks}");
        assert!(fired.get() >= 3, "acknowledgements rewritten: {}", fired.get());
    }
}
