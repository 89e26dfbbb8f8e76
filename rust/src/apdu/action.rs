//! ACTION-Request (0xC3) and ACTION-Response (0xC7), all alternatives.
//! Method parameters and return data stay raw A-XDR (validated); pblocks are opaque.

use crate::axdr::Reader;
use crate::error::Result;

use super::access::MethodDescriptor;
use super::get::GetDataResult;
use super::set::DataBlockSa;
use super::xdr;

pub const TAG_ACTION_REQUEST: u8 = 0xc3;
pub const TAG_ACTION_RESPONSE: u8 = 0xc7;

/// Action-Response-With-Optional-Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionResult {
    pub result: u8,
    pub return_data: Option<GetDataResult>,
}

impl ActionResult {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let result = r.u8("action-result")?;
        let return_data = if xdr::optional(r, "return-parameters")? { Some(GetDataResult::decode(r)?) } else { None };
        Ok(ActionResult { result, return_data })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.result);
        match &self.return_data {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                d.encode(out);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    Normal { invoke_id_and_priority: u8, method: MethodDescriptor, parameters: Option<Vec<u8>> },
    NextPblock { invoke_id_and_priority: u8, block_number: u32 },
    WithList { invoke_id_and_priority: u8, methods: Vec<MethodDescriptor>, parameters: Vec<Vec<u8>> },
    WithFirstPblock { invoke_id_and_priority: u8, method: MethodDescriptor, block: DataBlockSa },
    WithListAndFirstPblock { invoke_id_and_priority: u8, methods: Vec<MethodDescriptor>, block: DataBlockSa },
    WithPblock { invoke_id_and_priority: u8, block: DataBlockSa },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResponse {
    Normal { invoke_id_and_priority: u8, result: ActionResult },
    WithPblock { invoke_id_and_priority: u8, block: DataBlockSa },
    WithList { invoke_id_and_priority: u8, results: Vec<ActionResult> },
    NextPblock { invoke_id_and_priority: u8, block_number: u32 },
}

impl ActionRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "action-request choice", 6)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => {
                let method = MethodDescriptor::decode(r)?;
                let parameters = if xdr::optional(r, "method-invocation-parameters")? {
                    Some(xdr::raw_data(r, "method-invocation-parameters")?)
                } else {
                    None
                };
                ActionRequest::Normal { invoke_id_and_priority, method, parameters }
            }
            2 => ActionRequest::NextPblock { invoke_id_and_priority, block_number: r.u32("block-number")? },
            3 => {
                let methods = xdr::sequence(r, "method-descriptor-list", MethodDescriptor::decode)?;
                let parameters = xdr::sequence(r, "method-invocation-parameters", |r| {
                    xdr::raw_data(r, "method-invocation-parameters")
                })?;
                ActionRequest::WithList { invoke_id_and_priority, methods, parameters }
            }
            4 => {
                let method = MethodDescriptor::decode(r)?;
                ActionRequest::WithFirstPblock { invoke_id_and_priority, method, block: DataBlockSa::decode(r)? }
            }
            5 => {
                let methods = xdr::sequence(r, "method-descriptor-list", MethodDescriptor::decode)?;
                ActionRequest::WithListAndFirstPblock {
                    invoke_id_and_priority,
                    methods,
                    block: DataBlockSa::decode(r)?,
                }
            }
            _ => ActionRequest::WithPblock { invoke_id_and_priority, block: DataBlockSa::decode(r)? },
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_ACTION_REQUEST);
        match self {
            ActionRequest::Normal { invoke_id_and_priority, method, parameters } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority]);
                method.encode(out);
                match parameters {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        out.extend_from_slice(p);
                    }
                }
            }
            ActionRequest::NextPblock { invoke_id_and_priority, block_number } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            ActionRequest::WithList { invoke_id_and_priority, methods, parameters } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority]);
                xdr::put_sequence(out, methods, |o, m| m.encode(o));
                xdr::put_sequence(out, parameters, |o, p| o.extend_from_slice(p));
            }
            ActionRequest::WithFirstPblock { invoke_id_and_priority, method, block } => {
                out.extend_from_slice(&[4, *invoke_id_and_priority]);
                method.encode(out);
                block.encode(out);
            }
            ActionRequest::WithListAndFirstPblock { invoke_id_and_priority, methods, block } => {
                out.extend_from_slice(&[5, *invoke_id_and_priority]);
                xdr::put_sequence(out, methods, |o, m| m.encode(o));
                block.encode(out);
            }
            ActionRequest::WithPblock { invoke_id_and_priority, block } => {
                out.extend_from_slice(&[6, *invoke_id_and_priority]);
                block.encode(out);
            }
        }
    }
}

impl ActionResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let c = xdr::service_choice(r, "action-response choice", 4)?;
        let invoke_id_and_priority = r.u8("invoke-id-and-priority")?;
        Ok(match c {
            1 => ActionResponse::Normal { invoke_id_and_priority, result: ActionResult::decode(r)? },
            2 => ActionResponse::WithPblock { invoke_id_and_priority, block: DataBlockSa::decode(r)? },
            3 => ActionResponse::WithList {
                invoke_id_and_priority,
                results: xdr::sequence(r, "result list", ActionResult::decode)?,
            },
            _ => ActionResponse::NextPblock { invoke_id_and_priority, block_number: r.u32("block-number")? },
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_ACTION_RESPONSE);
        match self {
            ActionResponse::Normal { invoke_id_and_priority, result } => {
                out.extend_from_slice(&[1, *invoke_id_and_priority]);
                result.encode(out);
            }
            ActionResponse::WithPblock { invoke_id_and_priority, block } => {
                out.extend_from_slice(&[2, *invoke_id_and_priority]);
                block.encode(out);
            }
            ActionResponse::WithList { invoke_id_and_priority, results } => {
                out.extend_from_slice(&[3, *invoke_id_and_priority]);
                xdr::put_sequence(out, results, |o, x| x.encode(o));
            }
            ActionResponse::NextPblock { invoke_id_and_priority, block_number } => {
                out.extend_from_slice(&[4, *invoke_id_and_priority]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
    }
}
