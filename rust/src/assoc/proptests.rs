//! Whatever arrives, neither role panics: random APDUs (with tags chosen to
//! reach deep paths) and mutations of real exchanges, in every state.

use proptest::prelude::*;

use super::tests::*;
use super::*;

/// Tags that reach the interesting paths of both roles.
const TAGS: &[u8] = &[
    0x60, 0x61, 0x62, 0x63, 0x0E, 0x0F, 0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0xC8, 0xCC, 0xCB, 0xCF, 0xD0, 0xD4, 0xD8,
    0xDB, 0xDC, 0xE0,
];

fn apdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (prop::sample::select(TAGS), prop::collection::vec(any::<u8>(), 0..120)).prop_map(|(t, mut v)| {
            v.insert(0, t);
            v
        }),
        // GBT blocks with small numbers, so that sequences line up
        (any::<u8>(), 0u16..4, 0u16..4, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(c, n, a, d)| {
            let mut v = vec![0xE0, c];
            v.extend_from_slice(&n.to_be_bytes());
            v.extend_from_slice(&a.to_be_bytes());
            v.push(d.len() as u8);
            v.extend(d);
            v
        }),
    ]
}

/// A wire left in state `k`: 0 idle, 1 AARQ sent, 2 associated, 3 a GET in
/// flight, 4 a GET half-way through its datablocks, 5 a GBT answer half-way.
fn wire(k: u8, ciphered: bool) -> Wire<'static> {
    let conformance = bits::GET
        | bits::SET
        | bits::ACTION
        | bits::MULTIPLE_REFERENCES
        | bits::BLOCK_TRANSFER_WITH_GET
        | bits::BLOCK_TRANSFER_WITH_SET
        | bits::BLOCK_TRANSFER_WITH_ACTION
        | if k == 5 { bits::GENERAL_BLOCK_TRANSFER } else { 0 };
    let side = |server: bool| {
        let base = if ciphered { hls_cfg(server, CipherMode::Glo) } else { plain_cfg() };
        AssociationConfig { conformance, max_receive_pdu: 128, gbt_window: 3, ..base }
    };
    let mut w = Wire::new(side(false), side(true));
    let ctos = if ciphered { Some(&b"K56iVagY"[..]) } else { None };
    match k {
        0 => {}
        1 => {
            w.c.open(0.0, ctos, None).unwrap();
        }
        _ => {
            w.associate(ctos, None);
            w.model = Model::with(&[(7, PROFILE, 2, octets(2000, 1))]);
            if k >= 3 {
                w.auto_answer = k != 3;
                w.c.get(&[attr(7, PROFILE, 2)], w.now).unwrap();
                // deliver a few APDUs, then stop half-way
                for _ in 0..3 {
                    w.step();
                }
            }
        }
    }
    w
}

fn drain(w: &mut Wire) {
    while w.c.next_event().is_some() {}
    while w.s.next_event().is_some() {}
    w.c.data_to_send();
    w.s.data_to_send();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_apdus_never_panic(k in 0u8..6, ciphered in any::<bool>(), apdus in prop::collection::vec(apdu(), 1..12)) {
        let mut w = wire(k, ciphered);
        for (i, a) in apdus.iter().enumerate() {
            w.c.receive_data(a, 10.0 + i as f64);
            w.s.receive_data(a, 10.0 + i as f64);
            if i % 3 == 0 {
                drain(&mut w);
            }
        }
        w.c.handle_timeout(1e9);
        w.s.handle_timeout(1e9);
        drain(&mut w);
        // still usable afterwards
        let _ = w.c.get(&[attr(8, CLOCK, 2)], 2e9);
        let _ = w.c.release(2e9);
        w.c.reset();
    }

    #[test]
    fn mutated_exchanges_never_panic(ciphered in any::<bool>(), gbt in any::<bool>(),
                                     flips in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 1..6)) {
        // record a whole exchange, then replay it with bytes changed or cut
        let k = if gbt { 5 } else { 4 };
        let mut w = wire(k, ciphered);
        w.run();
        let log = w.log.clone();
        let mut fresh = wire(2, ciphered);
        for (n, (from_client, a)) in log.iter().enumerate() {
            let mut a = a.clone();
            for (which, at, x) in &flips {
                if which % log.len() == n && !a.is_empty() {
                    let i = at % a.len();
                    if x % 7 == 0 { a.truncate(i) } else { a[i] ^= x | 1 }
                }
            }
            if *from_client { fresh.s.receive_data(&a, n as f64) } else { fresh.c.receive_data(&a, n as f64) }
        }
        fresh.c.handle_timeout(1e9);
        drain(&mut fresh);
    }
}
