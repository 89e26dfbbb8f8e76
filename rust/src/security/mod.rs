//! DLMS security suite 0 (DLMS UA 1000-2 "Green Book", IEC 62056-5-3 security):
//! AES-GCM-128 with 12-byte tags, the security control byte, glo-/ded- and
//! general-glo/ded-ciphering APDUs, HLS-GMAC (mechanism 5) and RFC 3394 key wrap.

pub mod ciphered;
pub mod control;
pub mod gcm;
pub mod hls;
pub mod keywrap;

pub use ciphered::{
    cipher_apdu, ciphered_tag, decipher_apdu, plain_tag, protect, protect_into, unprotect, CipherParams, Deciphered,
    GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING,
};
pub use control::SecurityControl;
pub use gcm::{gcm_decrypt, gcm_encrypt, GcmKey};
pub use hls::{hls_gmac, hls_gmac_verify};
pub use keywrap::{aes_key_unwrap, aes_key_wrap};
