//! The framing of ciphered APDUs, without any cryptography: the glo- and ded-
//! service-specific tags (their content is security-control, invocation
//! counter, then ciphertext with its tag) and general-glo/ded-ciphering
//! (0xDB/0xDC: system title first). Deciphering lives in `security`.

use crate::axdr::Reader;
use crate::error::{Error, Layer, Result};

use super::xdr;

pub const TAG_GENERAL_GLO_CIPHERING: u8 = 0xdb;
pub const TAG_GENERAL_DED_CIPHERING: u8 = 0xdc;

/// The service-specific ciphered APDU tags and their kind names.
pub const CIPHERED_TAGS: &[(u8, &str)] = &[
    (0x21, "glo-initiate-request"),
    (0x25, "glo-read-request"),
    (0x26, "glo-write-request"),
    (0x28, "glo-initiate-response"),
    (0x2c, "glo-read-response"),
    (0x2d, "glo-write-response"),
    (0x2e, "glo-confirmed-service-error"),
    (0x36, "glo-unconfirmed-write-request"),
    (0x38, "glo-information-report-request"),
    (0x41, "ded-initiate-request"),
    (0x45, "ded-read-request"),
    (0x46, "ded-write-request"),
    (0x48, "ded-initiate-response"),
    (0x4c, "ded-read-response"),
    (0x4d, "ded-write-response"),
    (0x4e, "ded-confirmed-service-error"),
    (0x56, "ded-unconfirmed-write-request"),
    (0x58, "ded-information-report-request"),
    (0xc8, "glo-get-request"),
    (0xc9, "glo-set-request"),
    (0xca, "glo-event-notification-request"),
    (0xcb, "glo-action-request"),
    (0xcc, "glo-get-response"),
    (0xcd, "glo-set-response"),
    (0xcf, "glo-action-response"),
    (0xd0, "ded-get-request"),
    (0xd1, "ded-set-request"),
    (0xd2, "ded-event-notification-request"),
    (0xd3, "ded-action-request"),
    (0xd4, "ded-get-response"),
    (0xd5, "ded-set-response"),
    (0xd7, "ded-action-response"),
];

/// The kind name of a service-specific ciphered tag.
pub fn ciphered_name(tag: u8) -> Option<&'static str> {
    CIPHERED_TAGS.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n)
}

/// The tag of a service-specific ciphered kind name.
pub fn ciphered_tag(name: &str) -> Option<u8> {
    CIPHERED_TAGS.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
}

/// A glo-/ded- service-specific ciphered APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphered {
    pub tag: u8,
    pub security_control: u8,
    pub invocation_counter: u32,
    /// Ciphertext (or authenticated plaintext) followed by the authentication tag, if any.
    pub ciphertext: Vec<u8>,
}

/// general-glo-ciphering / general-ded-ciphering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralCiphering {
    pub dedicated: bool,
    pub system_title: Vec<u8>,
    pub security_control: u8,
    pub invocation_counter: u32,
    pub ciphertext: Vec<u8>,
}

/// The ciphered content OCTET STRING: SC || IC || rest.
fn content(r: &mut Reader<'_>) -> Result<(u8, u32, Vec<u8>)> {
    let at = r.pos();
    let n = r.bounded_length("ciphered content length", 1)?;
    if n < 5 {
        return Err(Error::invalid(
            Layer::Apdu,
            "ciphered content length",
            at,
            n,
            "at least 5 (security control and invocation counter)",
        ));
    }
    let sc = r.u8("security-control")?;
    let ic = r.u32("invocation-counter")?;
    Ok((sc, ic, r.take(n - 5, "ciphertext")?.to_vec()))
}

fn put_content(out: &mut Vec<u8>, sc: u8, ic: u32, ct: &[u8]) {
    crate::axdr::write_length(out, ct.len() + 5);
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(ct);
}

impl Ciphered {
    pub fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Self> {
        let (security_control, invocation_counter, ciphertext) = content(r)?;
        Ok(Ciphered { tag, security_control, invocation_counter, ciphertext })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        put_content(out, self.security_control, self.invocation_counter, &self.ciphertext);
    }
}

impl GeneralCiphering {
    pub fn decode(dedicated: bool, r: &mut Reader<'_>) -> Result<Self> {
        let system_title = xdr::octet_string(r, "system-title")?;
        let (security_control, invocation_counter, ciphertext) = content(r)?;
        Ok(GeneralCiphering { dedicated, system_title, security_control, invocation_counter, ciphertext })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.dedicated { TAG_GENERAL_DED_CIPHERING } else { TAG_GENERAL_GLO_CIPHERING });
        xdr::put_octet_string(out, &self.system_title);
        put_content(out, self.security_control, self.invocation_counter, &self.ciphertext);
    }
}
