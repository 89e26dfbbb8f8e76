//! Arbitrary bytes as ciphered APDUs: never panics, never authenticates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::security::{decipher_apdu, GcmKey};

fuzz_target!(|data: &[u8]| {
    let ek = GcmKey::new(&[0x11; 16], "ek").expect("a 16-byte key");
    let _ = decipher_apdu(data, Some(&[0x4d; 8]), &ek, &[0x22; 16], 0x30);
});
