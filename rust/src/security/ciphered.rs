//! Ciphered xDLMS APDUs of security suite 0 (Green Book 9.2.7.2.4, IEC 62056-5-3
//! 9.2.7.2): the ciphered content SC || IC || information || tag, the glo-/ded-
//! APDU tags that carry it, and general-glo-/general-ded-ciphering, which also
//! carry the sender's system title.
//!
//! AAD and what is encrypted, by SC:
//! * 0x10 authentication only: AAD = SC || AK || plaintext, nothing encrypted, 12-byte tag;
//! * 0x20 encryption only: GCM ciphertext, no AAD and no tag;
//! * 0x30 authenticated encryption: AAD = SC || AK, 12-byte tag.

use subtle::ConstantTimeEq;

use super::control::SecurityControl;
use super::gcm::{key16, GcmKey, DLMS_TAG_LEN};
use super::hls::iv;
use crate::axdr::{write_length, Reader};
use crate::error::{Error, ErrorKind, Layer, Result};

/// general-glo-ciphering APDU tag (219).
pub const GENERAL_GLO_CIPHERING: u8 = crate::apdu::ciphered::TAG_GENERAL_GLO_CIPHERING;
/// general-ded-ciphering APDU tag (220).
pub const GENERAL_DED_CIPHERING: u8 = crate::apdu::ciphered::TAG_GENERAL_DED_CIPHERING;

/// The glo- (or, with `dedicated`, ded-) ciphered tag of a plain APDU tag
/// (the table is `apdu::ciphered::CIPHERED_FORMS`).
pub fn ciphered_tag(plain: u8, dedicated: bool) -> Option<u8> {
    crate::apdu::ciphered::ciphered_form(plain, dedicated)
}

/// The plain APDU tag inside a glo-/ded- ciphered tag, and whether it is ded-.
pub fn plain_tag(ciphered: u8) -> Option<(u8, bool)> {
    crate::apdu::ciphered::plain_of(ciphered)
}

/// What suite 0 needs to protect one APDU.
#[derive(Debug, Clone, Copy)]
pub struct CipherParams<'a> {
    pub security_control: u8,
    /// The sender's system title (8 bytes).
    pub system_title: &'a [u8],
    pub invocation_counter: u32,
    pub ek: &'a GcmKey,
    pub ak: &'a [u8],
}

/// A deciphered APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciphered {
    pub apdu: Vec<u8>,
    pub security_control: u8,
    pub invocation_counter: u32,
    pub system_title: [u8; 8],
}

fn aad(sc: u8, ak: &[u8; 16], information: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(17 + information.len());
    aad.push(sc);
    aad.extend_from_slice(ak);
    aad.extend_from_slice(information);
    aad
}

/// Append SC || IC || (ciphertext or plaintext) || tag to `out`.
pub fn protect_into(p: &CipherParams<'_>, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let sc = SecurityControl::parse(p.security_control, 0)?;
    let iv = iv(p.system_title, p.invocation_counter)?;
    let ak = if sc.authenticated { Some(key16(p.ak, "AK")?) } else { None };
    out.reserve(5 + plaintext.len() + sc.tag_len());
    out.push(p.security_control);
    out.extend_from_slice(&p.invocation_counter.to_be_bytes());
    match ak {
        Some(ak) if sc.encrypted => {
            p.ek.encrypt_into(&iv, &aad(p.security_control, ak, &[]), plaintext, DLMS_TAG_LEN, out)
        }
        Some(ak) => {
            let tag = p.ek.gmac(&iv, &aad(p.security_control, ak, plaintext), DLMS_TAG_LEN)?;
            out.extend_from_slice(plaintext);
            out.extend_from_slice(&tag);
            Ok(())
        }
        None => {
            let start = out.len();
            out.extend_from_slice(plaintext);
            p.ek.ctr_apply(&iv, out.get_mut(start..).unwrap_or_default())
        }
    }
}

/// SC || IC || (ciphertext or plaintext) || tag.
pub fn protect(p: &CipherParams<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    protect_into(p, plaintext, &mut out)?;
    Ok(out)
}

/// The inverse of [`protect`]: `(security_control, invocation_counter, plaintext)`.
/// `system_title` is the sender's. `required_protection` (0x10 and/or 0x20)
/// names the protection the SC must at least request: without it an attacker
/// could turn SC 0x30 into 0x20 (encryption only, no tag) undetected.
pub fn unprotect(
    system_title: &[u8],
    ek: &GcmKey,
    ak: &[u8],
    data: &[u8],
    required_protection: u8,
) -> Result<(u8, u32, Vec<u8>)> {
    let mut r = Reader::new(data, Layer::Security);
    let sc_byte = r.u8("security control")?;
    let sc = SecurityControl::parse(sc_byte, 0)?;
    let required = required_protection & 0x30;
    if required_protection & !0x30 != 0 || sc_byte & required != required {
        return Err(Error::invalid(
            Layer::Security,
            "security control",
            0,
            format!("0x{sc_byte:02x} (required protection 0x{required_protection:02x})"),
            "every protection bit (0x10 authentication, 0x20 encryption) that the policy requires",
        ));
    }
    let ic = r.u32("invocation counter")?;
    let body = r.rest();
    let iv = iv(system_title, ic)?;
    let ak = if sc.authenticated { Some(key16(ak, "AK")?) } else { None };
    let plain = match ak {
        Some(ak) if sc.encrypted => {
            ek.decrypt(&iv, &aad(sc_byte, ak, &[]), body, DLMS_TAG_LEN).map_err(|e| e.shifted(5))?
        }
        Some(ak) => {
            let n = body
                .len()
                .checked_sub(DLMS_TAG_LEN)
                .ok_or_else(|| Error::truncated(Layer::Security, "authentication tag", 5, DLMS_TAG_LEN, body.len()))?;
            let (info, tag) = body.split_at(n);
            let want = ek.gmac(&iv, &aad(sc_byte, ak, info), DLMS_TAG_LEN)?;
            if !bool::from(want.ct_eq(tag)) {
                return Err(Error::new(Layer::Security, "authentication tag", 5 + n, ErrorKind::AuthenticationFailed));
            }
            info.to_vec()
        }
        None => {
            let mut buf = body.to_vec();
            ek.ctr_apply(&iv, &mut buf)?;
            buf
        }
    };
    Ok((sc_byte, ic, plain))
}

/// Wrap a plain xDLMS APDU: in its glo- (or `dedicated` ded-) form, or with
/// `general` in general-glo-ciphering (general-ded-ciphering if `dedicated`).
pub fn cipher_apdu(apdu: &[u8], p: &CipherParams<'_>, dedicated: bool, general: bool) -> Result<Vec<u8>> {
    let plain = *apdu.first().ok_or_else(|| Error::truncated(Layer::Security, "APDU tag", 0, 1, 0))?;
    let content = protect(p, apdu)?;
    let mut out = Vec::with_capacity(content.len() + 16);
    if general {
        out.push(if dedicated { GENERAL_DED_CIPHERING } else { GENERAL_GLO_CIPHERING });
        write_length(&mut out, p.system_title.len());
        out.extend_from_slice(p.system_title);
    } else {
        let tag = ciphered_tag(plain, dedicated).ok_or_else(|| {
            Error::invalid(
                Layer::Security,
                "APDU tag",
                0,
                format!("0x{plain:02x}"),
                "an xDLMS APDU that has a glo-/ded- ciphered form (or use general ciphering)",
            )
        })?;
        out.push(tag);
    }
    write_length(&mut out, content.len());
    out.extend_from_slice(&content);
    Ok(out)
}

/// Unwrap a glo-/ded-/general-glo-/general-ded-ciphered APDU. `system_title`
/// is the sender's, needed for the glo-/ded- forms (ignored when the APDU carries one).
/// `required_protection` as for [`unprotect`].
pub fn decipher_apdu(
    data: &[u8],
    system_title: Option<&[u8]>,
    ek: &GcmKey,
    ak: &[u8],
    required_protection: u8,
) -> Result<Deciphered> {
    let mut r = Reader::new(data, Layer::Security);
    let tag = r.u8("APDU tag")?;
    let (sender, expect_plain): ([u8; 8], Option<u8>) = if tag == GENERAL_GLO_CIPHERING || tag == GENERAL_DED_CIPHERING
    {
        let at = r.pos();
        let n = r.length("system title length")?;
        if n != 8 {
            return Err(Error::invalid(Layer::Security, "system title length", at, n, "8"));
        }
        (r.array::<8>("system title")?, None)
    } else {
        let (plain, _) =
            plain_tag(tag).ok_or_else(|| Error::new(Layer::Security, "APDU tag", 0, ErrorKind::UnknownTag(tag)))?;
        let st = system_title.ok_or_else(|| {
            Error::invalid(
                Layer::Security,
                "system title",
                0,
                "none",
                "the sender's system title (glo-/ded- APDUs do not carry it)",
            )
        })?;
        let st = <[u8; 8]>::try_from(st).map_err(|_| {
            Error::invalid(Layer::Security, "system title", 0, format!("{} bytes", st.len()), "8 bytes")
        })?;
        (st, Some(plain))
    };
    let len_at = r.pos();
    let len = r.length("ciphered content length")?;
    let start = r.pos();
    let content = r.take(len, "ciphered content").map_err(|e| Error { offset: len_at, ..e })?;
    if !r.is_empty() {
        return Err(r.error("ciphered APDU", ErrorKind::Trailing(r.remaining())));
    }
    let (sc, ic, apdu) = unprotect(&sender, ek, ak, content, required_protection).map_err(|e| e.shifted(start))?;
    if let Some(want) = expect_plain {
        let got = apdu.first().copied();
        if got != Some(want) {
            let found = got.map_or_else(|| "nothing".to_string(), |b| format!("0x{b:02x}"));
            return Err(Error::invalid(
                Layer::Security,
                "deciphered APDU tag",
                start + 5,
                found,
                "the plain tag of the glo-/ded- APDU",
            ));
        }
    }
    Ok(Deciphered { apdu, security_control: sc, invocation_counter: ic, system_title: sender })
}

#[cfg(test)]
#[path = "ciphered_tests.rs"]
mod tests;
