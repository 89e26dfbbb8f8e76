//! The client machine with a meter's quirks: taken (one `Quirk` event each,
//! before what it let through) when the configuration allows them, refused
//! naming the quirk when it does not; never inside security.

use super::tests::*;
use super::*;
use crate::apdu::quirks::{ACSE_FIELD_LENGTH, TRAILING_BYTES};

fn quirks(ev: &[ClientEvent]) -> Vec<&'static str> {
    ev.iter().filter_map(|e| if let ClientEvent::Quirk(q) = e { Some(q.quirk) } else { None }).collect()
}

/// The server's AARE with the responding-authentication-value's outer length
/// set to the challenge's length (short by its inner header, 2 bytes).
fn short_auth_field(from_client: bool, a: &[u8]) -> Option<Vec<u8>> {
    let mut a = a.to_vec();
    if !from_client && a[0] == 0x61 {
        let at = a.windows(4).position(|w| w == [0xAA, 0x0A, 0x80, 0x08]).expect("StoC of 8 bytes");
        a[at + 1] = 0x08;
    }
    Some(a)
}

#[test]
fn hls_gmac_aare_whose_auth_value_field_is_short_associates_with_the_quirk() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.hook = Box::new(|c, _, a| short_auth_field(c, a));
    w.associate(Some(b"K56iVagY"), None);
    assert_eq!(quirks(&w.cev), vec![ACSE_FIELD_LENGTH]);
    let at = w.cev.iter().position(|e| matches!(e, ClientEvent::Quirk(_))).unwrap();
    let Some(ClientEvent::Associated(a)) = w.cev.iter().find(|e| matches!(e, ClientEvent::Associated(_))) else {
        panic!()
    };
    assert_eq!(a.quirks_used, vec![ACSE_FIELD_LENGTH]);
    assert!(at < w.cev.iter().position(|e| matches!(e, ClientEvent::Associated(_))).unwrap());
}

#[test]
fn hls_gmac_aare_whose_auth_value_field_is_short_is_refused_when_strict() {
    let strict = AssociationConfig { quirks: vec![], ..hls_cfg(false, CipherMode::Glo) };
    let mut w = Wire::new(strict, hls_cfg(true, CipherMode::Glo));
    w.hook = Box::new(|c, _, a| short_auth_field(c, a));
    w.c.open(w.now, Some(b"K56iVagY"), None).unwrap();
    w.run();
    let ev: Vec<_> = w.cev.iter().filter(|e| **e != ClientEvent::NeedCounters).collect();
    let [ClientEvent::AssociationFailed(e)] = &ev[..] else { panic!("{:?}", w.cev) };
    assert!(e.to_string().contains("acse-field-length is not allowed for this meter model"), "{e}");
}

fn with_trailing(from_client: bool, _: usize, a: &[u8]) -> Option<Vec<u8>> {
    let mut a = a.to_vec();
    if !from_client && matches!(a[0], 0xC4 | 0xCC) {
        a.extend_from_slice(&[0u8; 18]);
    }
    Some(a)
}

#[test]
fn trailing_bytes_after_a_get_answer_are_taken_or_refused() {
    for strict in [false, true] {
        let cfg = if strict { AssociationConfig { quirks: vec![], ..plain_cfg() } } else { plain_cfg() };
        let mut w = Wire::new(cfg, plain_cfg());
        w.associate(None, None);
        w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
        w.hook = Box::new(with_trailing);
        let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
        w.run();
        if strict {
            assert!(quirks(&w.cev).is_empty());
            let Err(RequestError::Protocol(e)) = w.result(id) else { panic!("{:?}", w.result(id)) };
            assert!(e.to_string().contains("trailing-bytes is not allowed"), "{e}");
        } else {
            assert_eq!(quirks(&w.cev), vec![TRAILING_BYTES]);
            assert_eq!(value(w.result(id)), octets(12, 0));
        }
    }
}

#[test]
fn trailing_bytes_after_a_ciphered_answer_are_never_taken() {
    let mut w = Wire::hls(CipherMode::Glo);
    w.associate(Some(b"K56iVagY"), None);
    w.model = Model::with(&[(8, CLOCK, 2, octets(12, 0))]);
    w.hook = Box::new(with_trailing);
    let id = w.c.get(&[attr(8, CLOCK, 2)], w.now).unwrap();
    w.run();
    assert!(quirks(&w.cev).is_empty(), "{:?}", w.cev);
    assert!(w.result(id).is_err());
}

#[test]
fn an_exception_response_to_the_aarq_fails_the_association_at_once() {
    let mut c = ClientAssociation::new(plain_cfg()).unwrap();
    c.open(0.0, None, None).unwrap();
    c.data_to_send();
    c.receive_data(&h("D80101"), 0.1);
    let Some(ClientEvent::AssociationFailed(e)) = c.next_event() else { panic!() };
    assert_eq!(e.field, super::client_rx::EXCEPTION_FOR_AARQ);
    assert!(e.to_string().contains("service-not-allowed"), "{e}");
    assert_eq!(c.state(), ClientState::Idle);
}
