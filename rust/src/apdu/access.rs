//! COSEM attribute and method descriptors (class id, logical name, attribute
//! or method id) and selective access (selector + A-XDR parameters), with
//! builders for the range and entry descriptors of profile-generic buffers.

use crate::axdr::{Data, Reader};
use crate::error::Result;

use super::xdr;

/// A COSEM logical name (OBIS code), 6 bytes.
pub type Obis = [u8; 6];

/// Cosem-Attribute-Descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDescriptor {
    pub class_id: u16,
    pub obis: Obis,
    pub attribute_id: i8,
}

/// Selective-Access-Descriptor: the selector and its parameters as one raw A-XDR value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectiveAccess {
    pub selector: u8,
    pub parameters: Vec<u8>,
}

/// Cosem-Attribute-Descriptor-With-Selection (and the descriptor + OPTIONAL
/// access-selection pair of GET/SET normal requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeWithSelection {
    pub attribute: AttributeDescriptor,
    pub access: Option<SelectiveAccess>,
}

/// Cosem-Method-Descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDescriptor {
    pub class_id: u16,
    pub obis: Obis,
    pub method_id: i8,
}

impl AttributeDescriptor {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let class_id = r.u16("class-id")?;
        let obis = r.array::<6>("instance-id")?;
        let attribute_id = r.u8("attribute-id")? as i8;
        Ok(AttributeDescriptor { class_id, obis, attribute_id })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        out.extend_from_slice(&self.obis);
        out.push(self.attribute_id as u8);
    }
}

impl MethodDescriptor {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let class_id = r.u16("class-id")?;
        let obis = r.array::<6>("instance-id")?;
        let method_id = r.u8("method-id")? as i8;
        Ok(MethodDescriptor { class_id, obis, method_id })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        out.extend_from_slice(&self.obis);
        out.push(self.method_id as u8);
    }
}

impl AttributeWithSelection {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let attribute = AttributeDescriptor::decode(r)?;
        let access = if xdr::optional(r, "access-selection")? {
            let selector = r.u8("access-selector")?;
            let parameters = xdr::raw_data(r, "access-parameters")?;
            Some(SelectiveAccess { selector, parameters })
        } else {
            None
        };
        Ok(AttributeWithSelection { attribute, access })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.attribute.encode(out);
        match &self.access {
            None => out.push(0),
            Some(a) => {
                out.push(1);
                out.push(a.selector);
                out.extend_from_slice(&a.parameters);
            }
        }
    }
}

/// A capture object definition as range descriptors name it: class id, logical
/// name, attribute index, data index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureObject {
    pub class_id: u16,
    pub obis: Obis,
    pub attribute_id: i8,
    pub data_index: u16,
}

impl CaptureObject {
    fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::OctetString(self.obis.to_vec()),
            Data::Integer(self.attribute_id),
            Data::LongUnsigned(self.data_index),
        ])
    }
}

/// The parameters of selective access by range (selector 1, Blue Book
/// profile generic): restricting object, from and to values (typically
/// date-time octet-strings), and the selected columns (empty = all).
pub fn range_descriptor(restricting_object: &CaptureObject, from: Data, to: Data, selected: &[CaptureObject]) -> Data {
    Data::Structure(vec![
        restricting_object.to_data(),
        from,
        to,
        Data::Array(selected.iter().map(CaptureObject::to_data).collect()),
    ])
}

/// The parameters of selective access by entry (selector 2): rows
/// `from_entry..=to_entry` (1-based, 0 = to the last) and columns
/// `from_selected_value..=to_selected_value` (0 = to the last).
pub fn entry_descriptor(from_entry: u32, to_entry: u32, from_selected_value: u16, to_selected_value: u16) -> Data {
    Data::Structure(vec![
        Data::DoubleLongUnsigned(from_entry),
        Data::DoubleLongUnsigned(to_entry),
        Data::LongUnsigned(from_selected_value),
        Data::LongUnsigned(to_selected_value),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Layer;

    #[test]
    fn entry_descriptor_bytes() {
        // Blue Book: entry_descriptor ::= structure { from_entry double-long-unsigned, to_entry
        // double-long-unsigned, from_selected_value long-unsigned, to_selected_value long-unsigned }
        let d = entry_descriptor(1, 10, 1, 0);
        assert_eq!(d.encode(), vec![0x02, 0x04, 0x06, 0, 0, 0, 1, 0x06, 0, 0, 0, 10, 0x12, 0, 1, 0x12, 0, 0]);
    }

    #[test]
    fn range_descriptor_shape() {
        let clock = CaptureObject { class_id: 8, obis: [0, 0, 1, 0, 0, 255], attribute_id: 2, data_index: 0 };
        let d = range_descriptor(&clock, Data::OctetString(vec![1; 12]), Data::OctetString(vec![2; 12]), &[]);
        let enc = d.encode();
        assert_eq!(&enc[..6], &[0x02, 0x04, 0x02, 0x04, 0x12, 0x00]);
        assert_eq!(&enc[6..9], &[0x08, 0x09, 0x06]);
        assert_eq!(enc.last(), Some(&0x00)); // empty selected-values array
        assert_eq!(crate::axdr::decode(&enc).unwrap(), d);
    }

    #[test]
    fn descriptor_with_selection_round_trip() {
        let a = AttributeWithSelection {
            attribute: AttributeDescriptor { class_id: 7, obis: [1, 0, 99, 1, 0, 255], attribute_id: 2 },
            access: Some(SelectiveAccess { selector: 2, parameters: entry_descriptor(1, 2, 1, 0).encode() }),
        };
        let mut out = Vec::new();
        a.encode(&mut out);
        let mut r = Reader::new(&out, Layer::Apdu);
        assert_eq!(AttributeWithSelection::decode(&mut r).unwrap(), a);
        assert!(r.is_empty());
    }
}
