//! ACSE APDUs of the DLMS association (BER): AARQ (0x60), AARE (0x61), RLRQ
//! (0x62) and RLRE (0x63), with the DLMS application context and
//! authentication mechanism names, and user-information carrying an xDLMS
//! InitiateRequest/Response, a ciphered initiate, or a ConfirmedServiceError.

use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

use super::ber::{self, Tlv};
use super::quirks::{self, Lenient, Tolerated};
use super::Apdu;

pub const TAG_AARQ: u8 = 0x60;
pub const TAG_AARE: u8 = 0x61;
pub const TAG_RLRQ: u8 = 0x62;
pub const TAG_RLRE: u8 = 0x63;

/// OBJECT IDENTIFIER content of {joint-iso-ccitt(2) country(16) country-name(756)
/// identified-organization(5) DLMS-UA(8) application-context(1) n}.
const CONTEXT_PREFIX: [u8; 6] = [0x60, 0x85, 0x74, 0x05, 0x08, 0x01];
/// … authentication-mechanism-name(2) n}.
const MECHANISM_PREFIX: [u8; 6] = [0x60, 0x85, 0x74, 0x05, 0x08, 0x02];

pub const CONTEXT_NAMES: &[(u8, &str)] =
    &[(1, "logical-name"), (2, "short-name"), (3, "logical-name-with-ciphering"), (4, "short-name-with-ciphering")];

pub const MECHANISM_NAMES: &[(u8, &str)] = &[
    (0, "none"),
    (1, "lls"),
    (2, "hls"),
    (3, "hls-md5"),
    (4, "hls-sha1"),
    (5, "hls-gmac"),
    (6, "hls-sha256"),
    (7, "hls-ecdsa"),
];

/// The OID content of a DLMS application context (1..=4).
pub fn context_oid(n: u8) -> Vec<u8> {
    let mut v = CONTEXT_PREFIX.to_vec();
    v.push(n);
    v
}

/// The OID content of a DLMS mechanism (0..=7).
pub fn mechanism_oid(n: u8) -> Vec<u8> {
    let mut v = MECHANISM_PREFIX.to_vec();
    v.push(n);
    v
}

fn named(prefix: &[u8; 6], table: &[(u8, &'static str)], oid: &[u8]) -> Option<&'static str> {
    match oid.split_last() {
        Some((last, head)) if head == prefix => table.iter().find(|(v, _)| v == last).map(|(_, n)| *n),
        _ => None,
    }
}

/// "logical-name" etc. for a DLMS application context OID, else None.
pub fn context_name(oid: &[u8]) -> Option<&'static str> {
    named(&CONTEXT_PREFIX, CONTEXT_NAMES, oid)
}

/// "lls", "hls-gmac" etc. for a DLMS mechanism OID, else None.
pub fn mechanism_name(oid: &[u8]) -> Option<&'static str> {
    named(&MECHANISM_PREFIX, MECHANISM_NAMES, oid)
}

/// AARQ. Optional fields absent are `None`; OIDs are their BER content bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Aarq {
    /// Content of the protocol-version bit-string (e.g. `[0x07, 0x80]` = version1).
    pub protocol_version: Option<Vec<u8>>,
    pub application_context_name: Vec<u8>,
    pub called_ap_title: Option<Vec<u8>>,
    pub called_ae_qualifier: Option<Vec<u8>>,
    pub called_ap_invocation_id: Option<i64>,
    pub called_ae_invocation_id: Option<i64>,
    /// The client system title when ciphering is used.
    pub calling_ap_title: Option<Vec<u8>>,
    pub calling_ae_qualifier: Option<Vec<u8>>,
    pub calling_ap_invocation_id: Option<i64>,
    pub calling_ae_invocation_id: Option<i64>,
    /// The authentication functional unit bit of sender-acse-requirements.
    pub sender_acse_requirements: Option<bool>,
    pub mechanism_name: Option<Vec<u8>>,
    /// The charstring alternative of calling-authentication-value (password or challenge).
    pub calling_authentication_value: Option<Vec<u8>>,
    pub implementation_information: Option<Vec<u8>>,
    pub user_information: Option<Box<Apdu>>,
}

/// AARE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Aare {
    pub protocol_version: Option<Vec<u8>>,
    pub application_context_name: Option<Vec<u8>>,
    /// 0 accepted, 1 rejected-permanent, 2 rejected-transient.
    pub result: i64,
    pub result_source_diagnostic: Option<Diagnostic>,
    pub responding_ap_title: Option<Vec<u8>>,
    pub responding_ae_qualifier: Option<Vec<u8>>,
    pub responding_ap_invocation_id: Option<i64>,
    pub responding_ae_invocation_id: Option<i64>,
    pub responder_acse_requirements: Option<bool>,
    pub mechanism_name: Option<Vec<u8>>,
    pub responding_authentication_value: Option<Vec<u8>>,
    pub implementation_information: Option<Vec<u8>>,
    pub user_information: Option<Box<Apdu>>,
}

/// Associate-source-diagnostic: which ACSE side and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostic {
    ServiceUser(i64),
    ServiceProvider(i64),
}

pub const RESULTS: &[(u8, &str)] = &[(0, "accepted"), (1, "rejected-permanent"), (2, "rejected-transient")];

pub const USER_DIAGNOSTICS: &[(u8, &str)] = &[
    (0, "null"),
    (1, "no-reason-given"),
    (2, "application-context-name-not-supported"),
    (3, "calling-ap-title-not-recognized"),
    (4, "calling-ap-invocation-identifier-not-recognized"),
    (5, "calling-ae-qualifier-not-recognized"),
    (6, "calling-ae-invocation-identifier-not-recognized"),
    (7, "called-ap-title-not-recognized"),
    (8, "called-ap-invocation-identifier-not-recognized"),
    (9, "called-ae-qualifier-not-recognized"),
    (10, "called-ae-invocation-identifier-not-recognized"),
    (11, "authentication-mechanism-name-not-recognised"),
    (12, "authentication-mechanism-name-required"),
    (13, "authentication-failure"),
    (14, "authentication-required"),
];

pub const PROVIDER_DIAGNOSTICS: &[(u8, &str)] = &[(0, "null"), (1, "no-reason-given"), (2, "no-common-acse-version")];

/// RLRQ / RLRE: the reason (request: 0 normal, 1 urgent, 30 user-defined;
/// response: 0 normal, 1 not-finished, 30 user-defined) and optional user-information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    pub reason: Option<i64>,
    pub user_information: Option<Box<Apdu>>,
}

pub const RELEASE_REQUEST_REASONS: &[(u8, &str)] = &[(0, "normal"), (1, "urgent"), (30, "user-defined")];
pub const RELEASE_RESPONSE_REASONS: &[(u8, &str)] = &[(0, "normal"), (1, "not-finished"), (30, "user-defined")];

// ------------------------------------------------------------------ field codecs

fn octets_in(t: &Tlv<'_>, tag: u8, field: &'static str) -> Result<Vec<u8>> {
    Ok(ber::inner(t, tag, field)?.content.to_vec())
}

fn integer_in(t: &Tlv<'_>, field: &'static str) -> Result<i64> {
    ber::integer(&ber::inner(t, 0x02, field)?, field)
}

fn acse_requirements(t: &Tlv<'_>, field: &'static str) -> Result<bool> {
    // BIT STRING content: unused-bits count, then the bits (authentication is bit 0).
    match t.content {
        [unused, first, ..] if *unused < 8 => Ok(first & 0x80 != 0),
        _ => Err(Error::invalid(Layer::Ber, field, t.at, super::initiate::hex(t.content), "a bit-string like 0780")),
    }
}

fn auth_value(t: &Tlv<'_>, field: &'static str) -> Result<Vec<u8>> {
    let i = ber::inner(t, 0x80, field).map_err(|e| {
        if let ErrorKind::Invalid { .. } = e.kind {
            Error::new(
                Layer::Ber,
                field,
                e.offset,
                ErrorKind::Unsupported("authentication-value other than charstring [0]"),
            )
        } else {
            e
        }
    })?;
    Ok(i.content.to_vec())
}

fn user_information(t: &Tlv<'_>, cx: &mut Lenient<'_>) -> Result<Box<Apdu>> {
    let i = ber::inner(t, 0x04, "user-information")?;
    // Refuse nested ACSE APDUs before decoding: no recursion on hostile input.
    if let Some(tag @ TAG_AARQ..=TAG_RLRE) = i.content.first().copied() {
        return Err(Error::new(Layer::Ber, "user-information", i.at, ErrorKind::UnknownTag(tag)));
    }
    let apdu = match super::decode(i.content) {
        Ok(a) => a,
        Err(e) => initiate_response_off_by_one(&i, cx).ok_or_else(|| e.shifted(i.at))??,
    };
    match apdu {
        Apdu::InitiateRequest(_)
        | Apdu::InitiateResponse(_)
        | Apdu::ConfirmedServiceError(_)
        | Apdu::GeneralCiphering(_) => Ok(Box::new(apdu)),
        // glo-/ded- initiate-request, initiate-response, confirmed-service-error
        Apdu::Ciphered(ref c) if matches!(c.tag, 0x21 | 0x28 | 0x2e | 0x41 | 0x48 | 0x4e) => Ok(Box::new(apdu)),
        other => Err(Error::invalid(
            Layer::Ber,
            "user-information",
            i.at,
            other.kind(),
            "an initiate request/response, its ciphered form, or a confirmed-service-error",
        )),
    }
}

/// A plain InitiateResponse one byte longer than its octet string (the byte
/// after it, past the end of the ACSE APDU: the lengths around it are short
/// by the same byte) or one byte shorter (a spare byte after it), when the
/// quirk is allowed. `None` when it is not that; `Some(Err)` when refused.
fn initiate_response_off_by_one(i: &Tlv<'_>, cx: &mut Lenient<'_>) -> Option<Result<Apdu>> {
    if i.content.first() != Some(&super::initiate::TAG_INITIATE_RESPONSE) || !cx.tolerance.initiate_response_length {
        return None;
    }
    let (len, end) = (i.content.len(), i.at + i.content.len());
    let longer = (end == cx.acse_end).then(|| cx.whole.get(i.at..end + 1)).flatten();
    if let Some(Ok(a @ Apdu::InitiateResponse(_))) = longer.map(super::decode) {
        cx.borrowed = 1;
        let detail = format!(
            "the InitiateResponse takes {} bytes, its octet string says {len} (the user-information and AARE \
             lengths are short by the same byte)",
            len + 1
        );
        cx.taken.push(Tolerated { quirk: quirks::INITIATE_RESPONSE_LENGTH, detail });
        return Some(Ok(a));
    }
    let shorter = i.content.get(..len.saturating_sub(1)).filter(|c| !c.is_empty());
    if let Some(Ok(a @ Apdu::InitiateResponse(_))) = shorter.map(super::decode) {
        let detail =
            format!("the InitiateResponse takes {} bytes, its octet string says {len} (one spare byte)", len - 1);
        cx.taken.push(Tolerated { quirk: quirks::INITIATE_RESPONSE_LENGTH, detail });
        return Some(Ok(a));
    }
    None
}

fn put_wrapped(out: &mut Vec<u8>, outer: u8, inner: u8, content: &[u8]) {
    let mut v = Vec::with_capacity(content.len() + 4);
    ber::put_tlv(&mut v, inner, content);
    ber::put_tlv(out, outer, &v);
}

fn put_opt_wrapped(out: &mut Vec<u8>, outer: u8, inner: u8, content: &Option<Vec<u8>>) {
    if let Some(c) = content {
        put_wrapped(out, outer, inner, c);
    }
}

fn put_opt_int(out: &mut Vec<u8>, outer: u8, v: Option<i64>) {
    if let Some(v) = v {
        put_wrapped(out, outer, 0x02, &ber::integer_content(v));
    }
}

fn put_requirements(out: &mut Vec<u8>, tag: u8, v: Option<bool>) {
    if let Some(b) = v {
        ber::put_tlv(out, tag, &[0x07, if b { 0x80 } else { 0x00 }]);
    }
}

fn put_user_information(out: &mut Vec<u8>, u: &Option<Box<Apdu>>) {
    if let Some(a) = u {
        put_wrapped(out, 0xbe, 0x04, &a.encode());
    }
}

/// Walk the TLVs of an ACSE APDU body, refusing duplicates. With the quirk
/// acse-field-length allowed, a constructed field whose outer length
/// disagrees with its complete inner TLV is taken as that inner TLV.
fn fields<'a>(body: &'a [u8], base: usize, cx: &mut Lenient<'_>) -> Result<Vec<Tlv<'a>>> {
    let mut r: Reader<'a> = ber::reader(body);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    while !r.is_empty() {
        let at = r.pos() + base;
        let mut t = match field_by_inner_length(body, &mut r, base, cx) {
            Some(t) => t,
            None => ber::read_tlv(&mut r, "ACSE field").map_err(|e| e.shifted(base))?,
        };
        t.at += base;
        t.start += base;
        if seen.contains(&t.tag) {
            return Err(Error::invalid(
                Layer::Ber,
                "ACSE field",
                at,
                format!("tag 0x{:02x} twice", t.tag),
                "each field once",
            ));
        }
        seen.push(t.tag);
        out.push(t);
    }
    Ok(out)
}

/// The header (tag, length, header size) of the TLV at the start of `b`.
fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let mut r = ber::reader(b);
    let tag = r.u8("tag").ok()?;
    let first = r.u8("length").ok()?;
    if tag & 0x1f == 0x1f || first == 0x80 || first > 0x84 {
        return None;
    }
    let len = if first < 0x80 {
        first as usize
    } else {
        r.take((first & 0x7f) as usize, "length").ok()?.iter().fold(0usize, |a, b| (a << 8) | *b as usize)
    };
    Some((tag, len, r.pos()))
}

/// The field at `r` read by its inner TLV's extent (quirk acse-field-length),
/// when allowed and its outer length disagrees; `None` to read it as it says.
fn field_by_inner_length<'a>(body: &'a [u8], r: &mut Reader<'a>, base: usize, cx: &mut Lenient<'_>) -> Option<Tlv<'a>> {
    if !cx.tolerance.acse_field_length {
        return None;
    }
    let start = r.pos();
    let (tag, outer, h) = header(body.get(start..)?)?;
    // Constructed context-specific fields hold exactly one TLV; 0xBD (implementation
    // information, constructed) is taken raw.
    if tag & 0xe0 != 0xa0 || tag == 0xbd {
        return None;
    }
    let c = start + h;
    let rest = body.get(c..)?;
    let (inner_tag, inner_len, ih) = header(rest)?;
    let inner = ih + inner_len;
    if inner == outer || inner > rest.len() {
        return None;
    }
    let next = c + inner.max(outer);
    if next > body.len() {
        return None;
    }
    let detail = format!(
        "field 0x{tag:02x} at byte {}: outer length {outer}, its inner TLV (tag 0x{inner_tag:02x}) takes {inner}; the inner TLV is taken",
        base + start
    );
    cx.taken.push(Tolerated { quirk: quirks::ACSE_FIELD_LENGTH, detail });
    r.take(next - start, "ACSE field").ok()?;
    Some(Tlv { tag, start, content: body.get(c..c + inner)?, at: c })
}

fn unknown(t: &Tlv<'_>) -> Error {
    Error::new(Layer::Ber, "ACSE field", t.start, ErrorKind::UnknownTag(t.tag))
}

impl Aarq {
    /// Decode the content of the AARQ (after tag and length), found at `base`.
    pub fn decode(body: &[u8], base: usize) -> Result<Self> {
        Aarq::decode_in(body, base, &mut Lenient::strict(body))
    }

    pub(crate) fn decode_in(body: &[u8], base: usize, cx: &mut Lenient<'_>) -> Result<Self> {
        let mut a = Aarq::default();
        let mut context = None;
        for t in fields(body, base, cx)? {
            match t.tag {
                0x80 => a.protocol_version = Some(t.content.to_vec()),
                0xa1 => context = Some(octets_in(&t, 0x06, "application-context-name")?),
                0xa2 => a.called_ap_title = Some(octets_in(&t, 0x04, "called-AP-title")?),
                0xa3 => a.called_ae_qualifier = Some(octets_in(&t, 0x04, "called-AE-qualifier")?),
                0xa4 => a.called_ap_invocation_id = Some(integer_in(&t, "called-AP-invocation-id")?),
                0xa5 => a.called_ae_invocation_id = Some(integer_in(&t, "called-AE-invocation-id")?),
                0xa6 => a.calling_ap_title = Some(octets_in(&t, 0x04, "calling-AP-title")?),
                0xa7 => a.calling_ae_qualifier = Some(octets_in(&t, 0x04, "calling-AE-qualifier")?),
                0xa8 => a.calling_ap_invocation_id = Some(integer_in(&t, "calling-AP-invocation-id")?),
                0xa9 => a.calling_ae_invocation_id = Some(integer_in(&t, "calling-AE-invocation-id")?),
                0x8a => a.sender_acse_requirements = Some(acse_requirements(&t, "sender-acse-requirements")?),
                0x8b => a.mechanism_name = Some(t.content.to_vec()),
                0xac => a.calling_authentication_value = Some(auth_value(&t, "calling-authentication-value")?),
                // [29] IMPLICIT GraphicString: primitive 0x9D; the constructed form 0xBD is accepted too
                0x9d | 0xbd => a.implementation_information = Some(t.content.to_vec()),
                0xbe => a.user_information = Some(user_information(&t, cx)?),
                _ => return Err(unknown(&t)),
            }
        }
        a.application_context_name = context.ok_or_else(|| {
            Error::new(
                Layer::Ber,
                "application-context-name",
                base,
                ErrorKind::Other("missing (mandatory in AARQ)".into()),
            )
        })?;
        Ok(a)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b = Vec::with_capacity(64);
        if let Some(p) = &self.protocol_version {
            ber::put_tlv(&mut b, 0x80, p);
        }
        put_wrapped(&mut b, 0xa1, 0x06, &self.application_context_name);
        put_opt_wrapped(&mut b, 0xa2, 0x04, &self.called_ap_title);
        put_opt_wrapped(&mut b, 0xa3, 0x04, &self.called_ae_qualifier);
        put_opt_int(&mut b, 0xa4, self.called_ap_invocation_id);
        put_opt_int(&mut b, 0xa5, self.called_ae_invocation_id);
        put_opt_wrapped(&mut b, 0xa6, 0x04, &self.calling_ap_title);
        put_opt_wrapped(&mut b, 0xa7, 0x04, &self.calling_ae_qualifier);
        put_opt_int(&mut b, 0xa8, self.calling_ap_invocation_id);
        put_opt_int(&mut b, 0xa9, self.calling_ae_invocation_id);
        put_requirements(&mut b, 0x8a, self.sender_acse_requirements);
        if let Some(m) = &self.mechanism_name {
            ber::put_tlv(&mut b, 0x8b, m);
        }
        put_opt_wrapped(&mut b, 0xac, 0x80, &self.calling_authentication_value);
        if let Some(i) = &self.implementation_information {
            ber::put_tlv(&mut b, 0x9d, i);
        }
        put_user_information(&mut b, &self.user_information);
        ber::put_tlv(out, TAG_AARQ, &b);
    }
}

impl Aare {
    pub fn decode(body: &[u8], base: usize) -> Result<Self> {
        Aare::decode_in(body, base, &mut Lenient::strict(body))
    }

    pub(crate) fn decode_in(body: &[u8], base: usize, cx: &mut Lenient<'_>) -> Result<Self> {
        let mut a = Aare::default();
        let mut result = None;
        for t in fields(body, base, cx)? {
            match t.tag {
                0x80 => a.protocol_version = Some(t.content.to_vec()),
                0xa1 => a.application_context_name = Some(octets_in(&t, 0x06, "application-context-name")?),
                0xa2 => result = Some(integer_in(&t, "result")?),
                0xa3 => {
                    let mut r = ber::reader(t.content);
                    let d = ber::read_tlv(&mut r, "result-source-diagnostic").map_err(|e| e.shifted(t.at))?;
                    let d = Tlv { at: d.at + t.at, start: d.start + t.at, ..d };
                    let v = integer_in(&d, "result-source-diagnostic")?;
                    a.result_source_diagnostic = Some(match d.tag {
                        0xa1 => Diagnostic::ServiceUser(v),
                        0xa2 => Diagnostic::ServiceProvider(v),
                        other => {
                            return Err(Error::new(
                                Layer::Ber,
                                "result-source-diagnostic",
                                t.at,
                                ErrorKind::UnknownTag(other),
                            ))
                        }
                    });
                    if !r.is_empty() {
                        return Err(Error::new(
                            Layer::Ber,
                            "result-source-diagnostic",
                            t.at,
                            ErrorKind::Trailing(r.remaining()),
                        ));
                    }
                }
                0xa4 => a.responding_ap_title = Some(octets_in(&t, 0x04, "responding-AP-title")?),
                0xa5 => a.responding_ae_qualifier = Some(octets_in(&t, 0x04, "responding-AE-qualifier")?),
                0xa6 => a.responding_ap_invocation_id = Some(integer_in(&t, "responding-AP-invocation-id")?),
                0xa7 => a.responding_ae_invocation_id = Some(integer_in(&t, "responding-AE-invocation-id")?),
                0x88 => a.responder_acse_requirements = Some(acse_requirements(&t, "responder-acse-requirements")?),
                0x89 => a.mechanism_name = Some(t.content.to_vec()),
                0xaa => a.responding_authentication_value = Some(auth_value(&t, "responding-authentication-value")?),
                // [29] IMPLICIT GraphicString: primitive 0x9D; the constructed form 0xBD is accepted too
                0x9d | 0xbd => a.implementation_information = Some(t.content.to_vec()),
                0xbe => a.user_information = Some(user_information(&t, cx)?),
                _ => return Err(unknown(&t)),
            }
        }
        a.result = result.ok_or_else(|| {
            Error::new(Layer::Ber, "result", base, ErrorKind::Other("missing (mandatory in AARE)".into()))
        })?;
        Ok(a)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b = Vec::with_capacity(64);
        if let Some(p) = &self.protocol_version {
            ber::put_tlv(&mut b, 0x80, p);
        }
        put_opt_wrapped(&mut b, 0xa1, 0x06, &self.application_context_name);
        put_wrapped(&mut b, 0xa2, 0x02, &ber::integer_content(self.result));
        if let Some(d) = self.result_source_diagnostic {
            let (tag, v) = match d {
                Diagnostic::ServiceUser(v) => (0xa1, v),
                Diagnostic::ServiceProvider(v) => (0xa2, v),
            };
            let mut inner = Vec::new();
            put_wrapped(&mut inner, tag, 0x02, &ber::integer_content(v));
            ber::put_tlv(&mut b, 0xa3, &inner);
        }
        put_opt_wrapped(&mut b, 0xa4, 0x04, &self.responding_ap_title);
        put_opt_wrapped(&mut b, 0xa5, 0x04, &self.responding_ae_qualifier);
        put_opt_int(&mut b, 0xa6, self.responding_ap_invocation_id);
        put_opt_int(&mut b, 0xa7, self.responding_ae_invocation_id);
        put_requirements(&mut b, 0x88, self.responder_acse_requirements);
        if let Some(m) = &self.mechanism_name {
            ber::put_tlv(&mut b, 0x89, m);
        }
        put_opt_wrapped(&mut b, 0xaa, 0x80, &self.responding_authentication_value);
        if let Some(i) = &self.implementation_information {
            ber::put_tlv(&mut b, 0x9d, i);
        }
        put_user_information(&mut b, &self.user_information);
        ber::put_tlv(out, TAG_AARE, &b);
    }
}

impl Release {
    pub fn decode(body: &[u8], base: usize) -> Result<Self> {
        Release::decode_in(body, base, &mut Lenient::strict(body))
    }

    pub(crate) fn decode_in(body: &[u8], base: usize, cx: &mut Lenient<'_>) -> Result<Self> {
        let mut rel = Release::default();
        for t in fields(body, base, cx)? {
            match t.tag {
                0x80 => rel.reason = Some(ber::integer(&t, "reason")?),
                0xbe => rel.user_information = Some(user_information(&t, cx)?),
                _ => return Err(unknown(&t)),
            }
        }
        Ok(rel)
    }

    pub fn encode(&self, tag: u8, out: &mut Vec<u8>) {
        let mut b = Vec::new();
        if let Some(r) = self.reason {
            ber::put_tlv(&mut b, 0x80, &ber::integer_content(r));
        }
        put_user_information(&mut b, &self.user_information);
        ber::put_tlv(out, tag, &b);
    }
}
