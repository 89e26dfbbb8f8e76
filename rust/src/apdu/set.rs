//! SET-Request (0xC1) and SET-Response (0xC5), all five alternatives each.
//! Values stay raw A-XDR (validated); datablock raw-data is opaque.

use crate::axdr::Reader;
use crate::error::Result;

use super::access::AttributeWithSelection;
use super::xdr;

pub const TAG_SET_REQUEST: u8 = 0xc1;
pub const TAG_SET_RESPONSE: u8 = 0xc5;

/// DataBlock-SA: last-block, block-number, raw-data (shared with ACTION pblocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockSa {
    pub last_block: bool,
    pub block_number: u32,
    pub raw_data: Vec<u8>,
}

impl DataBlockSa {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let last_block = xdr::boolean(r, "last-block")?;
        let block_number = r.u32("block-number")?;
        let raw_data = xdr::octet_string(r, "raw-data")?;
        Ok(DataBlockSa { last_block, block_number, raw_data })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.last_block));
        out.extend_from_slice(&self.block_number.to_be_bytes());
        xdr::put_octet_string(out, &self.raw_data);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRequest {
    Normal {
        invoke_id_and_priority: u8,
        attribute: AttributeWithSelection,
        value: Vec<u8>,
    },
    WithFirstDatablock {
        invoke_id_and_priority: u8,
        attribute: AttributeWithSelection,
        block: DataBlockSa,
    },
    WithDatablock {
        invoke_id_and_priority: u8,
        block: DataBlockSa,
    },
    WithList {
        invoke_id_and_priority: u8,
        attributes: Vec<AttributeWithSelection>,
        values: Vec<Vec<u8>>,
    },
    WithListAndFirstDatablock {
        invoke_id_and_priority: u8,
        attributes: Vec<AttributeWithSelection>,
        block: DataBlockSa,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetResponse {
    Normal { invoke_id_and_priority: u8, result: u8 },
    Datablock { invoke_id_and_priority: u8, block_number: u32 },
    LastDatablock { invoke_id_and_priority: u8, result: u8, block_number: u32 },
    LastDatablockWithList { invoke_id_and_priority: u8, results: Vec<u8>, block_number: u32 },
    WithList { invoke_id_and_priority: u8, results: Vec<u8> },
}

impl SetRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "set-request choice", 5)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => {
                let attribute = AttributeWithSelection::decode(r)?;
                SetRequest::Normal { invoke_id_and_priority, attribute, value: xdr::raw_data(r, "value")? }
            }
            2 => {
                let attribute = AttributeWithSelection::decode(r)?;
                SetRequest::WithFirstDatablock { invoke_id_and_priority, attribute, block: DataBlockSa::decode(r)? }
            }
            3 => SetRequest::WithDatablock { invoke_id_and_priority, block: DataBlockSa::decode(r)? },
            4 => {
                let attributes = xdr::sequence(r, "attribute-descriptor-list", AttributeWithSelection::decode)?;
                let values = xdr::sequence(r, "value-list", |r| xdr::raw_data(r, "value"))?;
                SetRequest::WithList { invoke_id_and_priority, attributes, values }
            }
            _ => {
                let attributes = xdr::sequence(r, "attribute-descriptor-list", AttributeWithSelection::decode)?;
                SetRequest::WithListAndFirstDatablock {
                    invoke_id_and_priority,
                    attributes,
                    block: DataBlockSa::decode(r)?,
                }
            }
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_SET_REQUEST);
        match self {
            SetRequest::Normal { invoke_id_and_priority, attribute, value } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority]);
                attribute.encode(out);
                out.extend_from_slice(value);
            }
            SetRequest::WithFirstDatablock { invoke_id_and_priority, attribute, block } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority]);
                attribute.encode(out);
                block.encode(out);
            }
            SetRequest::WithDatablock { invoke_id_and_priority, block } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority]);
                block.encode(out);
            }
            SetRequest::WithList { invoke_id_and_priority, attributes, values } => {
                out.extend_from_slice(&[4, *invoke_id_and_priority]);
                xdr::put_sequence(out, attributes, |o, a| a.encode(o));
                xdr::put_sequence(out, values, |o, v| o.extend_from_slice(v));
            }
            SetRequest::WithListAndFirstDatablock { invoke_id_and_priority, attributes, block } => {
                out.extend_from_slice(&[5, *invoke_id_and_priority]);
                xdr::put_sequence(out, attributes, |o, a| a.encode(o));
                block.encode(out);
            }
        }
    }
}

impl SetResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "set-response choice", 5)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => SetResponse::Normal { invoke_id_and_priority, result: r.u8("result")? },
            2 => SetResponse::Datablock { invoke_id_and_priority, block_number: r.u32("block-number")? },
            3 => {
                let result = r.u8("result")?;
                SetResponse::LastDatablock { invoke_id_and_priority, result, block_number: r.u32("block-number")? }
            }
            4 => {
                let results = xdr::sequence(r, "result list", |r| r.u8("result"))?;
                SetResponse::LastDatablockWithList {
                    invoke_id_and_priority,
                    results,
                    block_number: r.u32("block-number")?,
                }
            }
            _ => SetResponse::WithList {
                invoke_id_and_priority,
                results: xdr::sequence(r, "result list", |r| r.u8("result"))?,
            },
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_SET_RESPONSE);
        match self {
            SetResponse::Normal { invoke_id_and_priority, result } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority, *result]);
            }
            SetResponse::Datablock { invoke_id_and_priority, block_number } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::LastDatablock { invoke_id_and_priority, result, block_number } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority, *result]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::LastDatablockWithList { invoke_id_and_priority, results, block_number } => {
                out.extend_from_slice(&[4, *invoke_id_and_priority]);
                xdr::put_sequence(out, results, |o, v| o.push(*v));
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::WithList { invoke_id_and_priority, results } => {
                out.extend_from_slice(&[5, *invoke_id_and_priority]);
                xdr::put_sequence(out, results, |o, v| o.push(*v));
            }
        }
    }
}
