//! GET-Request (0xC0) and GET-Response (0xC4): normal, next / with-datablock,
//! with-list. Result data stays raw A-XDR (validated); datablock raw-data is opaque.

use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

use super::access::AttributeWithSelection;
use super::xdr;

pub const TAG_GET_REQUEST: u8 = 0xc0;
pub const TAG_GET_RESPONSE: u8 = 0xc4;

/// Get-Data-Result: a value (raw A-XDR) or a data-access-result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetDataResult {
    Data(Vec<u8>),
    DataAccessResult(u8),
}

impl GetDataResult {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        match r.u8("get-data-result")? {
            0 => Ok(GetDataResult::Data(xdr::raw_data(r, "result data")?)),
            1 => Ok(GetDataResult::DataAccessResult(r.u8("data-access-result")?)),
            t => Err(Error::new(Layer::Apdu, "get-data-result", at, ErrorKind::UnknownTag(t))),
        }
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            GetDataResult::Data(d) => {
                out.push(0);
                out.extend_from_slice(d);
            }
            GetDataResult::DataAccessResult(v) => out.extend_from_slice(&[1, *v]),
        }
    }
}

/// The result CHOICE of DataBlock-G: opaque raw-data or a data-access-result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockResult {
    RawData(Vec<u8>),
    DataAccessResult(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetRequest {
    Normal { invoke_id_and_priority: u8, attribute: AttributeWithSelection },
    Next { invoke_id_and_priority: u8, block_number: u32 },
    WithList { invoke_id_and_priority: u8, attributes: Vec<AttributeWithSelection> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetResponse {
    Normal { invoke_id_and_priority: u8, result: GetDataResult },
    WithDatablock { invoke_id_and_priority: u8, last_block: bool, block_number: u32, result: BlockResult },
    WithList { invoke_id_and_priority: u8, results: Vec<GetDataResult> },
}

impl GetRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "get-request choice", 3)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => GetRequest::Normal { invoke_id_and_priority, attribute: AttributeWithSelection::decode(r)? },
            2 => GetRequest::Next { invoke_id_and_priority, block_number: r.u32("block-number")? },
            _ => GetRequest::WithList {
                invoke_id_and_priority,
                attributes: xdr::sequence(r, "attribute-descriptor-list", AttributeWithSelection::decode)?,
            },
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_GET_REQUEST);
        match self {
            GetRequest::Normal { invoke_id_and_priority, attribute } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority]);
                attribute.encode(out);
            }
            GetRequest::Next { invoke_id_and_priority, block_number } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            GetRequest::WithList { invoke_id_and_priority, attributes } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority]);
                xdr::put_sequence(out, attributes, |o, a| a.encode(o));
            }
        }
    }
}

impl GetResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "get-response choice", 3)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => GetResponse::Normal { invoke_id_and_priority, result: GetDataResult::decode(r)? },
            2 => {
                let last_block = xdr::boolean(r, "last-block")?;
                let block_number = r.u32("block-number")?;
                let at = r.pos();
                let result = match r.u8("datablock result")? {
                    0 => BlockResult::RawData(xdr::octet_string(r, "raw-data")?),
                    1 => BlockResult::DataAccessResult(r.u8("data-access-result")?),
                    t => return Err(Error::new(Layer::Apdu, "datablock result", at, ErrorKind::UnknownTag(t))),
                };
                GetResponse::WithDatablock { invoke_id_and_priority, last_block, block_number, result }
            }
            _ => GetResponse::WithList {
                invoke_id_and_priority,
                results: xdr::sequence(r, "result list", GetDataResult::decode)?,
            },
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_GET_RESPONSE);
        match self {
            GetResponse::Normal { invoke_id_and_priority, result } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority]);
                result.encode(out);
            }
            GetResponse::WithDatablock { invoke_id_and_priority, last_block, block_number, result } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority, u8::from(*last_block)]);
                out.extend_from_slice(&block_number.to_be_bytes());
                match result {
                    BlockResult::RawData(d) => {
                        out.push(0);
                        xdr::put_octet_string(out, d);
                    }
                    BlockResult::DataAccessResult(v) => out.extend_from_slice(&[1, *v]),
                }
            }
            GetResponse::WithList { invoke_id_and_priority, results } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority]);
                xdr::put_sequence(out, results, |o, x| x.encode(o));
            }
        }
    }
}
