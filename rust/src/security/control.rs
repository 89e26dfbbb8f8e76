//! The security control byte (SC) of a ciphered APDU, Green Book 9.2.7.2.4 /
//! IEC 62056-5-3 clause 5.x: bits 0-3 security suite id, bit 4 authentication,
//! bit 5 encryption, bit 6 key set (0 unicast, 1 broadcast key), bit 7 compression.

use crate::error::{Error, ErrorKind, Layer, Result};

/// A parsed security control byte of suite 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityControl {
    pub authenticated: bool,
    pub encrypted: bool,
    /// Key set bit: `true` = the broadcast (global) key, `false` = the unicast key.
    pub broadcast_key: bool,
}

impl SecurityControl {
    pub const AUTHENTICATION_ONLY: u8 = 0x10;
    pub const ENCRYPTION_ONLY: u8 = 0x20;
    pub const AUTHENTICATED_ENCRYPTION: u8 = 0x30;
    const AUTH_BIT: u8 = 0x10;
    const ENC_BIT: u8 = 0x20;
    const KEY_SET_BIT: u8 = 0x40;
    const COMPRESSION_BIT: u8 = 0x80;

    /// Parse `byte`, found at `offset`. Only suite 0 without compression is
    /// supported, and at least one of authentication/encryption must be set.
    pub fn parse(byte: u8, offset: usize) -> Result<Self> {
        let suite = byte & 0x0f;
        if suite != 0 {
            return Err(Error::new(
                Layer::Security,
                "security control: security suite",
                offset,
                ErrorKind::Unsupported("only security suite 0 (AES-GCM-128) is implemented"),
            ));
        }
        if byte & Self::COMPRESSION_BIT != 0 {
            return Err(Error::new(
                Layer::Security,
                "security control: compression",
                offset,
                ErrorKind::Unsupported("compression (bit 7) is not implemented"),
            ));
        }
        let sc = SecurityControl {
            authenticated: byte & Self::AUTH_BIT != 0,
            encrypted: byte & Self::ENC_BIT != 0,
            broadcast_key: byte & Self::KEY_SET_BIT != 0,
        };
        if !sc.authenticated && !sc.encrypted {
            return Err(Error::invalid(
                Layer::Security,
                "security control",
                offset,
                format!("0x{byte:02x}"),
                "authentication (0x10) and/or encryption (0x20) set",
            ));
        }
        Ok(sc)
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        (if self.authenticated { Self::AUTH_BIT } else { 0 })
            | (if self.encrypted { Self::ENC_BIT } else { 0 })
            | (if self.broadcast_key { Self::KEY_SET_BIT } else { 0 })
    }

    /// Length of the authentication tag this SC implies (0 or 12).
    pub fn tag_len(self) -> usize {
        if self.authenticated {
            super::gcm::DLMS_TAG_LEN
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_or_is_rejected() {
        for b in 0..=255u8 {
            match SecurityControl::parse(b, 3) {
                Ok(sc) => assert_eq!(sc.byte(), b),
                Err(e) => {
                    assert_eq!(e.offset, 3);
                    assert!(b & 0x0f != 0 || b & 0x80 != 0 || b & 0x30 == 0, "0x{b:02x}");
                }
            }
        }
        let sc = SecurityControl::parse(0x30, 0).unwrap();
        assert!(sc.authenticated && sc.encrypted && !sc.broadcast_key);
        assert!(SecurityControl::parse(0x50, 0).unwrap().broadcast_key);
        assert_eq!(SecurityControl::parse(0x31, 0).unwrap_err().field, "security control: security suite");
        assert_eq!(SecurityControl::parse(0xb0, 0).unwrap_err().field, "security control: compression");
        assert_eq!(SecurityControl::parse(0x00, 0).unwrap_err().field, "security control");
    }
}
