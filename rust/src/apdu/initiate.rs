//! xDLMS InitiateRequest / InitiateResponse (the user-information of AARQ and
//! AARE) and the 24-bit conformance block with its BER bit-string header
//! 0x5F 0x1F 0x04 0x00.

use crate::axdr::Reader;
use crate::error::{Error, Layer, Result};

use super::xdr;

pub const TAG_INITIATE_REQUEST: u8 = 0x01;
pub const TAG_INITIATE_RESPONSE: u8 = 0x08;

/// Conformance bit names, bit 0 (the most significant bit of the first of the
/// three bytes) first (IEC 62056-5-3, "Conformance").
pub const CONFORMANCE_BITS: [&str; 24] = [
    "reserved-zero",
    "general-protection",
    "general-block-transfer",
    "read",
    "write",
    "unconfirmed-write",
    "delta-value-encoding",
    "reserved-seven",
    "attribute0-supported-with-set",
    "priority-mgmt-supported",
    "attribute0-supported-with-get",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "information-report",
    "data-notification",
    "access",
    "parameterized-access",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
];

/// The names of the bits set in a 24-bit conformance value.
pub fn conformance_names(c: u32) -> Vec<&'static str> {
    CONFORMANCE_BITS.iter().enumerate().filter(|(i, _)| c & (1 << (23 - i)) != 0).map(|(_, n)| *n).collect()
}

/// The conformance bit of a name.
pub fn conformance_bit(name: &str) -> Option<u32> {
    CONFORMANCE_BITS.iter().position(|n| *n == name).map(|i| 1 << (23 - i))
}

fn decode_conformance(r: &mut Reader<'_>) -> Result<u32> {
    let at = r.pos();
    let head = r.array::<4>("conformance")?;
    if head != [0x5f, 0x1f, 0x04, 0x00] {
        return Err(Error::invalid(
            Layer::Apdu,
            "conformance",
            at,
            hex(&head),
            "5f1f0400 (BER [APPLICATION 31] bit-string of 24 bits)",
        ));
    }
    let b = r.array::<3>("conformance")?;
    Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

fn encode_conformance(out: &mut Vec<u8>, c: u32) {
    out.extend_from_slice(&[0x5f, 0x1f, 0x04, 0x00]);
    out.extend_from_slice(&c.to_be_bytes()[1..]);
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn optional_u8(r: &mut Reader<'_>, field: &'static str) -> Result<Option<u8>> {
    Ok(if xdr::optional(r, field)? { Some(r.u8(field)?) } else { None })
}

fn put_optional_u8(out: &mut Vec<u8>, v: Option<u8>) {
    match v {
        None => out.push(0),
        Some(v) => out.extend_from_slice(&[1, v]),
    }
}

/// InitiateRequest (tag 0x01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub dedicated_key: Option<Vec<u8>>,
    /// `None`: the DEFAULT (TRUE) was used, encoded as 0x00.
    pub response_allowed: Option<bool>,
    pub proposed_quality_of_service: Option<u8>,
    pub proposed_dlms_version_number: u8,
    /// The 24 conformance bits, bit 0 most significant.
    pub proposed_conformance: u32,
    pub client_max_receive_pdu_size: u16,
}

impl InitiateRequest {
    /// Decode after the tag.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let dedicated_key =
            if xdr::optional(r, "dedicated-key")? { Some(xdr::octet_string(r, "dedicated-key")?) } else { None };
        let response_allowed =
            if xdr::optional(r, "response-allowed")? { Some(xdr::boolean(r, "response-allowed")?) } else { None };
        let proposed_quality_of_service = optional_u8(r, "proposed-quality-of-service")?;
        let proposed_dlms_version_number = r.u8("proposed-dlms-version-number")?;
        let proposed_conformance = decode_conformance(r)?;
        let client_max_receive_pdu_size = r.u16("client-max-receive-pdu-size")?;
        Ok(InitiateRequest {
            dedicated_key,
            response_allowed,
            proposed_quality_of_service,
            proposed_dlms_version_number,
            proposed_conformance,
            client_max_receive_pdu_size,
        })
    }

    /// Encode with the tag.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_INITIATE_REQUEST);
        match &self.dedicated_key {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                xdr::put_octet_string(out, k);
            }
        }
        match self.response_allowed {
            None => out.push(0),
            Some(b) => out.extend_from_slice(&[1, u8::from(b)]),
        }
        put_optional_u8(out, self.proposed_quality_of_service);
        out.push(self.proposed_dlms_version_number);
        encode_conformance(out, self.proposed_conformance);
        out.extend_from_slice(&self.client_max_receive_pdu_size.to_be_bytes());
    }
}

/// InitiateResponse (tag 0x08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateResponse {
    pub negotiated_quality_of_service: Option<u8>,
    pub negotiated_dlms_version_number: u8,
    pub negotiated_conformance: u32,
    pub server_max_receive_pdu_size: u16,
    /// 0x0007 for LN referencing, 0xFA00 for SN.
    pub vaa_name: u16,
}

impl InitiateResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let negotiated_quality_of_service = optional_u8(r, "negotiated-quality-of-service")?;
        let negotiated_dlms_version_number = r.u8("negotiated-dlms-version-number")?;
        let negotiated_conformance = decode_conformance(r)?;
        let server_max_receive_pdu_size = r.u16("server-max-receive-pdu-size")?;
        let vaa_name = r.u16("vaa-name")?;
        Ok(InitiateResponse {
            negotiated_quality_of_service,
            negotiated_dlms_version_number,
            negotiated_conformance,
            server_max_receive_pdu_size,
            vaa_name,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_INITIATE_RESPONSE);
        put_optional_u8(out, self.negotiated_quality_of_service);
        out.push(self.negotiated_dlms_version_number);
        encode_conformance(out, self.negotiated_conformance);
        out.extend_from_slice(&self.server_max_receive_pdu_size.to_be_bytes());
        out.extend_from_slice(&self.vaa_name.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_names_of_green_book_example() {
        // 0x007E1F: the conformance a Green Book LN client proposes.
        let n = conformance_names(0x007e1f);
        assert_eq!(
            n,
            vec![
                "priority-mgmt-supported",
                "attribute0-supported-with-get",
                "block-transfer-with-get-or-read",
                "block-transfer-with-set-or-write",
                "block-transfer-with-action",
                "multiple-references",
                "get",
                "set",
                "selective-access",
                "event-notification",
                "action"
            ]
        );
        assert_eq!(n.iter().map(|x| conformance_bit(x).unwrap()).sum::<u32>(), 0x007e1f);
    }

    #[test]
    fn initiate_request_bytes() {
        let bytes = [0x01, 0x00, 0x00, 0x00, 0x06, 0x5f, 0x1f, 0x04, 0x00, 0x00, 0x7e, 0x1f, 0x04, 0xb0];
        let mut r = xdr::reader(&bytes[1..]);
        let ir = InitiateRequest::decode(&mut r).unwrap();
        assert_eq!(ir.proposed_dlms_version_number, 6);
        assert_eq!(ir.client_max_receive_pdu_size, 0x04b0);
        let mut out = Vec::new();
        ir.encode(&mut out);
        assert_eq!(out, bytes);
        let bad = [0x00, 0x00, 0x00, 0x06, 0x5f, 0x1e, 0x04, 0x00, 0x00, 0x7e, 0x1f, 0x04, 0xb0];
        let e = InitiateRequest::decode(&mut xdr::reader(&bad)).unwrap_err();
        assert_eq!((e.field, e.offset), ("conformance", 4));
    }
}
