//! The short-name (SN) referencing services of xDLMS (IEC 62056-5-3, DLMS UA
//! Green Book): ReadRequest (0x05), ReadResponse (0x0C), WriteRequest (0x06),
//! WriteResponse (0x0D), UnconfirmedWriteRequest (0x16) and
//! InformationReportRequest (0x18). Every one is a list; targets are named by
//! a Variable-Access-Specification:
//!
//! ```text
//! variable-name           [2] ObjectName (Integer16: the 16-bit short name)
//! detailed-access         [3] (not used by DLMS/COSEM: refused)
//! parameterized-access    [4] { variable-name, selector Unsigned8, parameter Data }
//! block-number-access     [5] { block-number Unsigned16 }
//! read-data-block-access  [6] { last-block BOOLEAN, block-number Unsigned16, raw-data OCTET STRING }
//! write-data-block-access [7] { last-block BOOLEAN, block-number Unsigned16 }
//! ```
//!
//! Read-Data-Result is `data [0] Data | data-access-error [1] Data-Access-Result
//! | data-block-result [2] {last-block, block-number, raw-data} | block-number [3]
//! Unsigned16`; a write result is `success [0] | data-access-error [1] |
//! block-number [2]`. Data stays raw A-XDR (validated); block raw-data is opaque.
//!
//! The current-time of an information report (GeneralizedTime OPTIONAL) is
//! read in either form seen on the wire: 0x00 (absent), 0x01 then an
//! octet-string (the A-XDR OPTIONAL marker), or a length of 2 or more then
//! that many bytes (a COSEM date-time octet-string, as Gurux sends it); it is
//! written in the last form (0x00 when absent, the marker form for a time of
//! under 2 bytes, which the last form cannot carry).

use crate::axdr::Reader;
use crate::error::{Error, ErrorKind, Layer, Result};

use super::xdr;

pub const TAG_READ_REQUEST: u8 = 0x05;
pub const TAG_WRITE_REQUEST: u8 = 0x06;
pub const TAG_READ_RESPONSE: u8 = 0x0c;
pub const TAG_WRITE_RESPONSE: u8 = 0x0d;
pub const TAG_UNCONFIRMED_WRITE_REQUEST: u8 = 0x16;
pub const TAG_INFORMATION_REPORT_REQUEST: u8 = 0x18;

/// The base name of the current association (Association SN, class 12) in
/// every SN logical device: its object_list (attribute 2) is 0xFA08.
pub const CURRENT_ASSOCIATION_BASE_NAME: u16 = 0xFA00;

/// The short name of attribute `attribute` (1-based) of the object at `base`:
/// base + 8 × (attribute − 1).
pub fn attribute_short_name(base: u16, attribute: u8) -> Option<u16> {
    let offset = 8u32 * u32::from(attribute.checked_sub(1)?);
    u16::try_from(u32::from(base) + offset).ok()
}

/// A Variable-Access-Specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableAccess {
    /// variable-name `[2]`: a short name.
    Name(u16),
    /// parameterized-access `[4]`: selective access of an attribute, or the
    /// parameters of a method invoked with Read.
    Parameterized { name: u16, selector: u8, parameters: Vec<u8> },
    /// block-number-access `[5]`: the next block of a long Read answer, after
    /// block `block_number`.
    BlockNumber(u16),
    /// read-data-block-access `[6]`: a block of a long Read request.
    ReadDataBlock { last_block: bool, block_number: u16, raw_data: Vec<u8> },
    /// write-data-block-access `[7]`: a block of a long Write request (its data
    /// travels in the list-of-data).
    WriteDataBlock { last_block: bool, block_number: u16 },
}

/// One Read-Data-Result of a ReadResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Data(Vec<u8>),
    DataAccessError(u8),
    DataBlock { last_block: bool, block_number: u16, raw_data: Vec<u8> },
    BlockNumber(u16),
}

/// One result of a WriteResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Success,
    DataAccessError(u8),
    BlockNumber(u16),
}

/// ReadRequest (0x05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub variables: Vec<VariableAccess>,
}

/// ReadResponse (0x0C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResponse {
    pub results: Vec<ReadResult>,
}

/// WriteRequest (0x06) and UnconfirmedWriteRequest (0x16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    pub variables: Vec<VariableAccess>,
    /// list-of-data: one raw A-XDR value each.
    pub data: Vec<Vec<u8>>,
}

/// WriteResponse (0x0D).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResponse {
    pub results: Vec<WriteResult>,
}

/// InformationReportRequest (0x18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InformationReport {
    /// The current time (a COSEM date-time octet-string, 12 bytes) if sent.
    pub current_time: Option<Vec<u8>>,
    pub variables: Vec<VariableAccess>,
    /// list-of-data: one raw A-XDR value each.
    pub data: Vec<Vec<u8>>,
}

impl VariableAccess {
    /// The short name this access names (None for the block alternatives).
    pub fn name(&self) -> Option<u16> {
        match self {
            VariableAccess::Name(n) | VariableAccess::Parameterized { name: n, .. } => Some(*n),
            _ => None,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        Ok(match r.u8("variable-access-specification")? {
            2 => VariableAccess::Name(r.u16("variable-name")?),
            3 => {
                return Err(Error::new(
                    Layer::Apdu,
                    "variable-access-specification",
                    at,
                    ErrorKind::Unsupported("detailed-access [3] (not used by DLMS/COSEM)"),
                ))
            }
            4 => {
                let name = r.u16("variable-name")?;
                let selector = r.u8("selector")?;
                VariableAccess::Parameterized { name, selector, parameters: xdr::raw_data(r, "parameter")? }
            }
            5 => VariableAccess::BlockNumber(r.u16("block-number")?),
            6 => {
                let last_block = xdr::boolean(r, "last-block")?;
                let block_number = r.u16("block-number")?;
                VariableAccess::ReadDataBlock { last_block, block_number, raw_data: xdr::octet_string(r, "raw-data")? }
            }
            7 => {
                let last_block = xdr::boolean(r, "last-block")?;
                VariableAccess::WriteDataBlock { last_block, block_number: r.u16("block-number")? }
            }
            t => return Err(Error::new(Layer::Apdu, "variable-access-specification", at, ErrorKind::UnknownTag(t))),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            VariableAccess::Name(n) => {
                out.push(2);
                out.extend_from_slice(&n.to_be_bytes());
            }
            VariableAccess::Parameterized { name, selector, parameters } => {
                out.push(4);
                out.extend_from_slice(&name.to_be_bytes());
                out.push(*selector);
                out.extend_from_slice(parameters);
            }
            VariableAccess::BlockNumber(n) => {
                out.push(5);
                out.extend_from_slice(&n.to_be_bytes());
            }
            VariableAccess::ReadDataBlock { last_block, block_number, raw_data } => {
                out.extend_from_slice(&[6, u8::from(*last_block)]);
                out.extend_from_slice(&block_number.to_be_bytes());
                xdr::put_octet_string(out, raw_data);
            }
            VariableAccess::WriteDataBlock { last_block, block_number } => {
                out.extend_from_slice(&[7, u8::from(*last_block)]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
    }
}

impl ReadResult {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        Ok(match r.u8("read-data-result")? {
            0 => ReadResult::Data(xdr::raw_data(r, "data")?),
            1 => ReadResult::DataAccessError(r.u8("data-access-error")?),
            2 => {
                let last_block = xdr::boolean(r, "last-block")?;
                let block_number = r.u16("block-number")?;
                ReadResult::DataBlock { last_block, block_number, raw_data: xdr::octet_string(r, "raw-data")? }
            }
            3 => ReadResult::BlockNumber(r.u16("block-number")?),
            t => return Err(Error::new(Layer::Apdu, "read-data-result", at, ErrorKind::UnknownTag(t))),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ReadResult::Data(d) => {
                out.push(0);
                out.extend_from_slice(d);
            }
            ReadResult::DataAccessError(v) => out.extend_from_slice(&[1, *v]),
            ReadResult::DataBlock { last_block, block_number, raw_data } => {
                out.extend_from_slice(&[2, u8::from(*last_block)]);
                out.extend_from_slice(&block_number.to_be_bytes());
                xdr::put_octet_string(out, raw_data);
            }
            ReadResult::BlockNumber(n) => {
                out.push(3);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
}

impl WriteResult {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.pos();
        Ok(match r.u8("write-result")? {
            0 => WriteResult::Success,
            1 => WriteResult::DataAccessError(r.u8("data-access-error")?),
            2 => WriteResult::BlockNumber(r.u16("block-number")?),
            t => return Err(Error::new(Layer::Apdu, "write-result", at, ErrorKind::UnknownTag(t))),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            WriteResult::Success => out.push(0),
            WriteResult::DataAccessError(v) => out.extend_from_slice(&[1, *v]),
            WriteResult::BlockNumber(n) => {
                out.push(2);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    /// The data-access-result this stands for (success is 0).
    pub fn code(&self) -> Option<u8> {
        match self {
            WriteResult::Success => Some(0),
            WriteResult::DataAccessError(v) => Some(*v),
            WriteResult::BlockNumber(_) => None,
        }
    }
}

fn variables(r: &mut Reader<'_>) -> Result<Vec<VariableAccess>> {
    xdr::sequence(r, "variable-access-specification list", VariableAccess::decode)
}

fn put_variables(out: &mut Vec<u8>, v: &[VariableAccess]) {
    xdr::put_sequence(out, v, |o, a| a.encode(o));
}

fn list_of_data(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>> {
    xdr::sequence(r, "list-of-data", |r| xdr::raw_data(r, "data"))
}

impl ReadRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ReadRequest { variables: variables(r)? })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_READ_REQUEST);
        put_variables(out, &self.variables);
    }
}

impl ReadResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ReadResponse { results: xdr::sequence(r, "read-response list", ReadResult::decode)? })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_READ_RESPONSE);
        self.encode_body(out);
    }
    /// The list without the tag (what a long answer's blocks carry).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        xdr::put_sequence(out, &self.results, |o, x| x.encode(o));
    }
}

impl WriteRequest {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let variables = variables(r)?;
        Ok(WriteRequest { variables, data: list_of_data(r)? })
    }
    /// Encode with `tag` (WriteRequest or UnconfirmedWriteRequest).
    pub fn encode(&self, tag: u8, out: &mut Vec<u8>) {
        out.push(tag);
        put_variables(out, &self.variables);
        xdr::put_sequence(out, &self.data, |o, v| o.extend_from_slice(v));
    }
}

impl WriteResponse {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(WriteResponse { results: xdr::sequence(r, "write-response list", WriteResult::decode)? })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_WRITE_RESPONSE);
        xdr::put_sequence(out, &self.results, |o, x| x.encode(o));
    }
}

impl InformationReport {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let current_time = match r.u8("current-time")? {
            0 => None,
            1 => Some(xdr::octet_string(r, "current-time")?),
            n => Some(r.take(usize::from(n), "current-time")?.to_vec()),
        };
        let variables = variables(r)?;
        Ok(InformationReport { current_time, variables, data: list_of_data(r)? })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_INFORMATION_REPORT_REQUEST);
        match &self.current_time {
            None => out.push(0),
            // A time of 0 or 1 byte would read back as the markers: the OPTIONAL form.
            Some(t) if t.len() < 2 => {
                out.push(1);
                xdr::put_octet_string(out, t);
            }
            Some(t) => xdr::put_octet_string(out, t),
        }
        put_variables(out, &self.variables);
        xdr::put_sequence(out, &self.data, |o, v| o.extend_from_slice(v));
    }
}
