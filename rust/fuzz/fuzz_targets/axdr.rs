//! Arbitrary bytes through the A-XDR decoder; what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = smmc_core::axdr::decode(data) {
        let again = smmc_core::axdr::decode(&value.encode()).expect("re-decode of an encoding");
        assert_eq!(format!("{value:?}"), format!("{again:?}"));
    }
});
