//! Every quirk tolerated and refused, on byte strings (recorded where a
//! recording exists; see each test).

use super::*;
use crate::apdu::{decode, decode_tolerant, Aare, Apdu, GetDataResult, GetResponse, InitiateResponse};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn only(q: &str) -> Tolerance {
    Tolerance::NONE.with(q)
}

impl Tolerance {
    fn with(mut self, q: &str) -> Tolerance {
        match q {
            TRAILING_BYTES => self.trailing_bytes = true,
            ACSE_FIELD_LENGTH => self.acse_field_length = true,
            INITIATE_RESPONSE_LENGTH => self.initiate_response_length = true,
            EVENT_TIME_DATA_TAG => self.event_time_data_tag = true,
            _ => panic!("{q}"),
        }
        self
    }
}

/// A clock read answered with 18 bytes after the complete value (the
/// embedded C server of the issue: get-response-normal, Data, then bytes).
const CLOCK: &str = "C401C100090C07EA0C0304100000FF800000";
const JUNK18: &str = "000102030405060708090A0B0C0D0E0F1011";

#[test]
fn trailing_bytes_after_the_value_of_a_get_response() {
    let buf = h(&format!("{CLOCK}{JUNK18}"));
    let strict = decode(&buf).unwrap_err();
    assert!(strict.to_string().contains("18 trailing"), "{strict}");
    let d = decode_tolerant(&buf, Tolerance::ALL).unwrap();
    assert_eq!(d.value, decode(&h(CLOCK)).unwrap());
    let Apdu::GetResponse(GetResponse::Normal { result: GetDataResult::Data(raw), .. }) = &d.value else { panic!() };
    assert_eq!(raw, &h("090C07EA0C0304100000FF800000"));
    assert_eq!(d.quirks.len(), 1);
    assert_eq!(d.quirks[0].quirk, TRAILING_BYTES);
    assert!(d.quirks[0].detail.contains("18 byte(s) after the complete get-response"), "{}", d.quirks[0]);
    // Not allowed: the error names the quirk.
    let e = decode_tolerant(&buf, Tolerance::ALL.without(TRAILING_BYTES)).unwrap_err();
    assert!(e.to_string().contains("the quirk trailing-bytes is not allowed"), "{e}");
    assert!(decode_tolerant(&buf, Tolerance::NONE).unwrap_err().to_string().contains("trailing-bytes"));
    // A clean answer takes no quirk.
    assert!(decode_tolerant(&h(CLOCK), Tolerance::ALL).unwrap().quirks.is_empty());
}

#[test]
fn trailing_bytes_after_an_empty_profile_buffer() {
    let buf = h("C401C1000100 0000");
    assert!(decode(&buf).is_err());
    let d = decode_tolerant(&buf, only(TRAILING_BYTES)).unwrap();
    let Apdu::GetResponse(GetResponse::Normal { result: GetDataResult::Data(raw), .. }) = &d.value else { panic!() };
    assert_eq!(raw, &h("0100"));
}

#[test]
fn no_tolerance_after_a_ciphered_apdu_or_a_gbt_block() {
    // glo-get-response: tag CC, length 0x0A, SC 0x30, counter, 5 bytes (tag ignored here), then 2 extra.
    let ciphered = h("CC0A3000000001AABBCCDDEE 0000");
    let e = decode_tolerant(&ciphered, Tolerance::ALL).unwrap_err();
    assert!(e.to_string().contains("trailing"), "{e}");
    assert!(!e.to_string().contains("not allowed for this meter model"), "{e}");
    let gbt = h("E0C0000100000003010203 FF");
    assert!(decode_tolerant(&gbt, Tolerance::ALL).is_err());
}

/// An AARE for HLS-GMAC whose responding-authentication-value says 16 bytes
/// (the challenge's length) around an inner TLV of 18 (the Python server).
fn hls_aare(auth: &str) -> Vec<u8> {
    let body = format!(
        "A109060760857405080101 A203020100 A305A10302010E A40A04084D4D4D0000BC614E 88020780 \
         890760857405080205 {auth} BE10040E0800065F1F040000101D04000007"
    );
    let b = h(&body);
    let mut out = vec![0x61, b.len() as u8];
    out.extend(b);
    out
}

const STOC: &str = "000102030405060708090A0B0C0D0E0F";

#[test]
fn acse_field_whose_outer_length_disagrees_with_its_inner_value() {
    let good = decode(&hls_aare(&format!("AA128010{STOC}"))).unwrap();
    for (auth, outer) in [(format!("AA108010{STOC}"), 16), (format!("AA148010{STOC}0000"), 20)] {
        let buf = hls_aare(&auth);
        assert!(decode(&buf).is_err(), "{auth}");
        let d = decode_tolerant(&buf, only(ACSE_FIELD_LENGTH)).unwrap();
        let (Apdu::Aare(a), Apdu::Aare(g)) = (&d.value, &good) else { panic!() };
        assert_eq!(a.responding_authentication_value, Some(h(STOC)));
        assert_eq!(a.user_information, g.user_information);
        assert_eq!(d.quirks.len(), 1, "{:?}", d.quirks);
        assert_eq!(d.quirks[0].quirk, ACSE_FIELD_LENGTH);
        assert!(d.quirks[0].detail.contains(&format!("outer length {outer}, its inner TLV (tag 0x80) takes 18")));
        let e = decode_tolerant(&buf, Tolerance::ALL.without(ACSE_FIELD_LENGTH)).unwrap_err();
        assert!(e.to_string().contains("the quirk acse-field-length is not allowed"), "{e}");
    }
    // An inner value that is not complete is not taken.
    assert!(decode_tolerant(&hls_aare("AA108012000102"), Tolerance::ALL).is_err());
}

/// Iskraemeco SN meter, AARE over HDLC: the InitiateResponse takes 14 bytes,
/// its octet string says 13 and the user-information (0x0F) and AARE (0x28)
/// lengths are one byte short with it; the HDLC frame holds the 14.
/// OpenMUC jDLMS, `HdlcFrameTest.decode3` (frame A0 37 21 03 30 …).
const ISKRA_SN_AARE: &str = "6128A109060760857405080102A203020100A305A103020100BE0F040D0800065F1F04001802200960FA00";

#[test]
fn initiate_response_one_byte_longer_than_its_octet_string() {
    let buf = h(ISKRA_SN_AARE);
    let strict = decode(&buf).unwrap_err();
    let d = decode_tolerant(&buf, only(INITIATE_RESPONSE_LENGTH)).unwrap();
    let Apdu::Aare(a) = &d.value else { panic!() };
    let Some(Apdu::InitiateResponse(ir)) = a.user_information.as_deref() else { panic!("{a:?}") };
    assert_eq!(
        (ir.negotiated_conformance, ir.server_max_receive_pdu_size, ir.vaa_name, ir.negotiated_dlms_version_number),
        (0x180220, 0x0960, 0xFA00, 6)
    );
    assert_eq!(d.quirks.iter().map(|q| q.quirk).collect::<Vec<_>>(), vec![INITIATE_RESPONSE_LENGTH]);
    assert!(d.quirks[0].detail.contains("takes 14 bytes, its octet string says 13"), "{}", d.quirks[0]);
    let e = decode_tolerant(&buf, Tolerance::ALL.without(INITIATE_RESPONSE_LENGTH)).unwrap_err();
    assert!(e.to_string().contains("initiate-response-length is not allowed"), "{e} (strict: {strict})");
}

#[test]
fn initiate_response_one_byte_shorter_than_its_octet_string() {
    // The octet string says 15 for the 14 bytes of the InitiateResponse and one spare byte.
    let buf = h("612AA109060760857405080102A203020100A305A103020100BE110 40F0800065F1F04001802200960FA0000");
    assert!(decode(&buf).is_err());
    let d = decode_tolerant(&buf, only(INITIATE_RESPONSE_LENGTH)).unwrap();
    assert!(matches!(&d.value, Apdu::Aare(Aare { user_information: Some(u), .. })
        if matches!(**u, Apdu::InitiateResponse(InitiateResponse { vaa_name: 0xFA00, .. }))));
    assert!(d.quirks[0].detail.contains("one spare byte"), "{}", d.quirks[0]);
    assert!(decode_tolerant(&buf, Tolerance::NONE).is_err());
}

#[test]
fn a_ciphered_initiate_response_is_never_resized() {
    // The same layout (octet string one byte short, lengths around it short
    // too): a plain InitiateResponse is taken, a glo-InitiateResponse never.
    // (The plain case is the Iskra AARE above.)
    let glo = h("6122A109060760857405080103A203020100A305A103020100BE09040728063000000001 00");
    assert!(decode(&glo).is_err());
    let e = decode_tolerant(&glo, Tolerance::ALL).unwrap_err();
    assert!(!e.to_string().contains("initiate-response-length"), "{e}");
    // One byte more in the octet string and the lengths: it decodes strictly.
    let fixed = h("6123A109060760857405080103A203020100A305A103020100BE0A0408280630000000010 0");
    assert!(decode(&fixed).is_ok());
}

#[test]
fn names_and_defaults() {
    assert_eq!(
        default_quirks(),
        vec![
            TRAILING_BYTES,
            ACSE_FIELD_LENGTH,
            INITIATE_RESPONSE_LENGTH,
            REJECTION_WITHOUT_USER_INFORMATION,
            EVENT_TIME_DATA_TAG
        ]
    );
    assert!(!default_quirks().contains(&PLAIN_INITIATE_RESPONSE));
    assert_eq!(Tolerance::from_names(&default_quirks()), Tolerance::ALL);
    assert_eq!(Tolerance::from_names(&[PLAIN_INITIATE_RESPONSE]), Tolerance::NONE);
    assert_eq!(quirk_name("trailing-bytes"), Some(TRAILING_BYTES));
    assert_eq!(quirk_name("lenient"), None);
}

/// The last-gasp alarm of an Iskraemeco Mx382 (DSMR 2.2) meter as the GXF/OSGP
/// head-end logged it (tests/vectors/real/iskraemeco-mx382-event-notification.json):
/// the event-notification's time is flagged 0x09, not 0x01.
const MX382_LAST_GASP: &str = "C2090C07E70706040A362600FF888000018080808080000209104B413650303035303339303231313130";

#[test]
fn event_notification_time_flagged_with_the_octet_string_tag() {
    use crate::apdu::EventNotification;
    let buf = h(MX382_LAST_GASP);
    let strict = decode(&buf).unwrap_err();
    assert!(strict.to_string().contains("0x09"), "{strict}");
    let d = decode_tolerant(&buf, only(EVENT_TIME_DATA_TAG)).unwrap();
    assert_eq!(d.quirks.len(), 1);
    assert_eq!(d.quirks[0].quirk, EVENT_TIME_DATA_TAG);
    let Apdu::EventNotification(EventNotification { time: Some(time), attribute, value }) = &d.value else {
        panic!("{:?}", d.value)
    };
    assert_eq!(time, &h("07E70706040A362600FF8880"));
    assert_eq!(attribute.class_id, 1);
    assert_eq!(attribute.obis, [0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert_eq!(attribute.attribute_id, 2);
    assert_eq!(value, &h("09104B413650303035303339303231313130"));
    // The same event with the standard flag decodes strictly to the same APDU.
    let standard = h(&MX382_LAST_GASP.replacen("C209", "C201", 1));
    assert_eq!(decode(&standard).unwrap(), d.value);
    // Refused when the model does not allow it, naming the quirk.
    let e = decode_tolerant(&buf, Tolerance::ALL.without(EVENT_TIME_DATA_TAG)).unwrap_err();
    assert!(e.to_string().contains("the quirk event-time-data-tag is not allowed"), "{e}");
    // Any other flag byte stays an error, whatever the tolerance.
    let other = h(&MX382_LAST_GASP.replacen("C209", "C20A", 1));
    assert!(decode_tolerant(&other, Tolerance::ALL).unwrap_err().to_string().contains("0x0a"));
}
