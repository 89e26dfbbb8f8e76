//! Tests of the APDU codec: the published vectors of tests/vectors/apdu,
//! one hand-built round trip per kind, and error reporting.

use super::*;
use crate::axdr::Data;

const VECTORS: &str = include_str!("../../../tests/vectors/apdu/vectors.txt");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

pub(super) fn vectors() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            let (name, kind, h) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            (name, kind, hex(h))
        })
        .collect()
}

fn vector(name: &str) -> Apdu {
    let (_, _, bytes) = vectors().into_iter().find(|(n, _, _)| *n == name).unwrap();
    decode(&bytes).unwrap()
}

#[test]
fn published_vectors_decode_to_their_kind_and_re_encode_exactly() {
    let v = vectors();
    assert!(v.len() >= 25);
    for (name, kind, bytes) in v {
        let apdu = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(apdu.kind(), kind, "{name}");
        assert_eq!(apdu.encode(), bytes, "{name}");
    }
}

#[test]
fn green_book_aarq_lls_fields() {
    let Apdu::Aarq(a) = vector("gb-aarq-lls") else { panic!() };
    assert_eq!(association::context_name(&a.application_context_name), Some("logical-name"));
    assert_eq!(a.mechanism_name.as_deref().and_then(association::mechanism_name), Some("lls"));
    assert_eq!(a.sender_acse_requirements, Some(true));
    assert_eq!(a.calling_authentication_value.as_deref(), Some(&b"12345678"[..]));
    let Some(Apdu::InitiateRequest(i)) = a.user_information.as_deref() else { panic!() };
    assert_eq!(i.proposed_dlms_version_number, 6);
    assert_eq!(i.proposed_conformance, 0x007e1f);
    assert_eq!(i.client_max_receive_pdu_size, 0x04b0);
    assert_eq!((i.dedicated_key.clone(), i.response_allowed, i.proposed_quality_of_service), (None, None, None));
}

#[test]
fn aare_fields() {
    let Apdu::Aare(a) = vector("gb-aare-accepted") else { panic!() };
    assert_eq!(a.result, 0);
    assert_eq!(a.result_source_diagnostic, Some(Diagnostic::ServiceUser(0)));
    let Some(Apdu::InitiateResponse(i)) = a.user_information.as_deref() else { panic!() };
    assert_eq!((i.negotiated_conformance, i.server_max_receive_pdu_size, i.vaa_name), (0x00501f, 0x01f4, 0x0007));

    let Apdu::Aare(a) = vector("hx-aare-hls") else { panic!() };
    assert_eq!(a.result_source_diagnostic, Some(Diagnostic::ServiceUser(14)));
    assert_eq!(a.mechanism_name.as_deref().and_then(association::mechanism_name), Some("hls"));
    assert_eq!(a.responding_authentication_value.as_deref(), Some(&b"3C520C17"[..]));
    assert_eq!(a.responder_acse_requirements, Some(true));

    let Apdu::Aare(a) = vector("gosem-aare-no-user-information") else { panic!() };
    assert_eq!((a.result, a.user_information), (1, None));

    let Apdu::Aare(a) = vector("gosem-aare-confirmed-service-error") else { panic!() };
    let Some(Apdu::ConfirmedServiceError(e)) = a.user_information.as_deref() else { panic!() };
    assert_eq!((e.service, e.error, e.value), (1, 6, 4)); // initiate-error, initiate, refused-by-the-vde-handler
}

#[test]
fn ciphered_association_fields() {
    let Apdu::Aarq(a) = vector("gosem-aarq-ciphered-lls") else { panic!() };
    assert_eq!(association::context_name(&a.application_context_name), Some("logical-name-with-ciphering"));
    assert_eq!(a.calling_ap_title.as_deref(), Some(&hex("4349520000000001")[..]));
    let Some(Apdu::Ciphered(c)) = a.user_information.as_deref() else { panic!() };
    assert_eq!((c.tag, c.security_control, c.invocation_counter, c.ciphertext.len()), (0x21, 0x30, 0x59, 0x30 - 5));

    let Apdu::Ciphered(c) = vector("gosem-ded-get-request") else { panic!() };
    assert_eq!((c.security_control, c.invocation_counter, c.ciphertext.len()), (0x30, 1, 0x1e - 5));

    let Apdu::Rlrq(r) = vector("gosem-rlrq-ciphered") else { panic!() };
    assert_eq!(r.reason, Some(0));
    assert_eq!(r.user_information.map(|u| u.kind()), Some("glo-initiate-request"));
}

#[test]
fn xdlms_vector_fields() {
    let Apdu::GetRequest(GetRequest::Normal { invoke_id_and_priority, attribute }) = vector("gosem-get-request") else {
        panic!()
    };
    assert_eq!(invoke_id_and_priority, 0xc1);
    assert_eq!(attribute.attribute, AttributeDescriptor { class_id: 8, obis: [0, 0, 1, 0, 0, 255], attribute_id: 3 });
    assert_eq!(attribute.access, None);

    let Apdu::GetResponse(GetResponse::Normal { result, .. }) = vector("gosem-get-response") else { panic!() };
    assert_eq!(result, GetDataResult::Data(vec![0x10, 0x00, 0x3c]));

    let Apdu::DataNotification(n) = vector("gosem-data-notification-boolean") else { panic!() };
    assert_eq!((n.long_invoke_id_and_priority, n.date_time.len(), n.body.clone()), (6543210, 0, vec![3, 0xff]));

    let Apdu::DataNotification(n) = vector("cxo-data-notification") else { panic!() };
    assert_eq!(n.date_time.len(), 12);
    assert!(matches!(crate::axdr::decode(&n.body).unwrap(), Data::Structure(v) if v.len() == 3));

    let Apdu::ActionResponse(ActionResponse::Normal { result, .. }) = vector("gxt-action-response") else { panic!() };
    assert_eq!(result, ActionResult { result: 12, return_data: None });

    let Apdu::ExceptionResponse(e) = vector("gosem-exception-response") else { panic!() };
    assert_eq!((e.state_error, e.service_error, e.invocation_counter), (1, 1, None));
}

#[test]
fn range_descriptor_matches_published_selective_access() {
    // gosem-get-request-range: clock restricting object, 2020-01-01 10:00 .. 11:00, all columns
    let Apdu::GetRequest(GetRequest::Normal { attribute, .. }) = vector("gosem-get-request-range") else { panic!() };
    let access = attribute.access.unwrap();
    let clock = CaptureObject { class_id: 8, obis: [0, 0, 1, 0, 0, 255], attribute_id: 2, data_index: 0 };
    let at = |h| Data::OctetString(vec![0x07, 0xe4, 1, 1, 3, h, 0, 0, 0, 0, 0, 0]);
    assert_eq!(access.selector, 1);
    assert_eq!(access.parameters, range_descriptor(&clock, at(10), at(11), &[]).encode());
}

#[test]
fn datablock_vectors() {
    let Apdu::GetResponse(GetResponse::WithDatablock { last_block, block_number, result, .. }) =
        vector("gosem-get-response-block-3")
    else {
        panic!()
    };
    assert_eq!((last_block, block_number, result), (true, 3, BlockResult::RawData(vec![6, 0, 0, 0, 5])));
    let Apdu::GetResponse(GetResponse::WithList { results, .. }) = vector("pcap-get-response-with-list") else {
        panic!()
    };
    assert_eq!(results, vec![GetDataResult::Data(vec![0x12, 1, 0]), GetDataResult::DataAccessResult(3)]);
}

fn attr(sel: bool) -> AttributeWithSelection {
    AttributeWithSelection {
        attribute: AttributeDescriptor { class_id: 7, obis: [1, 0, 99, 1, 0, 255], attribute_id: 2 },
        access: sel.then(|| SelectiveAccess { selector: 2, parameters: entry_descriptor(1, 0, 1, 0).encode() }),
    }
}

fn method() -> MethodDescriptor {
    MethodDescriptor { class_id: 70, obis: [0, 0, 96, 3, 10, 255], method_id: 1 }
}

fn block() -> DataBlockSa {
    DataBlockSa { last_block: true, block_number: 3, raw_data: vec![1, 2, 3] }
}

/// One example of every kind.
fn samples() -> Vec<Apdu> {
    let v = Data::LongUnsigned(60).encode();
    let ir = InitiateRequest {
        dedicated_key: Some(vec![0xaa; 16]),
        response_allowed: Some(false),
        proposed_quality_of_service: Some(1),
        proposed_dlms_version_number: 6,
        proposed_conformance: 0x00ffff,
        client_max_receive_pdu_size: 0xffff,
    };
    let ires = InitiateResponse {
        negotiated_quality_of_service: None,
        negotiated_dlms_version_number: 6,
        negotiated_conformance: 0x001c1f,
        server_max_receive_pdu_size: 512,
        vaa_name: 7,
    };
    let cipher =
        |tag| Apdu::Ciphered(Ciphered { tag, security_control: 0x30, invocation_counter: 9, ciphertext: vec![7; 20] });
    let mut s = vec![
        Apdu::Aarq(Aarq {
            protocol_version: Some(vec![0x07, 0x80]),
            application_context_name: association::context_oid(3),
            called_ap_title: Some(vec![1; 8]),
            called_ae_qualifier: Some(vec![2; 3]),
            called_ap_invocation_id: Some(5),
            called_ae_invocation_id: Some(-1),
            calling_ap_title: Some(b"MMM\x00\x00\xbcaN".to_vec()),
            calling_ae_qualifier: Some(vec![3; 200]),
            calling_ap_invocation_id: Some(300),
            calling_ae_invocation_id: Some(0),
            sender_acse_requirements: Some(true),
            mechanism_name: Some(association::mechanism_oid(5)),
            calling_authentication_value: Some(b"K56iVagY".to_vec()),
            implementation_information: Some(b"smmc".to_vec()),
            user_information: Some(Box::new(Apdu::InitiateRequest(ir.clone()))),
        }),
        Apdu::Aare(Aare {
            application_context_name: Some(association::context_oid(1)),
            result: 1,
            result_source_diagnostic: Some(Diagnostic::ServiceProvider(2)),
            responding_ap_title: Some(vec![9; 8]),
            mechanism_name: Some(association::mechanism_oid(7)),
            responding_authentication_value: Some(vec![0x41; 16]),
            responder_acse_requirements: Some(false),
            user_information: Some(Box::new(Apdu::InitiateResponse(ires.clone()))),
            ..Aare::default()
        }),
        Apdu::Rlrq(Release { reason: Some(30), user_information: None }),
        Apdu::Rlre(Release { reason: None, user_information: Some(Box::new(cipher(0x28))) }),
        Apdu::InitiateRequest(ir),
        Apdu::InitiateResponse(ires),
        Apdu::ConfirmedServiceError(ConfirmedServiceError { service: 1, error: 6, value: 1 }),
        Apdu::GetRequest(GetRequest::Normal { invoke_id_and_priority: 0xc1, attribute: attr(true) }),
        Apdu::GetRequest(GetRequest::Next { invoke_id_and_priority: 0xc1, block_number: 2 }),
        Apdu::GetRequest(GetRequest::WithList {
            invoke_id_and_priority: 0xc1,
            attributes: vec![attr(false), attr(true)],
        }),
        Apdu::GetResponse(GetResponse::Normal {
            invoke_id_and_priority: 0xc1,
            result: GetDataResult::DataAccessResult(4),
        }),
        Apdu::GetResponse(GetResponse::WithDatablock {
            invoke_id_and_priority: 0xc1,
            last_block: false,
            block_number: 1,
            result: BlockResult::RawData(vec![0x01, 0x82, 0x01]),
        }),
        Apdu::GetResponse(GetResponse::WithList {
            invoke_id_and_priority: 0xc1,
            results: vec![GetDataResult::Data(v.clone()), GetDataResult::DataAccessResult(250)],
        }),
        Apdu::SetRequest(SetRequest::Normal { invoke_id_and_priority: 0xc1, attribute: attr(false), value: v.clone() }),
        Apdu::SetRequest(SetRequest::WithFirstDatablock {
            invoke_id_and_priority: 0xc1,
            attribute: attr(false),
            block: block(),
        }),
        Apdu::SetRequest(SetRequest::WithDatablock { invoke_id_and_priority: 0xc1, block: block() }),
        Apdu::SetRequest(SetRequest::WithList {
            invoke_id_and_priority: 0xc1,
            attributes: vec![attr(false)],
            values: vec![v.clone()],
        }),
        Apdu::SetRequest(SetRequest::WithListAndFirstDatablock {
            invoke_id_and_priority: 0xc1,
            attributes: vec![attr(true)],
            block: block(),
        }),
        Apdu::SetResponse(SetResponse::Normal { invoke_id_and_priority: 0xc1, result: 0 }),
        Apdu::SetResponse(SetResponse::Datablock { invoke_id_and_priority: 0xc1, block_number: 1 }),
        Apdu::SetResponse(SetResponse::LastDatablock { invoke_id_and_priority: 0xc1, result: 3, block_number: 2 }),
        Apdu::SetResponse(SetResponse::LastDatablockWithList {
            invoke_id_and_priority: 0xc1,
            results: vec![0, 3],
            block_number: 2,
        }),
        Apdu::SetResponse(SetResponse::WithList { invoke_id_and_priority: 0xc1, results: vec![0] }),
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id_and_priority: 0xc1,
            method: method(),
            parameters: Some(v.clone()),
        }),
        Apdu::ActionRequest(ActionRequest::NextPblock { invoke_id_and_priority: 0xc1, block_number: 1 }),
        Apdu::ActionRequest(ActionRequest::WithList {
            invoke_id_and_priority: 0xc1,
            methods: vec![method(), method()],
            parameters: vec![v.clone(), Data::Null.encode()],
        }),
        Apdu::ActionRequest(ActionRequest::WithFirstPblock {
            invoke_id_and_priority: 0xc1,
            method: method(),
            block: block(),
        }),
        Apdu::ActionRequest(ActionRequest::WithListAndFirstPblock {
            invoke_id_and_priority: 0xc1,
            methods: vec![method()],
            block: block(),
        }),
        Apdu::ActionRequest(ActionRequest::WithPblock { invoke_id_and_priority: 0xc1, block: block() }),
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke_id_and_priority: 0xc1,
            result: ActionResult { result: 0, return_data: Some(GetDataResult::Data(v.clone())) },
        }),
        Apdu::ActionResponse(ActionResponse::WithPblock { invoke_id_and_priority: 0xc1, block: block() }),
        Apdu::ActionResponse(ActionResponse::WithList {
            invoke_id_and_priority: 0xc1,
            results: vec![
                ActionResult { result: 0, return_data: None },
                ActionResult { result: 11, return_data: Some(GetDataResult::DataAccessResult(11)) },
            ],
        }),
        Apdu::ActionResponse(ActionResponse::NextPblock { invoke_id_and_priority: 0xc1, block_number: 4 }),
        Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: 1,
            date_time: vec![0xff; 12],
            body: v.clone(),
        }),
        Apdu::EventNotification(EventNotification {
            time: Some(vec![0x07; 12]),
            attribute: attr(false).attribute,
            value: v.clone(),
        }),
        Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 6,
            invocation_counter: Some(0x1234),
        }),
        Apdu::GeneralBlockTransfer(GeneralBlockTransfer {
            last_block: true,
            streaming: false,
            window: 1,
            block_number: 2,
            block_number_ack: 1,
            block_data: vec![0xc4; 300],
        }),
        Apdu::GeneralCiphering(GeneralCiphering {
            dedicated: false,
            system_title: b"MMM\x00\x00\xbcaN".to_vec(),
            security_control: 0x30,
            invocation_counter: 1,
            ciphertext: vec![5; 40],
        }),
        Apdu::GeneralCiphering(GeneralCiphering {
            dedicated: true,
            system_title: vec![1; 8],
            security_control: 0x10,
            invocation_counter: 2,
            ciphertext: vec![5; 12],
        }),
    ];
    s.extend(ciphered::ciphered_tags().map(|t| cipher(t.0)));
    // short-name services (sn.rs)
    let names = vec![sn::VariableAccess::Name(0x3008)];
    let w = sn::WriteRequest { variables: names.clone(), data: vec![v.clone()] };
    s.extend([
        Apdu::ReadRequest(sn::ReadRequest { variables: names.clone() }),
        Apdu::ReadResponse(sn::ReadResponse { results: vec![sn::ReadResult::Data(v.clone())] }),
        Apdu::WriteRequest(w.clone()),
        Apdu::UnconfirmedWriteRequest(w),
        Apdu::WriteResponse(sn::WriteResponse { results: vec![sn::WriteResult::Success] }),
        Apdu::InformationReport(sn::InformationReport { current_time: None, variables: names, data: vec![v] }),
    ]);
    s
}

#[test]
fn every_kind_round_trips() {
    let s = samples();
    let mut seen: Vec<&str> = s.iter().map(Apdu::kind).collect();
    seen.sort_unstable();
    seen.dedup();
    let mut all = kinds();
    all.sort_unstable();
    assert_eq!(seen, all, "one sample per kind");
    for a in s {
        let bytes = a.encode();
        assert_eq!(decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", a.kind())), a, "{}", a.kind());
    }
}

#[test]
fn errors_name_field_and_offset() {
    // unknown top-level tag
    let e = decode(&[0x99, 0x00]).unwrap_err();
    assert_eq!((e.layer, e.field, e.offset, e.kind.clone()), (Layer::Apdu, "APDU tag", 0, ErrorKind::UnknownTag(0x99)));
    // unknown GET-Response choice at byte 1
    let e = decode(&[0xc4, 0x07, 0xc1]).unwrap_err();
    assert_eq!((e.field, e.offset), ("get-response choice", 1));
    // truncated OBIS
    let e = decode(&hex("C001C1000800000100")).unwrap_err();
    assert_eq!(e.field, "instance-id");
    assert!(matches!(e.kind, ErrorKind::Truncated { .. }));
    // trailing byte
    let e = decode(&hex("C401C10010003C00")).unwrap_err();
    assert_eq!((e.kind.clone(), e.offset), (ErrorKind::Trailing(1), 7));
    // a SET value that is not A-XDR: tag 0x07 at byte 13
    let e = decode(&hex("C101C100080000010000FF020007")).unwrap_err();
    assert_eq!((e.field, e.offset), ("value", 13));
    // bad OPTIONAL marker
    let e = decode(&hex("C001C100080000010000FF0202")).unwrap_err();
    assert_eq!((e.field, e.offset), ("access-selection", 12));
    // AARQ without application-context-name
    let e = decode(&hex("6000")).unwrap_err();
    assert_eq!((e.layer, e.field), (Layer::Ber, "application-context-name"));
    // AARE with an unknown field, offset of its tag
    let e = decode(&hex("6106A203020100" /* one byte short */)).unwrap_err();
    assert_eq!(e.layer, Layer::Ber);
    let e = decode(&hex("6107A2030201009F00")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported("multi-byte BER tag"));
    let e = decode(&hex("6107A20302010084 00".replace(' ', "").as_str())).unwrap_err();
    assert_eq!((e.kind.clone(), e.offset), (ErrorKind::UnknownTag(0x84), 7));
    // user-information holding a GET request
    let e = decode(&hex("6116A203020100BE0F040DC001C100080000010000FF0300")).unwrap_err();
    assert_eq!(e.field, "user-information");
    // user-information holding a glo-get-request
    let e = decode(&hex("6110A203020100BE090407C8053000000001")).unwrap_err();
    assert_eq!(e.field, "user-information");
    // deeply nested AARQs in user-information are refused, not recursed into
    let mut b = vec![0x60, 0x00];
    for _ in 0..3_000 {
        let mut outer = vec![0xbe];
        let mut inner = vec![0x04];
        ber::put_len(&mut inner, b.len());
        inner.extend_from_slice(&b);
        ber::put_len(&mut outer, inner.len());
        outer.extend_from_slice(&inner);
        b = vec![0x60];
        ber::put_len(&mut b, outer.len());
        b.extend_from_slice(&outer);
    }
    let e = decode(&b).unwrap_err();
    assert_eq!((e.field, e.kind), ("user-information", ErrorKind::UnknownTag(0x60)));
    // nested errors are shifted to the outer offset: conformance header broken at byte 18
    let mut b = vector_bytes("gb-aarq-no-auth");
    b[22] = 0x5e;
    let e = decode(&b).unwrap_err();
    assert_eq!((e.field, e.offset), ("conformance", 22));
    // ciphered content shorter than SC + IC
    let e = decode(&hex("C803300000")).unwrap_err();
    assert_eq!(e.field, "ciphered content length");
    assert!(decode(&[]).is_err());
}

fn vector_bytes(name: &str) -> Vec<u8> {
    vectors().into_iter().find(|(n, _, _)| *n == name).unwrap().2
}

#[test]
fn tag_names_state_each_tag_once() {
    let names = super::tag_names();
    for w in names.windows(2) {
        assert!(w[0].0 < w[1].0, "tag 0x{:02x} named twice", w[0].0);
    }
    let name = |t: u8| names.iter().find(|(x, _)| *x == t).map(|(_, n)| *n);
    assert_eq!(name(0xc0), Some("get-request"));
    assert_eq!(name(0xc8), Some("glo-get-request"));
    assert_eq!(name(0xd7), Some("ded-action-response"));
    assert_eq!(name(0x38), Some("glo-information-report-request"));
    assert_eq!(name(0xdb), Some("general-glo-ciphering"));
    assert_eq!(name(0x60), Some("aarq"));
    assert_eq!(name(0x02), None);
    // the ciphered forms: 16 plain APDUs, each with a glo- and a ded- form
    assert_eq!(ciphered::ciphered_tags().count(), 32);
    assert_eq!(ciphered::plain_of(0x2c), Some((0x0c, false)));
    assert_eq!(ciphered::plain_of(0x4e), Some((0x0e, true)));
    assert_eq!(ciphered::ciphered_form(0xc4, true), Some(0xd4));
    assert_eq!(ciphered::ciphered_tag("glo-read-response"), Some(0x2c));
}
