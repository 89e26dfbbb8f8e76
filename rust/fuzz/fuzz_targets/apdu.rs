//! Arbitrary bytes through the xDLMS/ACSE APDU decoder: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(apdu) = smmc_core::apdu::decode(data) {
        let _ = apdu.encode();
    }
});
