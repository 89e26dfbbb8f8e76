//! Arbitrary bytes through the bulk profile decoder: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::profile::{decode_table, ClockColumn};

fuzz_target!(|data: &[u8]| {
    let _ = decode_table(data, ClockColumn::Auto, Some(900));
});
