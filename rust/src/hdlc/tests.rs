//! Tests of the HDLC codec and framer: every control frame, address sizes,
//! published vectors (tests/vectors/hdlc), property tests.

use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn addr(s: &str) -> (u16, Option<u16>) {
    match s.split_once('/') {
        Some((u, l)) => (u.parse().unwrap(), Some(l.parse().unwrap())),
        None => (s.parse().unwrap(), None),
    }
}

fn client() -> Address {
    Address::client(0x10).unwrap()
}

fn server(size: u8) -> Address {
    match size {
        1 => Address::with_size(1, None, Some(1)).unwrap(),
        s => Address::with_size(1, Some(0x11), Some(s)).unwrap(),
    }
}

#[test]
fn published_frames_decode() {
    let text = include_str!("../../../tests/vectors/hdlc/frames.txt");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let wire = hex(f[7]);
        let frame = decode(&wire).unwrap_or_else(|e| panic!("{}: {e}", f[0]));
        assert_eq!(frame.kind().name(), f[1], "{}", f[0]);
        assert_eq!((frame.dest.upper, frame.dest.lower), addr(f[2]), "{}", f[0]);
        assert_eq!((frame.src.upper, frame.src.lower), addr(f[3]), "{}", f[0]);
        assert_eq!(frame.control.byte(), u8::from_str_radix(f[4], 16).unwrap(), "{}", f[0]);
        assert_eq!(frame.segmented, f[5] == "1");
        assert_eq!(frame.info, if f[6] == "-" { vec![] } else { hex(f[6]) }, "{}", f[0]);
        // Re-encoding gives the same bytes.
        assert_eq!(frame.encode().unwrap(), wire, "{}", f[0]);
        n += 1;
    }
    assert!(n >= 7);
}

#[test]
fn published_bad_frames_are_rejected_with_field_and_offset() {
    let text = include_str!("../../../tests/vectors/hdlc/bad_frames.txt");
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let e = decode(&hex(f[3])).expect_err(f[0]);
        assert_eq!((e.field, e.offset), (f[1], f[2].parse().unwrap()), "{}: {e}", f[0]);
    }
}

#[test]
fn kamstrup_ua_parameters() {
    let f = decode(&hex("7EA020210373739881801405020200060202000704000000010804000000016FEF7E")).unwrap();
    let p = Parameters::decode(&f.info).unwrap();
    assert_eq!(p, Parameters { max_info_tx: 512, max_info_rx: 512, window_tx: 1, window_rx: 1 });
}

#[test]
fn every_control_frame_round_trips() {
    let cases = [
        (FrameKind::I, 0x10u8, Some(0u8), Some(0u8)),
        (FrameKind::RR, 0x11, None, Some(0)),
        (FrameKind::RNR, 0x15, None, Some(0)),
        (FrameKind::SNRM, 0x93, None, None),
        (FrameKind::DISC, 0x53, None, None),
        (FrameKind::UA, 0x73, None, None),
        (FrameKind::DM, 0x1F, None, None),
        (FrameKind::FRMR, 0x97, None, None),
        (FrameKind::UI, 0x13, None, None),
    ];
    for (kind, byte, ns, nr) in cases {
        let c = Control { kind, send_seq: ns, recv_seq: nr, poll_final: true };
        assert_eq!(c.byte(), byte, "{kind:?}");
        assert_eq!(Control::parse(byte, 0).unwrap(), c);
        assert!(!Control::parse(byte & !0x10, 0).unwrap().poll_final);
        for size in [1, 2, 4] {
            let mut f = Frame::new(kind, server(size), client(), true);
            f.control = c;
            let wire = f.encode().unwrap();
            assert_eq!(decode(&wire).unwrap(), f);
            if matches!(kind, FrameKind::I | FrameKind::UI | FrameKind::SNRM | FrameKind::UA | FrameKind::FRMR) {
                f.info = vec![0xE6, 0xE6, 0x00, 0xC0];
                assert_eq!(decode(&f.encode().unwrap()).unwrap(), f);
            }
        }
    }
    // I frame sequence numbers and RR N(R).
    let c = Control { kind: FrameKind::I, send_seq: Some(5), recv_seq: Some(3), poll_final: false };
    assert_eq!(c.byte(), 0b0110_1010);
    assert_eq!(Control::parse(0b0110_1010, 0).unwrap(), c);
    assert_eq!(Control::parse(0xF1, 0).unwrap().recv_seq, Some(7));
    let e = Control::parse(0x2F, 4).unwrap_err();
    assert_eq!((e.field, e.offset), ("control", 4));
}

#[test]
fn address_sizes_on_the_wire() {
    let mut f = Frame::new(FrameKind::SNRM, server(2), client(), true);
    assert_eq!(f.encode().unwrap()[..6], [0x7E, 0xA0, 0x08, 0x02, 0x23, 0x21]);
    f.dest = server(4);
    assert_eq!(f.encode().unwrap()[..8], [0x7E, 0xA0, 0x0A, 0x00, 0x02, 0x00, 0x23, 0x21]);
    // Mixed sizes are parsed by the end bit: a 2-byte source, 1-byte destination.
    let mut g = Frame::new(FrameKind::UA, client(), server(2), true);
    g.info = vec![1];
    let d = decode(&g.encode().unwrap()).unwrap();
    assert_eq!((d.dest.size, d.src.size, d.src.lower), (1, 2, Some(0x11)));
}

#[test]
fn segmentation_bit_and_length_limit() {
    let mut f = Frame::new(FrameKind::I, server(1), client(), false);
    f.segmented = true;
    f.info = vec![0x7E; 100];
    let wire = f.encode().unwrap();
    assert_eq!(wire[1] & 0x08, 0x08);
    assert_eq!(decode(&wire).unwrap(), f);
    f.info = vec![0; 2040];
    let e = f.encode().unwrap_err();
    assert_eq!(e.field, "length");
}

#[test]
fn decoder_errors_name_field_and_offset() {
    let good = hex("7EA0070321930F017E");
    assert_eq!(decode(&good[..8]).unwrap_err().field, "closing flag");
    assert_eq!(decode(&good[1..3]).unwrap_err().field, "length");
    let mut bad = good.clone();
    bad[1] = 0x90;
    let e = decode(&bad).unwrap_err();
    assert_eq!((e.field, e.offset), ("format", 1));
    // Without flags the offsets count from the format field.
    let e = decode(&good[1..7]).unwrap_err();
    assert_eq!(e.field, "length");
    // 3 bytes between control and end: neither FCS alone nor HCS+info+FCS.
    let mut f = Frame::new(FrameKind::UI, server(1), client(), true);
    f.info = vec![1];
    let mut w = f.encode().unwrap();
    w.remove(9);
    w[2] -= 1;
    let e = decode(&w).unwrap_err();
    assert_eq!((e.field, e.offset), ("information field", 6));
    assert!(decode(&[]).is_err());
    assert!(decode(&[0x7E]).is_err());
    assert!(decode(&[0x7E, 0x7E]).is_err());
}

fn stream_of(frames: &[Frame], shared_flags: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let w = f.encode().unwrap();
        if shared_flags && out.last() == Some(&FLAG) {
            out.extend_from_slice(&w[1..]);
        } else {
            out.extend_from_slice(&w);
        }
    }
    out
}

fn sample_frames() -> Vec<Frame> {
    (0..6u8)
        .map(|i| {
            let mut f = Frame::new(FrameKind::I, server(2), client(), i % 2 == 0);
            f.control.send_seq = Some(i % 8);
            f.control.recv_seq = Some(0);
            f.info = vec![0x7E, i, 0x7E, 0xA0];
            f
        })
        .collect()
}

#[test]
fn framer_shared_flags_and_byte_at_a_time() {
    let frames = sample_frames();
    for shared in [false, true] {
        let s = stream_of(&frames, shared);
        let mut fr = Framer::new(2048);
        let mut got = Vec::new();
        for b in &s {
            fr.feed(std::slice::from_ref(b));
            got.extend(fr.drain());
        }
        assert_eq!(got, frames);
        assert_eq!(fr.discarded_bytes(), 0);
        assert!(fr.take_errors().is_empty());
    }
}

#[test]
fn framer_resynchronises_after_garbage_and_bad_fcs() {
    let frames = sample_frames();
    let mut s = vec![0x00, 0x7E, 0xA0, 0x55, 0x13];
    s.extend(frames[0].encode().unwrap());
    let mut corrupt = frames[1].encode().unwrap();
    corrupt[10] ^= 0x40;
    s.extend(&corrupt);
    s.extend([0xFF, 0xFF]);
    s.extend(stream_of(&frames[2..], true));
    let mut fr = Framer::new(2048);
    fr.feed(&s);
    let got = fr.drain();
    assert_eq!(got.len(), frames.len() - 1);
    assert_eq!(got[0], frames[0]);
    assert_eq!(got[1..], frames[2..]);
    let errs = fr.take_errors();
    assert!(errs.iter().any(|e| e.contains("garbage at stream offset 0")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("rejected: HDLC: FCS")), "{errs:?}");
    assert_eq!(fr.discarded_bytes(), 5 + corrupt.len() as u64 + 2);
    assert!(fr.take_errors().is_empty());
}

#[test]
fn framer_bounds_buffer_and_rejects_oversize() {
    let mut fr = Framer::new(64);
    let mut f = Frame::new(FrameKind::UI, server(1), client(), true);
    f.info = vec![1; 100];
    fr.feed(&f.encode().unwrap());
    assert!(fr.drain().is_empty());
    assert!(fr.buffered() <= 1);
    // Pure garbage does not accumulate.
    fr.feed(&[0x55; 10_000]);
    assert!(fr.drain().is_empty());
    assert!(fr.buffered() <= 1);
    assert!(!fr.take_errors().is_empty());
}

fn arb_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        (0u16..0x80).prop_map(|u| Address::with_size(u, None, Some(1)).unwrap()),
        (0u16..0x80, 0u16..0x80).prop_map(|(u, l)| Address::with_size(u, Some(l), Some(2)).unwrap()),
        (0u16..0x4000, 0u16..0x4000).prop_map(|(u, l)| Address::with_size(u, Some(l), Some(4)).unwrap()),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let kinds = prop_oneof![
        Just(FrameKind::I),
        Just(FrameKind::RR),
        Just(FrameKind::RNR),
        Just(FrameKind::SNRM),
        Just(FrameKind::DISC),
        Just(FrameKind::UA),
        Just(FrameKind::DM),
        Just(FrameKind::FRMR),
        Just(FrameKind::UI),
    ];
    (
        kinds,
        arb_address(),
        arb_address(),
        0u8..8,
        0u8..8,
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, dest, src, ns, nr, pf, seg, info)| {
            let mut f = Frame::new(kind, dest, src, pf);
            f.segmented = seg;
            f.control.send_seq = (kind == FrameKind::I).then_some(ns);
            f.control.recv_seq = matches!(kind, FrameKind::I | FrameKind::RR | FrameKind::RNR).then_some(nr);
            f.info = info;
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(f in arb_frame()) {
        let w = f.encode().unwrap();
        prop_assert_eq!(decode(&w).unwrap(), f.clone());
        let mut fr = Framer::default();
        fr.feed(&w);
        prop_assert_eq!(fr.drain(), vec![f]);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&data);
        let mut fr = Framer::new(128);
        for c in data.chunks(7) {
            fr.feed(c);
            let _ = fr.drain();
        }
        let _ = fr.take_errors();
        let _ = Parameters::decode(&data);
    }

    #[test]
    fn mutated_frames_never_panic_and_stream_recovers(
        f in arb_frame(), g in arb_frame(), at in any::<prop::sample::Index>(), x in 1u8..=255,
    ) {
        let mut w = f.encode().unwrap();
        let i = at.index(w.len());
        w[i] ^= x;
        let _ = decode(&w);
        // A corrupted frame followed by a good one: the good one is always found
        // (possibly after a frame the corruption left valid).
        let gw = g.encode().unwrap();
        let mut fr = Framer::default();
        fr.feed(&w);
        fr.feed(&gw);
        // More stream after it settles a corrupted length that reaches past the end.
        fr.feed(&[0; 2100]);
        let got = fr.drain();
        prop_assert!(got.last() == Some(&g), "{:?}", fr.take_errors());
    }
}

#[test]
fn a_corrupted_length_field_does_not_swallow_the_frames_after_it() {
    // A long I frame whose length field was corrupted upwards, then three good
    // RR frames (as a meter retransmits after a bad frame): the HCS tells at
    // once that the first is bad, and the three RR frames come out.
    let mut i = Frame::new(FrameKind::I, server(1), client(), false);
    i.info = vec![0x55; 100];
    let mut bytes = i.encode().unwrap();
    bytes[1] ^= 0x03; // length + 0x300
    for _ in 0..3 {
        bytes.extend(Frame::new(FrameKind::RR, server(1), client(), true).encode().unwrap());
    }
    let mut framer = Framer::default();
    framer.feed(&bytes);
    let out = framer.drain();
    assert_eq!(out.iter().filter(|f| f.kind() == FrameKind::RR).count(), 3, "{:?}", framer.take_errors());
    assert!(framer.take_errors().iter().any(|m| m.contains("HCS")));
}
