//! Unsolicited APDUs: DataNotification (0x0F: long-invoke-id-and-priority,
//! optional date-time, body) and EventNotificationRequest (0xC2).

use crate::axdr::Reader;
use crate::error::Result;

use super::access::AttributeDescriptor;
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
        let time = if xdr::optional(r, "time")? { Some(xdr::octet_string(r, "time")?) } else { None };
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
