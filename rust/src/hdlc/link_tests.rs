//! Tests of the link state machine: a client and a server link wired together
//! through byte strings and a fake clock, with frames dropped on purpose.

use super::*;

fn cfg(role: Role, p: Parameters) -> LinkConfig {
    LinkConfig {
        role,
        client: Address::client(0x10).unwrap(),
        server: Address::with_size(1, Some(0x11), None).unwrap(),
        params: p,
        response_timeout: 1.0,
        max_retries: 3,
        inactivity_timeout: None,
        max_reassembly: MAX_REASSEMBLY,
    }
}

fn params(info: u32, window: u32) -> Parameters {
    Parameters { max_info_tx: info, max_info_rx: info, window_tx: window, window_rx: window }
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut f = Framer::default();
    f.feed(bytes);
    f.drain().into_iter().map(|fr| fr.encode().unwrap()).collect()
}

/// Two links wired together; `drop(from_client, n)` loses the n-th frame of that direction.
struct Wire<'a> {
    c: Link,
    s: Link,
    now: f64,
    sent: [usize; 2],
    drop: Box<dyn FnMut(bool, usize) -> bool + 'a>,
    cev: Vec<Event>,
    sev: Vec<Event>,
}

impl<'a> Wire<'a> {
    fn new(cp: Parameters, sp: Parameters, drop: impl FnMut(bool, usize) -> bool + 'a) -> Self {
        let c = Link::new(cfg(Role::Client, cp));
        let s = Link::new(cfg(Role::Server, sp));
        Wire { c, s, now: 0.0, sent: [0, 0], drop: Box::new(drop), cev: vec![], sev: vec![] }
    }

    fn collect(&mut self) {
        while let Some(e) = self.c.next_event() {
            self.cev.push(e);
        }
        while let Some(e) = self.s.next_event() {
            self.sev.push(e);
        }
    }

    /// Move bytes both ways until quiet; returns false when nothing moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        for from_client in [true, false] {
            let out = if from_client { self.c.data_to_send() } else { self.s.data_to_send() };
            for frame in split(&out) {
                moved = true;
                let i = usize::from(!from_client);
                let n = self.sent[i];
                self.sent[i] += 1;
                if (self.drop)(from_client, n) {
                    continue;
                }
                self.now += 0.01;
                if from_client {
                    self.s.receive_data(&frame, self.now);
                } else {
                    self.c.receive_data(&frame, self.now);
                }
            }
        }
        self.collect();
        moved
    }

    /// Run until quiet, firing timeouts; the server answers each APDU with `answer(apdu)`.
    fn run(&mut self, answer: &dyn Fn(&[u8]) -> Option<Vec<u8>>) {
        for _ in 0..10_000 {
            let handled = self.sev.len();
            if !self.step() {
                match self.c.next_deadline() {
                    Some(d) => {
                        self.now = d;
                        self.c.handle_timeout(d);
                        self.collect();
                    }
                    None => return,
                }
            }
            let new: Vec<Vec<u8>> = self.sev[handled..]
                .iter()
                .filter_map(|e| if let Event::Apdu(a) = e { answer(a) } else { None })
                .collect();
            for a in new {
                self.s.send_apdu(&a, self.now).unwrap();
            }
        }
        panic!("link did not settle");
    }

    fn connect(&mut self) {
        self.c.connect(self.now).unwrap();
        self.run(&|_| None);
        assert_eq!(self.c.state(), LinkState::Connected, "{:?}", self.cev);
        assert_eq!(self.s.state(), LinkState::Connected);
    }
}

fn apdus(ev: &[Event]) -> Vec<Vec<u8>> {
    ev.iter().filter_map(|e| if let Event::Apdu(a) = e { Some(a.clone()) } else { None }).collect()
}

fn big(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn negotiation_takes_the_minimum_both_ways() {
    let cp = Parameters { max_info_tx: 256, max_info_rx: 512, window_tx: 7, window_rx: 3 };
    let sp = Parameters { max_info_tx: 300, max_info_rx: 128, window_tx: 2, window_rx: 7 };
    let mut w = Wire::new(cp, sp, |_, _| false);
    w.connect();
    let c = Parameters { max_info_tx: 128, max_info_rx: 300, window_tx: 7, window_rx: 2 };
    let s = Parameters { max_info_tx: 300, max_info_rx: 128, window_tx: 2, window_rx: 7 };
    assert_eq!(w.c.parameters(), c);
    assert_eq!(w.s.parameters(), s);
    assert_eq!(w.cev, vec![Event::Connected(c)]);
    assert_eq!(w.sev, vec![Event::Connected(s)]);
}

fn exchange(window: u32, info: u32, drop: impl FnMut(bool, usize) -> bool) -> (Vec<Event>, Vec<Event>) {
    let mut w = Wire::new(params(info, window), params(info, window), drop);
    w.connect();
    let request = big(5 * 1024, 1);
    w.c.send_apdu(&request, w.now).unwrap();
    w.run(&|a| Some(a.iter().rev().copied().collect()));
    assert_eq!(apdus(&w.sev), vec![request.clone()], "server events {:?}", w.sev);
    let reversed: Vec<u8> = request.iter().rev().copied().collect();
    assert_eq!(apdus(&w.cev), vec![reversed]);
    w.c.disconnect(w.now).unwrap();
    w.run(&|_| None);
    assert_eq!(w.c.state(), LinkState::Disconnected);
    assert_eq!(w.s.state(), LinkState::Disconnected);
    assert_eq!(w.cev.last(), Some(&Event::Disconnected));
    assert_eq!(w.sev.last(), Some(&Event::Disconnected));
    (w.cev, w.sev)
}

#[test]
fn five_kib_apdu_both_ways_window_1() {
    let (cev, _) = exchange(1, 64, |_, _| false);
    assert!(!cev.iter().any(|e| matches!(e, Event::Retransmit(_))));
}

#[test]
fn five_kib_apdu_both_ways_window_7() {
    exchange(7, 48, |_, _| false);
}

#[test]
fn window_7_sends_seven_frames_per_poll() {
    let mut w = Wire::new(params(32, 7), params(32, 7), |_, _| false);
    w.connect();
    w.c.send_apdu(&big(1000, 2), w.now).unwrap();
    let frames: Vec<Frame> = {
        let mut f = Framer::default();
        f.feed(&w.c.data_to_send());
        f.drain()
    };
    assert_eq!(frames.len(), 7);
    assert!(frames.iter().all(|f| f.segmented && f.kind() == FrameKind::I));
    assert_eq!(frames.iter().filter(|f| f.control.poll_final).count(), 1);
    assert!(frames[6].control.poll_final);
    assert_eq!(frames.iter().map(|f| f.control.send_seq.unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(&frames[0].info[..3], &LLC_REQUEST);
}

#[test]
fn lost_frames_are_retransmitted() {
    for window in [1, 3, 7] {
        // Lose client frames 3 and 9 and server frames 2 and 5.
        let (cev, _) = exchange(window, 64, |c, n| if c { n == 3 || n == 9 } else { n == 2 || n == 5 });
        assert!(cev.iter().any(|e| matches!(e, Event::Retransmit(1))), "window {window}: {cev:?}");
    }
}

#[test]
fn duplicate_i_frame_is_not_delivered_twice() {
    // Server frame 1 (the answer to the first I frame) is lost: the client
    // repeats its I frame, which the server must not deliver again.
    let mut w = Wire::new(params(128, 1), params(128, 1), |c, n| !c && n == 1);
    w.connect();
    w.c.send_apdu(b"\xC0\x01\xC1\x00\x08", w.now).unwrap();
    w.run(&|_| Some(b"\xC4\x01\xC1\x00\x09\x0C".to_vec()));
    assert_eq!(apdus(&w.sev), vec![b"\xC0\x01\xC1\x00\x08".to_vec()]);
    assert_eq!(apdus(&w.cev), vec![b"\xC4\x01\xC1\x00\x09\x0C".to_vec()]);
    assert!(w.cev.contains(&Event::Retransmit(1)));
}

#[test]
fn silent_peer_means_link_lost_after_retries() {
    let mut c = Link::new(cfg(Role::Client, Parameters::default()));
    c.connect(0.0).unwrap();
    assert!(!c.data_to_send().is_empty());
    let mut events = vec![];
    let mut now = 0.0;
    while let Some(d) = c.next_deadline() {
        assert!(d > now);
        now = d;
        c.handle_timeout(now);
        let resent = c.data_to_send();
        while let Some(e) = c.next_event() {
            events.push(e);
        }
        if c.state() == LinkState::Connecting {
            assert_eq!(decode(&resent).unwrap().kind(), FrameKind::SNRM);
        }
    }
    assert_eq!(events[..3], [Event::Retransmit(1), Event::Retransmit(2), Event::Retransmit(3)]);
    assert!(matches!(&events[3], Event::LinkLost(_)));
    assert_eq!(c.state(), LinkState::Disconnected);
    assert_eq!(now, 4.0);
}

#[test]
fn server_drops_frames_for_another_address() {
    let mut s = Link::new(cfg(Role::Server, Parameters::default()));
    let other = Address::with_size(1, Some(0x12), None).unwrap();
    let snrm = Frame::new(FrameKind::SNRM, other, Address::client(0x10).unwrap(), true).encode().unwrap();
    s.receive_data(&snrm, 0.0);
    assert!(matches!(s.next_event(), Some(Event::FrameError(m)) if m.contains("not this link")));
    assert!(s.data_to_send().is_empty());
    assert_eq!(s.state(), LinkState::Disconnected);
}

#[test]
fn server_answers_dm_when_disconnected_and_ua_to_disc() {
    let mut s = Link::new(cfg(Role::Server, Parameters::default()));
    let me = Address::with_size(1, Some(0x11), None).unwrap();
    let cl = Address::client(0x10).unwrap();
    s.receive_data(&Frame::new(FrameKind::DISC, me, cl, true).encode().unwrap(), 0.0);
    assert_eq!(decode(&s.data_to_send()).unwrap().kind(), FrameKind::DM);
    s.receive_data(&Frame::new(FrameKind::RR, me, cl, true).encode().unwrap(), 0.0);
    assert_eq!(decode(&s.data_to_send()).unwrap().kind(), FrameKind::DM);
    s.receive_data(&Frame::new(FrameKind::SNRM, me, cl, true).encode().unwrap(), 0.0);
    let ua = decode(&s.data_to_send()).unwrap();
    assert_eq!((ua.kind(), ua.dest, ua.src.lower), (FrameKind::UA, cl, Some(0x11)));
    assert_eq!(Parameters::decode(&ua.info).unwrap(), Parameters::default());
    s.receive_data(&Frame::new(FrameKind::DISC, me, cl, true).encode().unwrap(), 0.0);
    assert_eq!(decode(&s.data_to_send()).unwrap().kind(), FrameKind::UA);
    assert_eq!(s.state(), LinkState::Disconnected);
}

#[test]
fn client_refused_by_dm_and_frmr() {
    let me = Address::client(0x10).unwrap();
    let srv = Address::with_size(1, Some(0x11), None).unwrap();
    for kind in [FrameKind::DM, FrameKind::FRMR] {
        let mut c = Link::new(cfg(Role::Client, Parameters::default()));
        c.connect(0.0).unwrap();
        c.receive_data(&Frame::new(kind, me, srv, true).encode().unwrap(), 0.1);
        assert!(matches!(c.next_event(), Some(Event::Refused(_))));
        assert_eq!(c.state(), LinkState::Disconnected);
        assert!(c.next_deadline().is_none());
    }
}

#[test]
fn ui_frames_and_inactivity() {
    let mut c = Link::new(LinkConfig { inactivity_timeout: Some(30.0), ..cfg(Role::Client, Parameters::default()) });
    let me = Address::client(0x10).unwrap();
    let srv = Address::with_size(1, Some(0x11), None).unwrap();
    let mut ui = Frame::new(FrameKind::UI, me, srv, false);
    ui.info = vec![0xE6, 0xE7, 0x00, 0x0F, 0x01];
    c.receive_data(&ui.encode().unwrap(), 0.0);
    assert_eq!(c.next_event(), Some(Event::Ui(vec![0x0F, 0x01])));
    c.connect(0.0).unwrap();
    c.data_to_send();
    c.receive_data(&Frame::new(FrameKind::UA, me, srv, true).encode().unwrap(), 1.0);
    assert!(matches!(c.next_event(), Some(Event::Connected(p)) if p == Parameters::default()));
    assert_eq!(c.next_deadline(), Some(31.0));
    c.handle_timeout(30.0);
    assert_eq!(c.state(), LinkState::Connected);
    c.handle_timeout(31.0);
    assert!(matches!(c.next_event(), Some(Event::LinkLost(m)) if m.contains("inactivity")));
}

#[test]
fn send_apdu_needs_a_connection() {
    let mut c = Link::new(cfg(Role::Client, Parameters::default()));
    let e = c.send_apdu(b"x", 0.0).unwrap_err();
    assert_eq!(e.field, "link state");
    let mut s = Link::new(cfg(Role::Server, Parameters::default()));
    assert!(s.connect(0.0).is_err());
}

#[test]
fn server_rejects_bad_snrm_parameters_with_frmr_and_other_clients_while_connected() {
    let mut s = Link::new(cfg(Role::Server, Parameters::default()));
    let me = Address::with_size(1, Some(0x11), None).unwrap();
    let cl = Address::client(0x10).unwrap();
    let mut snrm = Frame::new(FrameKind::SNRM, me, cl, true);
    snrm.info = vec![0x81, 0x80, 0x03, 0x05, 0x03, 0x00];
    s.receive_data(&snrm.encode().unwrap(), 0.0);
    assert_eq!(decode(&s.data_to_send()).unwrap().kind(), FrameKind::FRMR);
    assert!(matches!(s.next_event(), Some(Event::FrameError(m)) if m.contains("parameter")));
    assert_eq!(s.state(), LinkState::Disconnected);
    snrm.info.clear();
    s.receive_data(&snrm.encode().unwrap(), 0.0);
    assert!(matches!(s.next_event(), Some(Event::Connected(_))));
    s.data_to_send();
    let intruder = Address::client(0x01).unwrap();
    s.receive_data(&Frame::new(FrameKind::RR, me, intruder, true).encode().unwrap(), 0.1);
    assert!(matches!(s.next_event(), Some(Event::FrameError(m)) if m.contains("another client")));
    assert!(s.data_to_send().is_empty());
    // Garbage on the line is reported, and the link carries on.
    s.receive_data(&[0x00, 0x55], 0.2);
    s.receive_data(&Frame::new(FrameKind::RR, me, cl, true).encode().unwrap(), 0.3);
    assert!(matches!(s.next_event(), Some(Event::FrameError(m)) if m.contains("garbage")));
    let rr = decode(&s.data_to_send()).unwrap();
    assert_eq!((rr.kind(), rr.control.poll_final, rr.control.recv_seq), (FrameKind::RR, true, Some(0)));
}

#[test]
fn late_server_answer_goes_through_rnr_and_a_later_poll() {
    let mut w = Wire::new(params(128, 1), params(128, 1), |_, _| false);
    w.connect();
    w.c.send_apdu(b"\xC0\x01", w.now).unwrap();
    // The server application does not answer before the client's timer fires.
    w.step();
    assert_eq!(apdus(&w.sev).len(), 1);
    let d = w.c.next_deadline().unwrap();
    w.c.handle_timeout(d);
    let repeat = w.c.data_to_send();
    assert_eq!(decode(&repeat).unwrap().control.send_seq, Some(0));
    w.s.receive_data(&repeat, w.now);
    let rnr = w.s.data_to_send();
    let f = decode(&rnr).unwrap();
    assert_eq!((f.kind(), f.control.poll_final, f.control.recv_seq), (FrameKind::RNR, true, Some(1)));
    w.c.receive_data(&rnr, w.now);
    assert!(w.c.data_to_send().is_empty(), "the client waits before polling a busy server");
    w.collect();
    assert_eq!(apdus(&w.sev).len(), 1, "a repeated I frame must not be delivered again");
    assert_eq!(w.c.state(), LinkState::Connected);
    w.s.send_apdu(b"\xC4\x01", w.now).unwrap();
    assert!(w.s.data_to_send().is_empty(), "not polled: the answer waits for the client's poll");
    w.run(&|_| None);
    assert_eq!(apdus(&w.cev), vec![b"\xC4\x01".to_vec()]);
    assert_eq!(apdus(&w.sev).len(), 1);
}

#[test]
fn over_long_segmented_apdu_is_reported_once_and_the_link_goes_on() {
    let mut s = Link::new(cfg(Role::Server, params(2000, 7)));
    let me = Address::with_size(1, Some(0x11), None).unwrap();
    let cl = Address::client(0x10).unwrap();
    let mut snrm = Frame::new(FrameKind::SNRM, me, cl, true);
    snrm.info = params(2000, 7).encode();
    s.receive_data(&snrm.encode().unwrap(), 0.0);
    s.data_to_send();
    assert!(matches!(s.next_event(), Some(Event::Connected(p)) if p == params(2000, 7)));
    let n = MAX_REASSEMBLY / 2000 + 2;
    let mut errors = 0;
    for i in 0..n {
        let mut f = Frame::new(FrameKind::I, me, cl, true);
        f.control.send_seq = Some((i % 8) as u8);
        f.control.recv_seq = Some(0);
        f.segmented = i + 1 < n;
        f.info = vec![0xAB; 2000];
        s.receive_data(&f.encode().unwrap(), 0.0);
        let rr = decode(&s.data_to_send()).unwrap();
        assert_eq!((rr.kind(), rr.control.recv_seq), (FrameKind::RR, Some(((i + 1) % 8) as u8)));
        while let Some(e) = s.next_event() {
            let Event::ApduTooLong { received, limit } = e else { panic!("{e:?}") };
            assert_eq!(limit, MAX_REASSEMBLY);
            assert!(received > MAX_REASSEMBLY && received <= MAX_REASSEMBLY + 2000, "{received}");
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    let mut f = Frame::new(FrameKind::I, me, cl, true);
    f.control.send_seq = Some((n % 8) as u8);
    f.control.recv_seq = Some(0);
    f.info = vec![0xE6, 0xE6, 0x00, 0xC0];
    s.receive_data(&f.encode().unwrap(), 0.0);
    assert_eq!(s.next_event(), Some(Event::Apdu(vec![0xC0])));
}

mod random_loss {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Under random loss each APDU arrives exactly once and intact, or the link is reported lost.
        #[test]
        fn delivered_once_or_link_lost(window in 1u32..=7, info in 16u32..200, seed in any::<u64>(), len in 0usize..3000) {
            let mut x = seed | 1;
            let mut w = Wire::new(params(info, window), params(info, window), move |_, _| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 10 == 0
            });
            w.c.connect(w.now).unwrap();
            w.run(&|_| None);
            prop_assume!(w.c.state() == LinkState::Connected);
            let request = big(len, 7);
            w.c.send_apdu(&request, w.now).unwrap();
            w.run(&|a| Some(a.to_vec()));
            let lost = w.cev.iter().any(|e| matches!(e, Event::LinkLost(_)));
            let got_s = apdus(&w.sev);
            let got_c = apdus(&w.cev);
            prop_assert!(got_s.len() <= 1 && got_c.len() <= 1);
            prop_assert!(got_s.iter().all(|a| *a == request));
            prop_assert!(got_c.iter().all(|a| *a == request));
            if !lost {
                prop_assert_eq!(got_c.len(), 1, "{:?}", w.cev);
            }
        }

        /// Random and mutated bytes never panic either role, whatever the state.
        #[test]
        fn random_input_never_panics(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12),
            flip in any::<prop::sample::Index>(),
        ) {
            let me = Address::client(0x10).unwrap();
            let srv = Address::with_size(1, Some(0x11), None).unwrap();
            let mut rr = Frame::new(FrameKind::RR, srv, me, true).encode().unwrap();
            let i = flip.index(rr.len());
            rr[i] ^= 0x5A;
            for role in [Role::Client, Role::Server] {
                let mut l = Link::new(cfg(role, Parameters::default()));
                let _ = l.connect(0.0);
                let snrm = Frame::new(FrameKind::SNRM, srv, me, true).encode().unwrap();
                l.receive_data(&snrm, 0.1);
                for (n, c) in chunks.iter().enumerate() {
                    let now = 0.2 + n as f64;
                    l.receive_data(c, now);
                    l.receive_data(&rr, now);
                    let _ = l.send_apdu(c, now);
                    l.handle_timeout(now + 5.0);
                    let _ = l.data_to_send();
                    while l.next_event().is_some() {}
                }
            }
        }
    }
}

#[test]
fn segmented_ui_frames_are_reassembled_into_one_event() {
    // As an Iskra AM550 pushes a long data-notification: UI frames with the
    // S bit set, then a last one without it.
    let mut c = Link::new(cfg(Role::Client, Parameters::default()));
    let me = Address::client(0x10).unwrap();
    let srv = Address::with_size(1, Some(0x11), None).unwrap();
    let parts: [&[u8]; 3] = [&[0xE6, 0xE7, 0x00, 0x0F, 0x00], &[0x04, 0x02], &[0x2C, 0x00]];
    for (i, part) in parts.iter().enumerate() {
        let mut ui = Frame::new(FrameKind::UI, me, srv, false);
        ui.segmented = i + 1 < parts.len();
        ui.info = part.to_vec();
        c.receive_data(&ui.encode().unwrap(), 0.0);
        if i + 1 < parts.len() {
            assert_eq!(c.next_event(), None, "no event before the last segment");
        }
    }
    assert_eq!(c.next_event(), Some(Event::Ui(vec![0x0F, 0x00, 0x04, 0x02, 0x2C, 0x00])));
    assert_eq!(c.next_event(), None);
}

/// A connected client link and the server's address pair, for feeding it I frames by hand.
fn connected_client(limit: usize) -> (Link, Address, Address) {
    let mut c = Link::new(LinkConfig { max_reassembly: limit, ..cfg(Role::Client, params(128, 1)) });
    let me = Address::client(0x10).unwrap();
    let srv = Address::with_size(1, Some(0x11), None).unwrap();
    c.connect(0.0).unwrap();
    c.data_to_send();
    let mut ua = Frame::new(FrameKind::UA, me, srv, true);
    ua.info = params(128, 1).encode();
    c.receive_data(&ua.encode().unwrap(), 0.0);
    assert!(matches!(c.next_event(), Some(Event::Connected(_))));
    (c, me, srv)
}

/// Feed `apdu` (LLC response header added) to `c` in I frames of 128 bytes; the events seen.
fn feed_segmented(c: &mut Link, me: Address, srv: Address, apdu: &[u8]) -> Vec<Event> {
    let mut info = vec![0xE6, 0xE7, 0x00];
    info.extend_from_slice(apdu);
    let chunks: Vec<&[u8]> = info.chunks(128).collect();
    let mut events = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut f = Frame::new(FrameKind::I, me, srv, true);
        f.control.send_seq = Some((i % 8) as u8);
        f.control.recv_seq = Some(0);
        f.segmented = i + 1 < chunks.len();
        f.info = chunk.to_vec();
        c.receive_data(&f.encode().unwrap(), 1.0);
        c.data_to_send();
        while let Some(e) = c.next_event() {
            events.push(e);
        }
    }
    events
}

#[test]
fn reassembly_limit_is_per_link_and_exact() {
    let (mut c, me, srv) = connected_client(300);
    assert_eq!(c.max_reassembly(), 300);
    let fits = big(300, 1);
    assert_eq!(feed_segmented(&mut c, me, srv, &fits), vec![Event::Apdu(fits.clone())]);
    // One byte more: refused once, with what was seen and the limit; the link goes on.
    let (mut c, me, srv) = connected_client(300);
    let events = feed_segmented(&mut c, me, srv, &big(301, 2));
    assert_eq!(events, vec![Event::ApduTooLong { received: 301, limit: 300 }]);
    assert_eq!(c.state(), LinkState::Connected);
    let mut f = Frame::new(FrameKind::I, me, srv, true);
    f.control.send_seq = Some(3);
    f.control.recv_seq = Some(0);
    f.info = vec![0xE6, 0xE7, 0x00, 0xC4];
    c.receive_data(&f.encode().unwrap(), 2.0);
    assert_eq!(c.next_event(), Some(Event::Apdu(vec![0xC4])), "the next APDU is delivered");
}

#[test]
fn reassembly_limit_can_be_lowered_and_is_clamped_to_the_hard_maximum() {
    let (mut c, me, srv) = connected_client(MAX_REASSEMBLY);
    c.set_max_reassembly(200);
    let events = feed_segmented(&mut c, me, srv, &big(1000, 3));
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], Event::ApduTooLong { received, limit: 200 } if received > 200 && received <= 256));
    c.set_max_reassembly(usize::MAX);
    assert_eq!(c.max_reassembly(), MAX_REASSEMBLY);
    c.set_max_reassembly(0);
    assert_eq!(c.max_reassembly(), 1);
    let huge = Link::new(LinkConfig { max_reassembly: usize::MAX, ..cfg(Role::Server, params(128, 1)) });
    assert_eq!(huge.max_reassembly(), MAX_REASSEMBLY);
}

#[test]
fn segmented_ui_data_respects_the_reassembly_limit() {
    let (mut c, me, srv) = connected_client(4);
    let parts: [&[u8]; 3] = [&[0xE6, 0xE7, 0x00, 0x0F, 0x00], &[0x04, 0x02, 0x2C], &[0x00]];
    for (i, part) in parts.iter().enumerate() {
        let mut ui = Frame::new(FrameKind::UI, me, srv, false);
        ui.segmented = i + 1 < parts.len();
        ui.info = part.to_vec();
        c.receive_data(&ui.encode().unwrap(), 1.0);
    }
    let e = c.next_event();
    assert!(matches!(e, Some(Event::FrameError(ref m)) if m.contains("longer than 4 bytes")), "{e:?}");
    assert_eq!(c.next_event(), None, "the rest of the over-long data is not delivered as a UI");
    let mut ui = Frame::new(FrameKind::UI, me, srv, false);
    ui.info = vec![0xE6, 0xE7, 0x00, 0x0F];
    c.receive_data(&ui.encode().unwrap(), 1.0);
    assert_eq!(c.next_event(), Some(Event::Ui(vec![0x0F])), "the next UI data is");
}
