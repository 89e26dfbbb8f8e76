//! General-Block-Transfer (0xE0): block-control (last-block, streaming,
//! window), block-number, block-number-ack and opaque block-data.

use crate::axdr::Reader;
use crate::error::Result;

use super::xdr;

pub const TAG_GENERAL_BLOCK_TRANSFER: u8 = 0xe0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralBlockTransfer {
    pub last_block: bool,
    pub streaming: bool,
    /// Window size, 0..=63 (the low six bits of block-control).
    pub window: u8,
    pub block_number: u16,
    pub block_number_ack: u16,
    pub block_data: Vec<u8>,
}

impl GeneralBlockTransfer {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let control = r.u8("block-control")?;
        let block_number = r.u16("block-number")?;
        let block_number_ack = r.u16("block-number-ack")?;
        let block_data = xdr::octet_string(r, "block-data")?;
        Ok(GeneralBlockTransfer {
            last_block: control & 0x80 != 0,
            streaming: control & 0x40 != 0,
            window: control & 0x3f,
            block_number,
            block_number_ack,
            block_data,
        })
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        let control = (u8::from(self.last_block) << 7) | (u8::from(self.streaming) << 6) | (self.window & 0x3f);
        out.extend_from_slice(&[TAG_GENERAL_BLOCK_TRANSFER, control]);
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.block_number_ack.to_be_bytes());
        xdr::put_octet_string(out, &self.block_data);
    }
}
