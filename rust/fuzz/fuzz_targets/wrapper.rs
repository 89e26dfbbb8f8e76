//! Arbitrary bytes through the wrapper framer: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::wrapper::WrapperFramer;

fuzz_target!(|data: &[u8]| {
    let mut framer = WrapperFramer::new(4096);
    framer.feed(data);
    while let Ok(Some(_)) = framer.next_frame() {}
});
