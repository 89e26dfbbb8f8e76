//! Arbitrary bytes fed to a server-role HDLC link: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::hdlc::{Address, Link, LinkConfig, Parameters, Role};

fuzz_target!(|data: &[u8]| {
    let cfg = LinkConfig {
        role: Role::Server,
        client: Address::client(0x10).expect("client address"),
        server: Address::with_size(1, Some(17), Some(2)).expect("server address"),
        params: Parameters::default(),
        response_timeout: 1.0,
        max_retries: 3,
        inactivity_timeout: Some(120.0),
        max_reassembly: smmc_core::hdlc::MAX_REASSEMBLY,
    };
    let mut link = Link::new(cfg);
    let mut now = 0.0;
    for chunk in data.chunks(31) {
        link.receive_data(chunk, now);
        while link.next_event().is_some() {}
        let _ = link.data_to_send();
        now += 0.5;
        link.handle_timeout(now);
    }
});
