//! Unsolicited APDUs: DataNotification (0x0F: long-invoke-id-and-priority,
//! optional date-time, body) and EventNotificationRequest (0xC2).

use crate::axdr::Reader;
use crate::error::Result;

use super::access::AttributeDescriptor;
use super::quirks::{self, Lenient};
use super::xdr;

pub const TAG_DATA_NOTIFICATION: u8 = 0x0f;
pub const TAG_EVENT_NOTIFICATION_REQUEST: u8 = 0xc2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNotification {
    pub long_invoke_id_and_priority: u32,
    /// The date-time octet-string; empty when absent (encoded as length 0).
    pub date_time: Vec<u8>,
    /// notification-body: one raw A-XDR value.
    pub body: Vec<u8>,
}

impl DataNotification {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let long_invoke_id_and_priority = r.u32("long-invoke-id-and-priority")?;
        let date_time = xdr::octet_string(r, "date-time")?;
        let body = xdr::raw_data(r, "notification-body")?;
        Ok(DataNotification { long_invoke_id_and_priority, date_time, body })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_DATA_NOTIFICATION);
        out.extend_from_slice(&self.long_invoke_id_and_priority.to_be_bytes());
        xdr::put_octet_string(out, &self.date_time);
        out.extend_from_slice(&self.body);
    }
}

/// A data-notification whose body is in the layout of
/// [`crate::axdr_descriptors`] (array items `{ untagged attribute descriptor,
/// value }`, Sagemcom XT211): (long-invoke-id-and-priority, date-time, body).
/// Only for a meter model that names the quirk; the body must end the APDU.
/// The last element: how many descriptors were read (0: a plain A-XDR body).
pub fn decode_data_notification_untagged(buf: &[u8]) -> Result<(u32, Vec<u8>, crate::axdr::Data, usize)> {
    let mut r = xdr::reader(buf);
    let tag = r.u8("APDU tag")?;
    if tag != TAG_DATA_NOTIFICATION {
        return Err(crate::error::Error::invalid(
            r.layer(),
            "APDU tag",
            0,
            format!("0x{tag:02x}"),
            "0x0f (data-notification)",
        ));
    }
    let id = r.u32("long-invoke-id-and-priority")?;
    let date_time = xdr::octet_string(&mut r, "date-time")?;
    let at = r.pos();
    let (body, found) = crate::axdr_descriptors::decode_counting(r.rest()).map_err(|e| e.shifted(at))?;
    Ok((id, date_time, body, found))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotification {
    /// OPTIONAL time octet-string.
    pub time: Option<Vec<u8>>,
    pub attribute: AttributeDescriptor,
    /// attribute-value: one raw A-XDR value.
    pub value: Vec<u8>,
}

impl EventNotification {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Self::decode_in(r, &mut Lenient::strict(&[]))
    }
    /// Decode, taking the quirk [`quirks::EVENT_TIME_DATA_TAG`] when `cx` allows it.
    pub(crate) fn decode_in(r: &mut Reader<'_>, cx: &mut Lenient<'_>) -> Result<Self> {
        let present = if r.peek_u8("time")? == 0x09 {
            let refusal = xdr::optional(r, "time").expect_err("0x09 is not an OPTIONAL flag");
            cx.take(
                quirks::EVENT_TIME_DATA_TAG,
                || "the time is flagged 0x09 (an octet-string's Data tag), not 0x01 (present)".to_string(),
                refusal,
            )?;
            true
        } else {
            xdr::optional(r, "time")?
        };
        let time = if present { Some(xdr::octet_string(r, "time")?) } else { None };
        let attribute = AttributeDescriptor::decode(r)?;
        let value = xdr::raw_data(r, "attribute-value")?;
        Ok(EventNotification { time, attribute, value })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_EVENT_NOTIFICATION_REQUEST);
        match &self.time {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                xdr::put_octet_string(out, t);
            }
        }
        self.attribute.encode(out);
        out.extend_from_slice(&self.value);
    }
}
