//! Tests of suite-0 ciphered APDUs: Green Book worked examples, tamper
//! detection, round trips and robustness on random input.

use proptest::prelude::*;

use super::*;
use crate::security::hls::{hls_gmac, hls_gmac_verify};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// Green Book (DLMS UA 1000-2) security examples: EK, AK, server system title, IC.
const EK: &str = "000102030405060708090A0B0C0D0E0F";
const AK: &str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";
const ST: &str = "4D4D4D0000BC614E";
const IC: u32 = 0x0123_4567;
// get-request-normal of 0-0:1.0.0.255 (Clock) attribute 2.
const GET: &str = "C0010000080000010000FF0200";

fn ek() -> GcmKey {
    GcmKey::new(&h(EK), "EK").unwrap()
}

fn params<'a>(sc: u8, st: &'a [u8], ek: &'a GcmKey, ak: &'a [u8]) -> CipherParams<'a> {
    CipherParams { security_control: sc, system_title: st, invocation_counter: IC, ek, ak }
}

#[test]
fn green_book_glo_get_request() {
    let (ek, ak, st) = (ek(), h(AK), h(ST));
    // Green Book Table 40 "Example: glo-get-request xDLMS APDU" (authenticated encryption).
    let want30 = h("C8 1E 30 01234567 411312FF935A47566827C467BC 7D825C3BE4A77C3FCC056B6B");
    // Authentication only and encryption only: the same example, cross-checked with OpenSSL.
    let want10 = h("C8 1E 10 01234567 C0010000080000010000FF0200 06725D910F9221D263877516");
    let want20 = h("C8 12 20 01234567 411312FF935A47566827C467BC");
    for (sc, want) in [(0x30, want30), (0x10, want10), (0x20, want20)] {
        let got = cipher_apdu(&h(GET), &params(sc, &st, &ek, &ak), false, false).unwrap();
        assert_eq!(got, want, "SC 0x{sc:02x}");
        let d = decipher_apdu(&got, Some(&st), &ek, &ak, 0).unwrap();
        assert_eq!((d.apdu, d.security_control, d.invocation_counter), (h(GET), sc, IC));
    }
    // The ded- form differs only in its tag.
    let ded = cipher_apdu(&h(GET), &params(0x30, &st, &ek, &ak), true, false).unwrap();
    assert_eq!(ded[0], 0xD0);
    assert_eq!(decipher_apdu(&ded, Some(&st), &ek, &ak, 0x30).unwrap().apdu, h(GET));
}

#[test]
fn general_glo_ciphering_carries_system_title() {
    let (ek, ak, st) = (ek(), h(AK), h(ST));
    let got = cipher_apdu(&h(GET), &params(0x30, &st, &ek, &ak), false, true).unwrap();
    let mut want = h("DB 08 4D4D4D0000BC614E 1E 30 01234567 411312FF935A47566827C467BC 7D825C3BE4A77C3FCC056B6B");
    assert_eq!(got, want);
    let d = decipher_apdu(&got, None, &ek, &ak, 0x30).unwrap();
    assert_eq!((d.apdu, d.system_title.to_vec()), (h(GET), st.clone()));
    want[0] = GENERAL_DED_CIPHERING;
    assert_eq!(cipher_apdu(&h(GET), &params(0x30, &st, &ek, &ak), true, true).unwrap(), want);
}

#[test]
fn hls_gmac_green_book() {
    let (ek, ak) = (h(EK), h(AK));
    // Green Book HLS-GMAC example: the client (system title 4D4D4D0000000001,
    // IC 1) answers the server's challenge StoC = "P6wRJ21F".
    let client = h("4D4D4D0000000001");
    let stoc = b"P6wRJ21F";
    let f = hls_gmac(0x10, &client, 1, &ek, &ak, stoc).unwrap();
    assert_eq!(f, h("10 00000001 1A52FE7DD3E72748973C1E28"));
    assert_eq!(hls_gmac_verify(&client, &ek, &ak, stoc, &f).unwrap(), 1);
    // The server's f(CtoS) for CtoS = "K56iVagY" (cross-checked with OpenSSL).
    let server = h(ST);
    let f = hls_gmac(0x10, &server, 1, &ek, &ak, b"K56iVagY").unwrap();
    assert_eq!(f, h("10 00000001 7186BDB8565EE69093467B68"));
    for bit in 0..f.len() * 8 {
        let mut bad = f.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(hls_gmac_verify(&server, &ek, &ak, b"K56iVagY", &bad).is_err(), "bit {bit}");
    }
    assert!(hls_gmac_verify(&server, &ek, &ak, b"K56iVagX", &f).is_err());
    assert_eq!(hls_gmac(0x30, &server, 1, &ek, &ak, b"x").unwrap_err().field, "security control");
}

/// Flip every bit of a protected APDU: it must never decipher to anything.
#[test]
fn every_bit_flip_is_rejected() {
    let (ek, ak, st) = (ek(), h(AK), h(ST));
    for sc in [0x10u8, 0x30] {
        let good = cipher_apdu(&h(GET), &params(sc, &st, &ek, &ak), false, false).unwrap();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let e = decipher_apdu(&bad, Some(&st), &ek, &ak, sc).unwrap_err();
            // SC, IC, ciphertext or tag: a wrong tag; APDU tag/length: a framing error.
            if bit / 8 >= 7 && e.kind != ErrorKind::AuthenticationFailed {
                // Flips in SC may instead name an unsupported suite/compression or a policy violation.
                assert_eq!(bit / 8, 2, "SC 0x{sc:02x} bit {bit}: {e}");
            }
            if bit / 8 >= 3 {
                assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "SC 0x{sc:02x} bit {bit}: {e}");
            }
        }
    }
    // Without a policy, SC 0x30 -> 0x20 is a valid (tag-less) APDU: the policy catches it.
    let mut down = cipher_apdu(&h(GET), &params(0x30, &st, &ek, &ak), false, false).unwrap();
    down[2] = 0x20;
    let e = decipher_apdu(&down, Some(&st), &ek, &ak, 0x30).unwrap_err();
    assert_eq!((e.field, e.offset), ("security control", 2));
}

#[test]
fn framing_errors_name_field_and_offset() {
    let (ek, ak, st) = (ek(), h(AK), h(ST));
    let e = decipher_apdu(&h("C0 00"), Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnknownTag(0xC0));
    let e = decipher_apdu(&h("C8 1E 30 01"), Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!((e.field, e.offset), ("ciphered content", 1));
    let e = decipher_apdu(&h("C8 1E 30"), None, &ek, &ak, 0).unwrap_err();
    assert_eq!(e.field, "system title");
    let e = decipher_apdu(&h("DB 07 4D4D4D0000BC61"), None, &ek, &ak, 0).unwrap_err();
    assert_eq!((e.field, e.offset), ("system title length", 1));
    let e = decipher_apdu(&h("C8 05 31 01234567"), Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!((e.field, e.offset), ("security control: security suite", 2));
    let e = decipher_apdu(&h("C8 05 30 01234567 00"), Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!((e.field, e.offset, e.kind), ("ciphered APDU", 7, ErrorKind::Trailing(1)));
    let e = decipher_apdu(&h("C8 08 30 01234567 000000"), Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!((e.field, e.offset), ("authentication tag", 7));
    let e = cipher_apdu(&h("0F 00"), &params(0x30, &st, &ek, &ak), false, false).unwrap_err();
    assert_eq!(e.field, "APDU tag");
    let e = cipher_apdu(&h(GET), &params(0x30, &st, &ek, &ak[..15]), false, false).unwrap_err();
    assert_eq!(e.field, "AK");
    let e = cipher_apdu(&h(GET), &params(0x30, &st[..7], &ek, &ak), false, false).unwrap_err();
    assert_eq!(e.field, "system title");
    // A glo-get-request must carry a get-request.
    let wrong = cipher_apdu(&h("C4 01"), &params(0x30, &st, &ek, &ak), false, false).unwrap();
    let mut relabelled = wrong.clone();
    relabelled[0] = 0xC8;
    let e = decipher_apdu(&relabelled, Some(&st), &ek, &ak, 0).unwrap_err();
    assert_eq!(e.field, "deciphered APDU tag");
}

#[test]
fn tag_table_is_a_bijection() {
    for plain in 0..=255u8 {
        for ded in [false, true] {
            if let Some(c) = ciphered_tag(plain, ded) {
                assert_eq!(plain_tag(c), Some((plain, ded)));
            }
        }
    }
    assert_eq!(ciphered_tag(0x01, false), Some(0x21));
    assert_eq!(ciphered_tag(0x01, true), Some(0x41));
    assert_eq!(ciphered_tag(0xC7, true), Some(0xD7));
    assert_eq!(ciphered_tag(0x0F, false), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(sc in prop::sample::select(vec![0x10u8, 0x20, 0x30, 0x50, 0x60, 0x70]),
                  ic in any::<u32>(),
                  body in prop::collection::vec(any::<u8>(), 0..300),
                  ded in any::<bool>(), general in any::<bool>()) {
        let (ek, ak, st) = (ek(), h(AK), h(ST));
        let mut apdu = vec![0xC4];
        apdu.extend(&body);
        let p = CipherParams { security_control: sc, system_title: &st, invocation_counter: ic, ek: &ek, ak: &ak };
        let wire = cipher_apdu(&apdu, &p, ded, general).unwrap();
        let d = decipher_apdu(&wire, Some(&st), &ek, &ak, sc & 0x30).unwrap();
        prop_assert_eq!(d.apdu, apdu.clone());
        prop_assert_eq!((d.security_control, d.invocation_counter), (sc, ic));
        let content = protect(&p, &apdu).unwrap();
        prop_assert_eq!(unprotect(&st, &ek, &ak, &content, 0).unwrap(), (sc, ic, apdu));
    }

    #[test]
    fn random_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..80)) {
        let (ek, ak, st) = (ek(), h(AK), h(ST));
        let _ = decipher_apdu(&data, Some(&st), &ek, &ak, 0);
        let _ = unprotect(&st, &ek, &ak, &data, 0);
    }
}
