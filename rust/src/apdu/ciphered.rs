//! The framing of ciphered APDUs, without any cryptography: the glo- and ded-
//! service-specific tags (their content is security-control, invocation
//! counter, then ciphertext with its tag) and general-glo/ded-ciphering
//! (0xDB/0xDC: system title first). Deciphering lives in `security`.

use crate::axdr::Reader;
use crate::error::{Error, Layer, Result};

use super::{action, errors, get, initiate, notification, set, sn, xdr};

pub const TAG_GENERAL_GLO_CIPHERING: u8 = 0xdb;
pub const TAG_GENERAL_DED_CIPHERING: u8 = 0xdc;
/// The kind names of general-glo-/general-ded-ciphering.
pub const GENERAL_GLO_CIPHERING: &str = "general-glo-ciphering";
pub const GENERAL_DED_CIPHERING: &str = "general-ded-ciphering";

/// One plain xDLMS APDU that has service-specific ciphered forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipheredForm {
    /// The plain APDU's tag and kind name.
    pub plain: u8,
    pub name: &'static str,
    /// The glo- (global key) and ded- (dedicated key) forms: tag and kind name.
    pub glo: u8,
    pub glo_name: &'static str,
    pub ded: u8,
    pub ded_name: &'static str,
}

/// Each row states one fact once: plain tag -> glo-/ded- tags, and the plain
/// name; the ciphered names are the plain one with "glo-"/"ded-" in front.
macro_rules! forms {
    ($(($plain:expr, $glo:literal, $ded:literal, $name:literal)),* $(,)?) => {
        &[$(CipheredForm {
            plain: $plain,
            name: $name,
            glo: $glo,
            glo_name: concat!("glo-", $name),
            ded: $ded,
            ded_name: concat!("ded-", $name),
        }),*]
    };
}

/// (plain, glo-, ded-) APDU tags from the xDLMS-APDU ASN.1 (IEC 62056-5-3 / Green Book 9.5).
pub const CIPHERED_FORMS: &[CipheredForm] = forms![
    (initiate::TAG_INITIATE_REQUEST, 0x21, 0x41, "initiate-request"),
    (sn::TAG_READ_REQUEST, 0x25, 0x45, "read-request"),
    (sn::TAG_WRITE_REQUEST, 0x26, 0x46, "write-request"),
    (initiate::TAG_INITIATE_RESPONSE, 0x28, 0x48, "initiate-response"),
    (sn::TAG_READ_RESPONSE, 0x2c, 0x4c, "read-response"),
    (sn::TAG_WRITE_RESPONSE, 0x2d, 0x4d, "write-response"),
    (errors::TAG_CONFIRMED_SERVICE_ERROR, 0x2e, 0x4e, "confirmed-service-error"),
    (sn::TAG_UNCONFIRMED_WRITE_REQUEST, 0x36, 0x56, "unconfirmed-write-request"),
    (sn::TAG_INFORMATION_REPORT_REQUEST, 0x38, 0x58, "information-report-request"),
    (get::TAG_GET_REQUEST, 0xc8, 0xd0, "get-request"),
    (set::TAG_SET_REQUEST, 0xc9, 0xd1, "set-request"),
    (notification::TAG_EVENT_NOTIFICATION_REQUEST, 0xca, 0xd2, "event-notification-request"),
    (action::TAG_ACTION_REQUEST, 0xcb, 0xd3, "action-request"),
    (get::TAG_GET_RESPONSE, 0xcc, 0xd4, "get-response"),
    (set::TAG_SET_RESPONSE, 0xcd, 0xd5, "set-response"),
    (action::TAG_ACTION_RESPONSE, 0xcf, 0xd7, "action-response"),
];

/// Every service-specific ciphered tag with its kind name, the plain tag
/// inside and whether it is the ded- form: `(tag, name, plain, dedicated)`.
pub fn ciphered_tags() -> impl Iterator<Item = (u8, &'static str, u8, bool)> {
    CIPHERED_FORMS.iter().flat_map(|f| [(f.glo, f.glo_name, f.plain, false), (f.ded, f.ded_name, f.plain, true)])
}

/// The kind name of a service-specific ciphered tag.
pub fn ciphered_name(tag: u8) -> Option<&'static str> {
    ciphered_tags().find(|t| t.0 == tag).map(|t| t.1)
}

/// The tag of a service-specific ciphered kind name.
pub fn ciphered_tag(name: &str) -> Option<u8> {
    ciphered_tags().find(|t| t.1 == name).map(|t| t.0)
}

/// The glo- (or, with `dedicated`, ded-) ciphered tag of a plain APDU tag.
pub fn ciphered_form(plain: u8, dedicated: bool) -> Option<u8> {
    CIPHERED_FORMS.iter().find(|f| f.plain == plain).map(|f| if dedicated { f.ded } else { f.glo })
}

/// The plain APDU tag inside a glo-/ded- ciphered tag, and whether it is ded-.
pub fn plain_of(ciphered: u8) -> Option<(u8, bool)> {
    ciphered_tags().find(|t| t.0 == ciphered).map(|t| (t.2, t.3))
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
