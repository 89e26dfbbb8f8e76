//! Arbitrary bytes through the HDLC stream framer: never panics, buffer stays bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::hdlc::Framer;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::new(2048);
    for chunk in data.chunks(97) {
        framer.feed(chunk);
        while framer.next_frame().is_some() {}
    }
    let _ = smmc_core::hdlc::decode(data);
});
