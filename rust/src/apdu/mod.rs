//! xDLMS and ACSE APDUs (IEC 62056-5-3, DLMS UA Green Book): one typed
//! [`Apdu`] enum, [`decode`] from bytes and [`Apdu::encode`] back, the exact
//! inverse for canonical encodings (minimal BER/A-XDR lengths and integers,
//! booleans 0x00/0x01; other input decodes and re-encodes canonically). A-XDR payloads (GET results, SET values, ACTION parameters,
//! notification bodies) stay raw bytes, validated to hold one A-XDR value;
//! block data is opaque; ciphered APDUs are framed, not deciphered.

pub mod access;
pub mod action;
pub mod association;
pub mod ber;
pub mod block;
pub mod ciphered;
pub mod errors;
pub mod get;
pub mod initiate;
pub mod notification;
pub mod quirks;
pub mod results;
pub mod set;
pub mod sn;
mod xdr;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sn_tests;
#[cfg(test)]
mod tests;

use crate::error::{Error, ErrorKind, Layer, Result};

pub use access::{
    entry_descriptor, range_descriptor, AttributeDescriptor, AttributeWithSelection, CaptureObject, MethodDescriptor,
    Obis, SelectiveAccess,
};
pub use action::{ActionRequest, ActionResponse, ActionResult};
pub use association::{Aare, Aarq, Diagnostic, Release};
pub use block::GeneralBlockTransfer;
pub use ciphered::{Ciphered, GeneralCiphering};
pub use errors::{ConfirmedServiceError, ExceptionResponse};
pub use get::{BlockResult, GetDataResult, GetRequest, GetResponse};
pub use initiate::{InitiateRequest, InitiateResponse};
pub use notification::{decode_data_notification_untagged, DataNotification, EventNotification};
pub use quirks::{Decoded, Tolerance, Tolerated};
pub use set::{DataBlockSa, SetRequest, SetResponse};
pub use sn::{
    InformationReport, ReadRequest, ReadResponse, ReadResult, VariableAccess, WriteRequest, WriteResponse, WriteResult,
};

/// Any APDU this codec knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apdu {
    Aarq(Aarq),
    Aare(Aare),
    Rlrq(Release),
    Rlre(Release),
    InitiateRequest(InitiateRequest),
    InitiateResponse(InitiateResponse),
    ConfirmedServiceError(ConfirmedServiceError),
    GetRequest(GetRequest),
    GetResponse(GetResponse),
    SetRequest(SetRequest),
    SetResponse(SetResponse),
    ActionRequest(ActionRequest),
    ActionResponse(ActionResponse),
    DataNotification(DataNotification),
    EventNotification(EventNotification),
    ExceptionResponse(ExceptionResponse),
    GeneralBlockTransfer(GeneralBlockTransfer),
    Ciphered(Ciphered),
    GeneralCiphering(GeneralCiphering),
    // short-name referencing (`sn.rs`)
    ReadRequest(ReadRequest),
    ReadResponse(ReadResponse),
    WriteRequest(WriteRequest),
    WriteResponse(WriteResponse),
    UnconfirmedWriteRequest(WriteRequest),
    InformationReport(InformationReport),
}

/// The APDU tags that have no service-specific ciphered form, by name.
const OTHER_TAGS: &[(u8, &str)] = &[
    (notification::TAG_DATA_NOTIFICATION, "data-notification"),
    (association::TAG_AARQ, "aarq"),
    (association::TAG_AARE, "aare"),
    (association::TAG_RLRQ, "rlrq"),
    (association::TAG_RLRE, "rlre"),
    (errors::TAG_EXCEPTION_RESPONSE, "exception-response"),
    (block::TAG_GENERAL_BLOCK_TRANSFER, "general-block-transfer"),
    (ciphered::TAG_GENERAL_GLO_CIPHERING, ciphered::GENERAL_GLO_CIPHERING),
    (ciphered::TAG_GENERAL_DED_CIPHERING, ciphered::GENERAL_DED_CIPHERING),
];

/// Every APDU tag (first byte) the core knows and its name: the plain xDLMS
/// and ACSE tags, the glo-/ded- forms and general ciphering.
pub fn tag_names() -> Vec<(u8, &'static str)> {
    let mut v: Vec<(u8, &'static str)> = ciphered::CIPHERED_FORMS.iter().map(|f| (f.plain, f.name)).collect();
    v.extend(ciphered::ciphered_tags().map(|t| (t.0, t.1)));
    v.extend_from_slice(OTHER_TAGS);
    v.sort_unstable();
    v
}

/// Every kind name [`Apdu::kind`] can return.
pub fn kinds() -> Vec<&'static str> {
    let mut v = vec![
        "aarq",
        "aare",
        "rlrq",
        "rlre",
        "initiate-request",
        "initiate-response",
        "confirmed-service-error",
        "get-request-normal",
        "get-request-next",
        "get-request-with-list",
        "get-response-normal",
        "get-response-with-datablock",
        "get-response-with-list",
        "set-request-normal",
        "set-request-with-first-datablock",
        "set-request-with-datablock",
        "set-request-with-list",
        "set-request-with-list-and-first-datablock",
        "set-response-normal",
        "set-response-datablock",
        "set-response-last-datablock",
        "set-response-last-datablock-with-list",
        "set-response-with-list",
        "action-request-normal",
        "action-request-next-pblock",
        "action-request-with-list",
        "action-request-with-first-pblock",
        "action-request-with-list-and-first-pblock",
        "action-request-with-pblock",
        "action-response-normal",
        "action-response-with-pblock",
        "action-response-with-list",
        "action-response-next-pblock",
        "data-notification",
        "event-notification-request",
        "exception-response",
        "general-block-transfer",
        ciphered::GENERAL_GLO_CIPHERING,
        ciphered::GENERAL_DED_CIPHERING,
        "read-request",
        "read-response",
        "write-request",
        "write-response",
        "unconfirmed-write-request",
        "information-report-request",
    ];
    v.extend(ciphered::ciphered_tags().map(|t| t.1));
    v
}

impl Apdu {
    /// The kebab-case kind name ("get-response-normal", "glo-get-request", …).
    pub fn kind(&self) -> &'static str {
        match self {
            Apdu::Aarq(_) => "aarq",
            Apdu::Aare(_) => "aare",
            Apdu::Rlrq(_) => "rlrq",
            Apdu::Rlre(_) => "rlre",
            Apdu::InitiateRequest(_) => "initiate-request",
            Apdu::InitiateResponse(_) => "initiate-response",
            Apdu::ConfirmedServiceError(_) => "confirmed-service-error",
            Apdu::GetRequest(g) => match g {
                GetRequest::Normal { .. } => "get-request-normal",
                GetRequest::Next { .. } => "get-request-next",
                GetRequest::WithList { .. } => "get-request-with-list",
            },
            Apdu::GetResponse(g) => match g {
                GetResponse::Normal { .. } => "get-response-normal",
                GetResponse::WithDatablock { .. } => "get-response-with-datablock",
                GetResponse::WithList { .. } => "get-response-with-list",
            },
            Apdu::SetRequest(s) => match s {
                SetRequest::Normal { .. } => "set-request-normal",
                SetRequest::WithFirstDatablock { .. } => "set-request-with-first-datablock",
                SetRequest::WithDatablock { .. } => "set-request-with-datablock",
                SetRequest::WithList { .. } => "set-request-with-list",
                SetRequest::WithListAndFirstDatablock { .. } => "set-request-with-list-and-first-datablock",
            },
            Apdu::SetResponse(s) => match s {
                SetResponse::Normal { .. } => "set-response-normal",
                SetResponse::Datablock { .. } => "set-response-datablock",
                SetResponse::LastDatablock { .. } => "set-response-last-datablock",
                SetResponse::LastDatablockWithList { .. } => "set-response-last-datablock-with-list",
                SetResponse::WithList { .. } => "set-response-with-list",
            },
            Apdu::ActionRequest(a) => match a {
                ActionRequest::Normal { .. } => "action-request-normal",
                ActionRequest::NextPblock { .. } => "action-request-next-pblock",
                ActionRequest::WithList { .. } => "action-request-with-list",
                ActionRequest::WithFirstPblock { .. } => "action-request-with-first-pblock",
                ActionRequest::WithListAndFirstPblock { .. } => "action-request-with-list-and-first-pblock",
                ActionRequest::WithPblock { .. } => "action-request-with-pblock",
            },
            Apdu::ActionResponse(a) => match a {
                ActionResponse::Normal { .. } => "action-response-normal",
                ActionResponse::WithPblock { .. } => "action-response-with-pblock",
                ActionResponse::WithList { .. } => "action-response-with-list",
                ActionResponse::NextPblock { .. } => "action-response-next-pblock",
            },
            Apdu::DataNotification(_) => "data-notification",
            Apdu::EventNotification(_) => "event-notification-request",
            Apdu::ExceptionResponse(_) => "exception-response",
            Apdu::GeneralBlockTransfer(_) => "general-block-transfer",
            Apdu::Ciphered(c) => ciphered::ciphered_name(c.tag).unwrap_or("ciphered"),
            Apdu::GeneralCiphering(g) => {
                if g.dedicated {
                    ciphered::GENERAL_DED_CIPHERING
                } else {
                    ciphered::GENERAL_GLO_CIPHERING
                }
            }
            Apdu::ReadRequest(_) => "read-request",
            Apdu::ReadResponse(_) => "read-response",
            Apdu::WriteRequest(_) => "write-request",
            Apdu::WriteResponse(_) => "write-response",
            Apdu::UnconfirmedWriteRequest(_) => "unconfirmed-write-request",
            Apdu::InformationReport(_) => "information-report-request",
        }
    }

    /// The APDU's bytes (exact inverse of [`decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Apdu::Aarq(a) => a.encode(&mut out),
            Apdu::Aare(a) => a.encode(&mut out),
            Apdu::Rlrq(r) => r.encode(association::TAG_RLRQ, &mut out),
            Apdu::Rlre(r) => r.encode(association::TAG_RLRE, &mut out),
            Apdu::InitiateRequest(i) => i.encode(&mut out),
            Apdu::InitiateResponse(i) => i.encode(&mut out),
            Apdu::ConfirmedServiceError(e) => e.encode(&mut out),
            Apdu::GetRequest(g) => g.encode(&mut out),
            Apdu::GetResponse(g) => g.encode(&mut out),
            Apdu::SetRequest(s) => s.encode(&mut out),
            Apdu::SetResponse(s) => s.encode(&mut out),
            Apdu::ActionRequest(a) => a.encode(&mut out),
            Apdu::ActionResponse(a) => a.encode(&mut out),
            Apdu::DataNotification(d) => d.encode(&mut out),
            Apdu::EventNotification(e) => e.encode(&mut out),
            Apdu::ExceptionResponse(e) => e.encode(&mut out),
            Apdu::GeneralBlockTransfer(b) => b.encode(&mut out),
            Apdu::Ciphered(c) => c.encode(&mut out),
            Apdu::GeneralCiphering(g) => g.encode(&mut out),
            Apdu::ReadRequest(x) => x.encode(&mut out),
            Apdu::ReadResponse(x) => x.encode(&mut out),
            Apdu::WriteRequest(x) => x.encode(sn::TAG_WRITE_REQUEST, &mut out),
            Apdu::WriteResponse(x) => x.encode(&mut out),
            Apdu::UnconfirmedWriteRequest(x) => x.encode(sn::TAG_UNCONFIRMED_WRITE_REQUEST, &mut out),
            Apdu::InformationReport(x) => x.encode(&mut out),
        }
        out
    }
}

/// Decode exactly one APDU; trailing bytes are an error.
pub fn decode(buf: &[u8]) -> Result<Apdu> {
    decode_in(buf, &mut quirks::Lenient::strict(buf))
}

/// Decode one APDU, taking the quirks `tolerance` allows when (and only
/// when) the strict decode fails; see [`quirks`]. The error of an APDU that
/// decodes only with a quirk not allowed names that quirk.
pub fn decode_tolerant(buf: &[u8], tolerance: Tolerance) -> Result<Decoded<Apdu>> {
    let strict = match decode(buf) {
        Ok(value) => return Ok(Decoded { value, quirks: Vec::new() }),
        Err(e) => e,
    };
    let mut cx = quirks::Lenient::new(buf, tolerance);
    let allowed_error = match decode_in(buf, &mut cx) {
        Ok(value) => return Ok(Decoded { value, quirks: cx.taken }),
        // An error after a quirk was taken says more than the strict one.
        Err(e) if !cx.taken.is_empty() => e,
        Err(_) => strict.clone(),
    };
    if tolerance != Tolerance::ALL {
        let mut all = quirks::Lenient::new(buf, Tolerance::ALL);
        if decode_in(buf, &mut all).is_ok() {
            let needed: Vec<Tolerated> = all.taken.into_iter().filter(|t| !tolerance.allows(t.quirk)).collect();
            if !needed.is_empty() {
                return Err(quirks::refused(strict, &needed));
            }
        }
    }
    Err(allowed_error)
}

fn decode_in(buf: &[u8], cx: &mut quirks::Lenient<'_>) -> Result<Apdu> {
    let Some(&tag) = buf.first() else {
        return Err(Error::truncated(Layer::Apdu, "APDU tag", 0, 1, 0));
    };
    if (association::TAG_AARQ..=association::TAG_RLRE).contains(&tag) {
        return decode_acse(buf, cx);
    }
    let mut r = xdr::reader(buf);
    r.u8("APDU tag")?;
    let apdu = match tag {
        initiate::TAG_INITIATE_REQUEST => Apdu::InitiateRequest(InitiateRequest::decode(&mut r)?),
        initiate::TAG_INITIATE_RESPONSE => Apdu::InitiateResponse(InitiateResponse::decode(&mut r)?),
        errors::TAG_CONFIRMED_SERVICE_ERROR => Apdu::ConfirmedServiceError(ConfirmedServiceError::decode(&mut r)?),
        get::TAG_GET_REQUEST => Apdu::GetRequest(GetRequest::decode(&mut r)?),
        get::TAG_GET_RESPONSE => Apdu::GetResponse(GetResponse::decode(&mut r)?),
        set::TAG_SET_REQUEST => Apdu::SetRequest(SetRequest::decode(&mut r)?),
        set::TAG_SET_RESPONSE => Apdu::SetResponse(SetResponse::decode(&mut r)?),
        action::TAG_ACTION_REQUEST => Apdu::ActionRequest(ActionRequest::decode(&mut r)?),
        action::TAG_ACTION_RESPONSE => Apdu::ActionResponse(ActionResponse::decode(&mut r)?),
        notification::TAG_DATA_NOTIFICATION => Apdu::DataNotification(DataNotification::decode(&mut r)?),
        notification::TAG_EVENT_NOTIFICATION_REQUEST => {
            Apdu::EventNotification(EventNotification::decode_in(&mut r, cx)?)
        }
        errors::TAG_EXCEPTION_RESPONSE => Apdu::ExceptionResponse(ExceptionResponse::decode(&mut r)?),
        block::TAG_GENERAL_BLOCK_TRANSFER => Apdu::GeneralBlockTransfer(GeneralBlockTransfer::decode(&mut r)?),
        ciphered::TAG_GENERAL_GLO_CIPHERING => Apdu::GeneralCiphering(GeneralCiphering::decode(false, &mut r)?),
        ciphered::TAG_GENERAL_DED_CIPHERING => Apdu::GeneralCiphering(GeneralCiphering::decode(true, &mut r)?),
        sn::TAG_READ_REQUEST => Apdu::ReadRequest(ReadRequest::decode(&mut r)?),
        sn::TAG_READ_RESPONSE => Apdu::ReadResponse(ReadResponse::decode(&mut r)?),
        sn::TAG_WRITE_REQUEST => Apdu::WriteRequest(WriteRequest::decode(&mut r)?),
        sn::TAG_WRITE_RESPONSE => Apdu::WriteResponse(WriteResponse::decode(&mut r)?),
        sn::TAG_UNCONFIRMED_WRITE_REQUEST => Apdu::UnconfirmedWriteRequest(WriteRequest::decode(&mut r)?),
        sn::TAG_INFORMATION_REPORT_REQUEST => Apdu::InformationReport(InformationReport::decode(&mut r)?),
        t if ciphered::ciphered_name(t).is_some() => Apdu::Ciphered(Ciphered::decode(t, &mut r)?),
        t => return Err(Error::new(Layer::Apdu, "APDU tag", 0, ErrorKind::UnknownTag(t))),
    };
    if !r.is_empty() {
        let (n, end) = (r.remaining(), r.pos());
        let e = r.error("APDU", ErrorKind::Trailing(n));
        // Never after a ciphered APDU or a block of one: their lengths are security.
        if matches!(apdu, Apdu::Ciphered(_) | Apdu::GeneralCiphering(_) | Apdu::GeneralBlockTransfer(_)) {
            return Err(e);
        }
        let kind = apdu.kind();
        cx.take(quirks::TRAILING_BYTES, || format!("{n} byte(s) after the complete {kind} ({end} bytes) ignored"), e)?;
    }
    Ok(apdu)
}

fn decode_acse(buf: &[u8], cx: &mut quirks::Lenient<'_>) -> Result<Apdu> {
    let mut r = ber::reader(buf);
    let t = ber::read_tlv(&mut r, "ACSE APDU")?;
    let trailing = r.error("ACSE APDU", ErrorKind::Trailing(r.remaining()));
    if !r.is_empty() && cx.tolerance == Tolerance::NONE {
        return Err(trailing);
    }
    cx.acse_end = t.at + t.content.len();
    let apdu = match t.tag {
        association::TAG_AARQ => Apdu::Aarq(Aarq::decode_in(t.content, t.at, cx)?),
        association::TAG_AARE => Apdu::Aare(Aare::decode_in(t.content, t.at, cx)?),
        association::TAG_RLRQ => Apdu::Rlrq(Release::decode_in(t.content, t.at, cx)?),
        _ => Apdu::Rlre(Release::decode_in(t.content, t.at, cx)?),
    };
    // Bytes the InitiateResponse took past the APDU's own length are not trailing.
    let rest = r.remaining().saturating_sub(cx.borrowed);
    if rest > 0 {
        let (kind, end) = (apdu.kind(), buf.len() - rest);
        let e = if cx.borrowed > 0 { r.error("ACSE APDU", ErrorKind::Trailing(rest)) } else { trailing };
        cx.take(
            quirks::TRAILING_BYTES,
            || format!("{rest} byte(s) after the complete {kind} ({end} bytes) ignored"),
            e,
        )?;
    }
    Ok(apdu)
}
