//! Tests of the short-name services (`sn.rs`): the public SN traces, one
//! round trip per alternative, and the errors that name what was wrong.

use super::sn::*;
use super::*;
use crate::axdr::Data;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn round_trip(a: Apdu) -> Vec<u8> {
    let bytes = a.encode();
    assert_eq!(decode(&bytes).unwrap(), a, "{}", a.kind());
    bytes
}

#[test]
fn gurux_sn_session_trace() {
    // https://pastebin.com/Vvs6PqXK: a Gurux client ("-r sn") and a real SN meter.
    let Apdu::Aarq(q) = decode(&hex("601DA109060760857405080102BE10040E01000000065F1F04001C0320FFFF")).unwrap() else {
        panic!()
    };
    assert_eq!(association::context_name(&q.application_context_name), Some("short-name"));
    let Some(Apdu::InitiateRequest(i)) = q.user_information.as_deref() else { panic!() };
    assert_eq!(
        initiate::conformance_names(i.proposed_conformance),
        ["read", "write", "unconfirmed-write", "multiple-references", "information-report", "parameterized-access"]
    );
    // The meter's initiate-response octet string says 13 bytes for 14: only
    // the initiate-response-length quirk takes it.
    let aare = hex("6128A109060760857405080102A203020100A305A103020100BE0F040D0800065F1F04001802200960FA00");
    assert!(decode(&aare).is_err());
    let tolerance = Tolerance { initiate_response_length: true, ..Tolerance::NONE };
    let Apdu::Aare(a) = decode_tolerant(&aare, tolerance).unwrap().value else { panic!() };
    let Some(Apdu::InitiateResponse(r)) = a.user_information.as_deref() else { panic!() };
    assert_eq!(r.vaa_name, CURRENT_ASSOCIATION_BASE_NAME);
    assert_eq!(r.server_max_receive_pdu_size, 0x0960);
    assert_eq!(
        initiate::conformance_names(r.negotiated_conformance),
        ["read", "write", "multiple-references", "parameterized-access"]
    );
    let read = decode(&hex("050102FA08")).unwrap();
    assert_eq!(read, Apdu::ReadRequest(ReadRequest { variables: vec![VariableAccess::Name(0xFA08)] }));
    assert_eq!(attribute_short_name(CURRENT_ASSOCIATION_BASE_NAME, 2), Some(0xFA08));
}

/// The first two HDLC segments of the meter's answer in the same trace: a
/// ReadResponse whose data is the object list (293 entries, array length in
/// the long form 82 01 25), each {base_name long, class_id long-unsigned,
/// version unsigned, logical_name octet-string}.
const OBJECT_LIST_HEAD: &str = "0C 01 00 01 82 01 25
    02 04 10 00 10 12 27 16 11 03 09 06 00 00 F0 0D 00 FF
    02 04 10 00 E8 12 27 12 11 07 09 06 00 00 F0 00 00 FF
    02 04 10 01 50 12 27 60 11 04 09 06 00 00 F0 0F FF FF
    02 04 10 04 10 12 00 03 11 00 09 06 00 00 61 61 00 FF
    02 04 10 48 A0 12 00 03 11 00 09 06 00 00 60 F0 0C FF
    02 04 10 2B C0 12 00 08 11 00 09 06 00 00 01 00 00 FF
    02 04 10 C7 38 12 00 14 11 00 09 06 00 00 0D 00 00 FF
    02 04 10 C8 00 12 00 0B 11 00 09 06 00 00 0B 00 00 FF";

#[test]
fn gurux_sn_object_list_answer() {
    let head = hex(OBJECT_LIST_HEAD);
    // The trace shows only the first 8 of 293 entries: the rest is missing, and says so.
    let e = decode(&head).unwrap_err();
    assert_eq!(e.field, "data");
    // The same entries as a complete answer (the array length set to 8).
    let mut whole = head[..4].to_vec();
    whole.push(8);
    whole.extend_from_slice(&head[7..]);
    let Apdu::ReadResponse(r) = decode(&whole).unwrap() else { panic!() };
    let [ReadResult::Data(raw)] = r.results.as_slice() else { panic!("{r:?}") };
    let Data::Array(entries) = crate::axdr::decode(raw).unwrap() else { panic!() };
    let row = |e: &Data| match e {
        Data::Structure(f) => match f.as_slice() {
            [Data::Long(b), Data::LongUnsigned(c), Data::Unsigned(v), Data::OctetString(ln)] => {
                (*b as u16, *c, *v, ln.clone())
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    // The clock (class 8) at base name 0x2BC0; the activity calendar (20) at 0xC738.
    assert_eq!(row(&entries[5]), (0x2BC0, 8, 0, vec![0, 0, 1, 0, 0, 255]));
    assert_eq!(row(&entries[6]), (0xC738, 20, 0, vec![0, 0, 13, 0, 0, 255]));
    assert_eq!(round_trip(Apdu::ReadResponse(r)), whole);
}

#[test]
fn every_variable_access_alternative_round_trips() {
    let params = Data::Structure(vec![Data::LongUnsigned(8), Data::OctetString(vec![0, 0, 1, 0, 0, 255])]).encode();
    let variables = vec![
        VariableAccess::Name(0x2BC8),
        VariableAccess::Parameterized { name: 0x3008, selector: 1, parameters: params.clone() },
        VariableAccess::BlockNumber(3),
        VariableAccess::ReadDataBlock { last_block: false, block_number: 1, raw_data: vec![1, 2, 3] },
        VariableAccess::WriteDataBlock { last_block: true, block_number: 2 },
    ];
    let bytes = round_trip(Apdu::ReadRequest(ReadRequest { variables: variables.clone() }));
    assert_eq!(&bytes[..5], &[0x05, 0x05, 0x02, 0x2B, 0xC8]);
    assert_eq!(&bytes[5..9], &[0x04, 0x30, 0x08, 0x01]);
    for (tag, unconfirmed) in [(0x06, false), (0x16, true)] {
        let w = WriteRequest { variables: vec![VariableAccess::Name(0x2BC8)], data: vec![Data::Unsigned(5).encode()] };
        let a = if unconfirmed { Apdu::UnconfirmedWriteRequest(w) } else { Apdu::WriteRequest(w) };
        assert_eq!(round_trip(a), vec![tag, 0x01, 0x02, 0x2B, 0xC8, 0x01, 0x11, 0x05]);
    }
}

#[test]
fn read_and_write_results_round_trip() {
    let r = ReadResponse {
        results: vec![
            ReadResult::Data(Data::DoubleLongUnsigned(7).encode()),
            ReadResult::DataAccessError(4),
            ReadResult::DataBlock { last_block: true, block_number: 2, raw_data: vec![9; 3] },
            ReadResult::BlockNumber(5),
        ],
    };
    let bytes = round_trip(Apdu::ReadResponse(r));
    assert_eq!(&bytes[..8], &[0x0C, 0x04, 0x00, 0x06, 0, 0, 0, 7]);
    assert_eq!(&bytes[8..10], &[0x01, 0x04]);
    let w = WriteResponse {
        results: vec![WriteResult::Success, WriteResult::DataAccessError(3), WriteResult::BlockNumber(0x0102)],
    };
    assert_eq!(round_trip(Apdu::WriteResponse(w)), vec![0x0D, 0x03, 0x00, 0x01, 0x03, 0x02, 0x01, 0x02]);
}

#[test]
fn information_report_time_forms() {
    let data = vec![Data::DoubleLongUnsigned(1).encode()];
    let variables = vec![VariableAccess::Name(0x1008)];
    let none = InformationReport { current_time: None, variables: variables.clone(), data: data.clone() };
    assert_eq!(&round_trip(Apdu::InformationReport(none))[..3], &[0x18, 0x00, 0x01]);
    let t = vec![0x07, 0xE8, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0];
    let with = InformationReport { current_time: Some(t.clone()), variables: variables.clone(), data: data.clone() };
    let bytes = round_trip(Apdu::InformationReport(with.clone()));
    assert_eq!(&bytes[..2], &[0x18, 0x0C], "a COSEM date-time octet-string, as Gurux sends it");
    // The A-XDR OPTIONAL form (0x01, then the octet-string) is read too.
    let mut optional = vec![0x18, 0x01, 0x0C];
    optional.extend_from_slice(&t);
    optional.extend_from_slice(&bytes[14..]);
    assert_eq!(decode(&optional).unwrap(), Apdu::InformationReport(with));
}

#[test]
fn errors_name_the_field() {
    let e = decode(&hex("05010300")).unwrap_err();
    assert_eq!(e.field, "variable-access-specification");
    assert!(e.to_string().contains("detailed-access"), "{e}");
    let e = decode(&hex("050109FA08")).unwrap_err();
    assert_eq!((e.field, e.kind.clone()), ("variable-access-specification", crate::error::ErrorKind::UnknownTag(9)));
    let e = decode(&hex("0C0104")).unwrap_err();
    assert_eq!(e.field, "read-data-result");
    let e = decode(&hex("0D0103")).unwrap_err();
    assert_eq!(e.field, "write-result");
    let e = decode(&hex("0601022BC8010F")).unwrap_err();
    assert_eq!(e.field, "data", "a list-of-data value that is not one A-XDR value");
    let e = decode(&hex("050102FA0800")).unwrap_err();
    assert_eq!(e.field, "APDU", "trailing bytes");
}

#[test]
fn attribute_short_names() {
    assert_eq!(attribute_short_name(0x2BC0, 1), Some(0x2BC0));
    assert_eq!(attribute_short_name(0x2BC0, 2), Some(0x2BC8));
    assert_eq!(attribute_short_name(0xFFF8, 2), None);
    assert_eq!(attribute_short_name(0x2BC0, 0), None);
}
