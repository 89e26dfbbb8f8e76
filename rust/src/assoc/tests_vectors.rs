//! The machines against published and recorded bytes (tests/vectors): the
//! Green Book ciphering and HLS-GMAC examples, the APDU vectors of
//! tests/vectors/apdu (AARQ/AARE, GET/SET/ACTION and their block exchanges,
//! byte for byte) and the recorded meter exchanges of tests/vectors/interop.

use super::tests::*;
use super::*;
use crate::apdu::{self, Aare, ActionResult, Apdu, Diagnostic, GetDataResult, InitiateResponse};

const APDU_VECTORS: &str = include_str!("../../../tests/vectors/apdu/vectors.txt");

fn v(name: &str) -> Vec<u8> {
    let line = APDU_VECTORS
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no vector {name}"));
    h(line.split_whitespace().nth(2).unwrap())
}

/// A client opened on `cfg` and fed an accepted plain AARE with this
/// negotiated conformance and server PDU size.
fn associated(cfg: AssociationConfig, conformance: u32, pdu: u16) -> ClientAssociation {
    let mut c = ClientAssociation::new(cfg).unwrap();
    c.open(0.0, None, None).unwrap();
    c.data_to_send();
    let aare = Aare {
        application_context_name: Some(apdu::association::context_oid(1)),
        result: 0,
        result_source_diagnostic: Some(Diagnostic::ServiceUser(0)),
        user_information: Some(Box::new(Apdu::InitiateResponse(InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version_number: 6,
            negotiated_conformance: conformance,
            server_max_receive_pdu_size: pdu,
            vaa_name: 7,
        }))),
        ..Aare::default()
    };
    c.receive_data(&Apdu::Aare(aare).encode(), 0.1);
    assert!(matches!(c.next_event(), Some(ClientEvent::Associated(_))));
    c
}

fn only_apdu(c: &mut ClientAssociation) -> Vec<u8> {
    let mut out = c.data_to_send();
    assert_eq!(out.len(), 1, "{out:02x?}");
    out.remove(0)
}

fn response(c: &mut ClientAssociation) -> Result<Outcome, RequestError> {
    match c.next_event() {
        Some(ClientEvent::Response { result, .. }) => result,
        other => panic!("no response: {other:?}"),
    }
}

const ALL: u32 = 0x00FF_FFFF;

#[test]
fn green_book_aarqs_and_aare() {
    let cfg = AssociationConfig { conformance: 0x007E1F, max_receive_pdu: 0x04B0, ..plain_cfg() };
    let mut c = ClientAssociation::new(cfg.clone()).unwrap();
    c.open(0.0, None, None).unwrap();
    assert_eq!(only_apdu(&mut c), v("gb-aarq-no-auth"));
    c.receive_data(&v("gb-aare-accepted"), 0.1);
    let Some(ClientEvent::Associated(a)) = c.next_event() else { panic!() };
    assert_eq!((a.conformance, a.peer_max_pdu), (0x00501F, 0x01F4));

    let lls = AssociationConfig { authentication: Authentication::Lls { password: b"12345678".to_vec() }, ..cfg };
    let mut c = ClientAssociation::new(lls).unwrap();
    c.open(0.0, None, None).unwrap();
    assert_eq!(only_apdu(&mut c), v("gb-aarq-lls"));

    let gosem = AssociationConfig { conformance: 0x00181F, max_receive_pdu: 0x0100, ..plain_cfg() };
    let mut c = ClientAssociation::new(gosem).unwrap();
    c.open(0.0, None, None).unwrap();
    assert_eq!(only_apdu(&mut c), v("gosem-aarq-no-auth"));
    c.receive_data(&v("gosem-aare-accepted"), 0.1);
    assert!(matches!(c.next_event(), Some(ClientEvent::Associated(a)) if a.peer_max_pdu == 0x80));
}

#[test]
fn aare_refusals_of_real_meters() {
    for (name, detail) in [
        ("gosem-aare-auth-failure", ""),
        ("gosem-aare-no-user-information", ""),
        ("gosem-aare-confirmed-service-error", "initiate refused: initiate: refused-by-the-vde-handler"),
        ("gosem-aare-initiate-error", "initiate refused: application-reference: 5"),
    ] {
        let mut c = ClientAssociation::new(plain_cfg()).unwrap();
        c.open(0.0, None, None).unwrap();
        c.receive_data(&v(name), 0.1);
        let mut ev = c.next_event();
        let without_ui = matches!(&ev, Some(ClientEvent::Quirk(q)) if q.quirk == "rejection-without-user-information");
        if without_ui {
            ev = c.next_event();
        }
        let Some(ClientEvent::Refused { result, diagnostic, detail: got }) = ev else { panic!("{name}") };
        assert_eq!(result, 1, "{name}");
        assert!(matches!(diagnostic, Some(Diagnostic::ServiceUser(13 | 1))), "{name}");
        assert!(got.starts_with(detail), "{name}: {got}");
        // Strict: a rejection without user-information is a malformed AARE naming the quirk.
        let mut c = ClientAssociation::new(AssociationConfig { quirks: vec![], ..plain_cfg() }).unwrap();
        c.open(0.0, None, None).unwrap();
        c.receive_data(&v(name), 0.1);
        match c.next_event() {
            Some(ClientEvent::AssociationFailed(e)) if without_ui => {
                assert!(e.to_string().contains("rejection-without-user-information"), "{e}")
            }
            Some(ClientEvent::Refused { result: 1, .. }) if !without_ui => {}
            other => panic!("{name} strict: {other:?}"),
        }
    }
}

#[test]
fn gosem_get_normal_selective_access_and_datablocks() {
    let mut c = associated(plain_cfg(), 0x00101D, 0x80);
    let id = c.get(&[attr(8, CLOCK, 3)], 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), v("gosem-get-request"));
    c.receive_data(&v("gosem-get-response"), 0.3);
    assert_eq!(
        c.next_event(),
        Some(ClientEvent::Response { id, result: Ok(Outcome::Get(vec![GetDataResult::Data(h("10003C"))])) })
    );

    // gosem's client uses invoke id 1 each time; ours cycles 1..=15: a fresh client per vector
    let mut c = associated(plain_cfg(), 0x00101D, 0x80);
    let Apdu::GetRequest(apdu::GetRequest::Normal { attribute, .. }) =
        apdu::decode(&v("gosem-get-request-range")).unwrap()
    else {
        panic!()
    };
    c.get(&[attribute], 0.4).unwrap();
    assert_eq!(only_apdu(&mut c), v("gosem-get-request-range"));
    c.receive_data(&v("gosem-get-response-range"), 0.5);
    assert_eq!(response(&mut c), Ok(Outcome::Get(vec![GetDataResult::Data(h("0102 0600000001 0600000002"))])));

    let mut c = associated(plain_cfg(), 0x00101D, 0x80);
    c.get(&[attr(7, PROFILE, 2)], 0.6).unwrap();
    c.data_to_send();
    c.receive_data(&v("gosem-get-response-block-1"), 0.7);
    assert_eq!(only_apdu(&mut c), v("gosem-get-request-next-1"));
    c.receive_data(&v("gosem-get-response-block-2"), 0.8);
    assert_eq!(only_apdu(&mut c), v("gosem-get-request-next-2"));
    c.receive_data(&v("gosem-get-response-block-3"), 0.9);
    let want = h("0105 0600000001 0600000002 0600000003 0600000004 0600000005");
    assert_eq!(response(&mut c), Ok(Outcome::Get(vec![GetDataResult::Data(want)])));
    // an exception-response ends the request in flight
    c.get(&[attr(8, CLOCK, 2)], 1.0).unwrap();
    c.data_to_send();
    c.receive_data(&v("gosem-exception-response"), 1.1);
    assert_eq!(
        response(&mut c),
        Err(RequestError::Exception { state_error: 1, service_error: 1, invocation_counter: None })
    );
}

#[test]
fn pcap_get_with_list_and_its_datablock_form() {
    let mut c = associated(plain_cfg(), ALL, 0xFFFF);
    let items = [attr(1, [0, 0, 42, 0, 0, 255], 2), attr(1, [0, 0, 42, 0, 0, 255], 3)];
    c.get(&items, 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), v("pcap-get-request-with-list"));
    c.receive_data(&v("pcap-get-response-with-list"), 0.3);
    let want = Ok(Outcome::Get(vec![GetDataResult::Data(h("120100")), GetDataResult::DataAccessResult(3)]));
    assert_eq!(response(&mut c), want);
    let mut c = associated(plain_cfg(), ALL, 0xFFFF);
    c.get(&items, 0.4).unwrap();
    c.data_to_send();
    c.receive_data(&v("pcap-get-response-block-list"), 0.5);
    assert_eq!(response(&mut c), want);
}

#[test]
fn gosem_set_in_datablocks_byte_for_byte() {
    let first = v("gosem-set-first-datablock");
    let Apdu::SetRequest(apdu::SetRequest::WithFirstDatablock { attribute, block, .. }) = apdu::decode(&first).unwrap()
    else {
        panic!()
    };
    let mut value = block.raw_data.clone();
    for n in ["gosem-set-datablock-2", "gosem-set-datablock-3"] {
        let Apdu::SetRequest(apdu::SetRequest::WithDatablock { block, .. }) = apdu::decode(&v(n)).unwrap() else {
            panic!()
        };
        value.extend(block.raw_data);
    }
    // gosem cut the APDUs at 126 bytes: so does a server taking 126
    let mut c = associated(plain_cfg(), ALL, 126);
    c.set(&[(attribute, value)], 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), first);
    c.receive_data(&v("gosem-set-response-datablock-1"), 0.3);
    assert_eq!(only_apdu(&mut c), v("gosem-set-datablock-2"));
    c.receive_data(&v("gosem-set-response-datablock-2"), 0.4);
    assert_eq!(only_apdu(&mut c), v("gosem-set-datablock-3"));
    c.receive_data(&v("gosem-set-response-last-datablock"), 0.5);
    assert_eq!(response(&mut c), Ok(Outcome::Set(vec![0])));

    // with-list and first datablock (ten attributes), at 127 bytes
    let first = v("gosem-set-with-list-first-datablock");
    let Apdu::SetRequest(apdu::SetRequest::WithListAndFirstDatablock { attributes, block, .. }) =
        apdu::decode(&first).unwrap()
    else {
        panic!()
    };
    let Apdu::SetRequest(apdu::SetRequest::WithDatablock { block: b2, .. }) =
        apdu::decode(&v("gosem-set-with-list-datablock-2")).unwrap()
    else {
        panic!()
    };
    let raw = [block.raw_data, b2.raw_data].concat();
    let mut r = crate::axdr::Reader::new(&raw, crate::error::Layer::Apdu);
    let n = r.length("count").unwrap();
    let values: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let start = r.pos();
            crate::axdr::decode_from(&mut r).unwrap();
            raw[start..r.pos()].to_vec()
        })
        .collect();
    let items: Vec<(AttributeRef, Vec<u8>)> = attributes.into_iter().zip(values).collect();
    let mut c = associated(plain_cfg(), ALL, 127);
    c.set(&items, 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), first);
    c.receive_data(&h("C502C100000001"), 0.3);
    assert_eq!(only_apdu(&mut c), v("gosem-set-with-list-datablock-2"));
    c.receive_data(&v("gosem-set-response-last-datablock-with-list"), 0.4);
    assert_eq!(response(&mut c), Ok(Outcome::Set(vec![0; 10])));
}

#[test]
fn gosem_set_and_action_normal() {
    let mut c = associated(plain_cfg(), ALL, 0xFFFF);
    let Apdu::SetRequest(apdu::SetRequest::Normal { attribute, value, .. }) =
        apdu::decode(&v("gosem-set-request")).unwrap()
    else {
        panic!()
    };
    c.set(&[(attribute, value)], 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), v("gosem-set-request"));
    c.receive_data(&v("gosem-set-response-rejected"), 0.3);
    assert_eq!(response(&mut c), Ok(Outcome::Set(vec![3])));
    let mut c = associated(plain_cfg(), ALL, 0xFFFF);
    c.action(&[(method(70, [0, 0, 96, 3, 10, 255], 1), Some(h("0F00")))], 0.4).unwrap();
    assert_eq!(only_apdu(&mut c), v("gosem-action-request"));
    c.receive_data(&v("gosem-action-response"), 0.5);
    assert_eq!(response(&mut c), Ok(Outcome::Action(vec![ActionResult { result: 0, return_data: None }])));
}

#[test]
fn green_book_glo_initiate_request_in_the_aarq() {
    let gb = include_str!("../../../tests/vectors/security/green_book.json");
    assert!(gb.contains("211F3001234567A9E5B8F765E8FF5A9CD3841EDE0B54E60AFDF3D1A551315FBB67"));
    let cfg = AssociationConfig {
        authentication: Authentication::None,
        conformance: 0x007E1F,
        max_receive_pdu: 0x04B0,
        ..hls_cfg(false, CipherMode::Glo)
    };
    let mut c = ClientAssociation::new(cfg).unwrap();
    c.grant_counters(0x0123_4567, 1).unwrap();
    c.open(0.0, None, None).unwrap();
    let Apdu::Aarq(aarq) = apdu::decode(&only_apdu(&mut c)).unwrap() else { panic!() };
    assert_eq!(
        aarq.user_information.unwrap().encode(),
        h("211F3001234567A9E5B8F765E8FF5A9CD3841EDE0B54E60AFDF3D1A551315FBB67")
    );
    assert_eq!(aarq.calling_ap_title, Some(h(CLIENT_ST)));
    assert_eq!(aarq.application_context_name, apdu::association::context_oid(3));
}

/// A ciphered association where the client's system title is the one of
/// the Green Book glo-get-request example, the server requiring `sc`.
fn green_book_server(sc: u8) -> Wire<'static> {
    let side = |server: bool| {
        let (ours, theirs) = if server { (CLIENT_ST, SERVER_ST) } else { (SERVER_ST, CLIENT_ST) };
        AssociationConfig {
            keys: Some(keys(ours)),
            peer_system_title: Some(h(theirs).try_into().unwrap()),
            ciphering: Some(Ciphering { security_control: if server { sc } else { 0x30 }, mode: CipherMode::Glo }),
            ..plain_cfg()
        }
    };
    let mut w = Wire::new(side(false), side(true));
    w.associate(None, None);
    w
}

#[test]
fn green_book_glo_get_request_is_served() {
    let mut w = green_book_server(0x30);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    w.s.receive_data(&h("C81E300123456741 1312FF935A4756 6827C467BC7D825C3BE4A77C3FCC056B6B"), w.now);
    w.settle();
    assert!(
        matches!(&w.sev[w.sev.len() - 1], ServerEvent::Request { request: IncomingRequest::Get(a), .. } if a[0] == attr(8, CLOCK, 2))
    );
    assert_eq!(w.s.last_incoming_counter(), Some(0x0123_4567));
    let answer = w.log.last().unwrap().1.clone();
    assert_eq!(answer[0], 0xCC, "a glo-get-response");
    // the authentication-only form is below a 0x30 policy: deciphering-error
    w.s.receive_data(&h("C81E1001234568C0010000080000010000FF020006725D910F9221D263877516"), w.now);
    assert_eq!(w.s.data_to_send(), vec![h("D80105")]);
    // ... and accepted by a server requiring authentication only
    let mut w = green_book_server(0x10);
    w.s.receive_data(&h("C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"), w.now);
    w.settle();
    assert!(matches!(w.sev.last(), Some(ServerEvent::Request { .. })), "{:?}", w.sev);
}

#[test]
fn green_book_hls_gmac_passes_3_and_4() {
    let plain_hls = |server| AssociationConfig { ciphering: None, ..hls_cfg(server, CipherMode::Glo) };
    let mut w = Wire::new(plain_hls(false), plain_hls(true)); // server challenge "P6wRJ21F"
    w.associate(Some(b"K56iVagY"), None);
    // f(StoC): client title 4D4D4D0000000001, IC 1 (Green Book)
    let reply = w.sent_with_tag(true, 0xC3).remove(0);
    assert_eq!(reply, h("C301C1000F0000280000FF01010911 10000000011A52FE7DD3E72748973C1E28"));
    // f(CtoS): server title 4D4D4D0000BC614E, IC 1
    let pass4 = w.sent_with_tag(false, 0xC7).remove(0);
    assert_eq!(pass4, h("C701C100010009 11 10000000017186BDB8565EE69093467B68"));
    // the same shapes as a Kaifa meter's exchange (jDLMS vectors)
    assert_eq!(&reply[..15], &v("jdlms-hls-reply-request")[..15]);
    assert_eq!(&pass4[..9], &v("jdlms-hls-reply-response")[..9]);
}

#[test]
fn green_book_hls_aarq_without_calling_title_uses_the_configured_one() {
    let cfg = AssociationConfig { ciphering: None, conformance: 0x007E1F, ..hls_cfg(true, CipherMode::Glo) };
    let mut s = ServerAssociation::new(cfg).unwrap();
    s.set_challenge(b"P6wRJ21F").unwrap();
    s.receive_data(&v("cxo-aarq-hls-gmac"), 0.0);
    let Apdu::Aare(aare) = apdu::decode(&s.data_to_send()[0]).unwrap() else { panic!() };
    assert_eq!((aare.result, aare.responding_authentication_value), (0, Some(b"P6wRJ21F".to_vec())));
    assert_eq!(aare.responding_ap_title, Some(h(SERVER_ST)));
    assert_eq!(s.state(), ServerState::AwaitingHls);
}

// ---------------------------------------------------------------- interop traces

const CIRCUTOR: &str = include_str!("../../../tests/vectors/interop/circutor-gosem-lls-get.json");
const ISKRA: &str = include_str!("../../../tests/vectors/interop/iskra-mt372-jdlms-association.json");
const KAMSTRUP: &str = include_str!("../../../tests/vectors/interop/kamstrup-object-list-blocks.json");
const LANDIS: &str = include_str!("../../../tests/vectors/interop/landis-gyr-aare-rejected.json");

/// The string values of `"key": "…"` in a JSON text, in order.
fn json_strings(text: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\": \"");
    text.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &text[i + pat.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The APDU in a single HDLC I/UI frame: after the LLC header, before FCS and flag.
fn frame_apdu(frame: &str) -> Vec<u8> {
    let f = h(frame);
    let at = f.windows(3).position(|w| w == [0xE6, 0xE6, 0x00] || w == [0xE6, 0xE7, 0x00]).unwrap();
    f[at + 3..f.len() - 3].to_vec()
}

#[test]
fn circutor_lls_association_and_get() {
    let req = json_strings(CIRCUTOR, "request");
    let resp = json_strings(CIRCUTOR, "response");
    let cfg = AssociationConfig {
        authentication: Authentication::Lls { password: b"00000001".to_vec() },
        conformance: 0x00181F,
        max_receive_pdu: 0x0200,
        ..plain_cfg()
    };
    let mut c = ClientAssociation::new(cfg).unwrap();
    c.open(0.0, None, None).unwrap();
    assert_eq!(only_apdu(&mut c), frame_apdu(&req[1]));
    c.receive_data(&frame_apdu(&resp[1]), 0.1);
    let Some(ClientEvent::Associated(a)) = c.next_event() else { panic!() };
    assert_eq!((a.conformance, a.peer_max_pdu), (0x001014, 240));
    c.get(&[attr(1, FIRMWARE, 2)], 0.2).unwrap();
    assert_eq!(only_apdu(&mut c), frame_apdu(&req[2]));
    c.receive_data(&frame_apdu(&resp[2]), 0.3);
    assert_eq!(response(&mut c), Ok(Outcome::Get(vec![GetDataResult::Data(h("09055630343131"))])));
}

#[test]
fn iskra_aare_with_negotiated_qos_and_landis_gyr_refusal() {
    let req = json_strings(ISKRA, "request"); // the optical sign-on, SNRM, AARQ
    let resp = json_strings(ISKRA, "response");
    let mut c = ClientAssociation::new(AssociationConfig { conformance: 0x00BC3F, ..plain_cfg() }).unwrap();
    c.open(0.0, None, None).unwrap();
    assert_eq!(only_apdu(&mut c), frame_apdu(&req[2]));
    c.receive_data(&frame_apdu(&resp[1]), 0.1);
    let Some(ClientEvent::Associated(a)) = c.next_event() else { panic!() };
    assert_eq!((a.conformance, a.peer_max_pdu), (0x007C1F & 0x00BC3F, 0x0400));

    let lls = AssociationConfig { authentication: Authentication::Lls { password: b"wrong".to_vec() }, ..plain_cfg() };
    let mut c = ClientAssociation::new(lls).unwrap();
    c.open(0.0, None, None).unwrap();
    c.receive_data(&h(&json_strings(LANDIS, "response_apdu")[0]), 0.1);
    assert!(matches!(c.next_event(), Some(ClientEvent::Quirk(q)) if q.quirk == "rejection-without-user-information"));
    assert_eq!(
        c.next_event(),
        Some(ClientEvent::Refused { result: 1, diagnostic: Some(Diagnostic::ServiceUser(13)), detail: String::new() })
    );
}

#[test]
fn kamstrup_object_list_in_69_datablocks() {
    let start = KAMSTRUP.find("\"raw_data_blocks\": [").unwrap();
    let end = start + KAMSTRUP[start..].find(']').unwrap();
    let blocks: Vec<Vec<u8>> = KAMSTRUP[start..end].split('"').skip(3).step_by(2).map(h).collect();
    assert_eq!(blocks.len(), 69);
    let mut c = associated(plain_cfg(), ALL, 0xFFFF);
    c.get(&[attr(15, [0, 0, 40, 0, 0, 255], 2)], 0.0).unwrap();
    c.data_to_send();
    for (i, raw) in blocks.iter().enumerate() {
        let n = i as u32 + 1;
        let block = Apdu::GetResponse(apdu::GetResponse::WithDatablock {
            invoke_id_and_priority: 0xC1,
            last_block: n == 69,
            block_number: n,
            result: apdu::BlockResult::RawData(raw.clone()),
        });
        c.receive_data(&block.encode(), f64::from(n));
        if n < 69 {
            assert_eq!(only_apdu(&mut c), [&[0xC0, 0x02, 0xC1][..], &n.to_be_bytes()].concat());
        }
    }
    let Ok(Outcome::Get(mut r)) = response(&mut c) else { panic!() };
    let GetDataResult::Data(list) = r.remove(0) else { panic!() };
    assert_eq!(&list[..4], &h("0182007B")[..]);
    let crate::axdr::Data::Array(objects) = crate::axdr::decode(&list).unwrap() else { panic!() };
    assert_eq!(objects.len(), 123);
}
