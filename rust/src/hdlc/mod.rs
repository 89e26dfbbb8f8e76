//! HDLC frame format type 3 and its link layer (IEC 62056-46 as described in
//! the DLMS UA Green Book): addresses, the frame codec, SNRM/UA parameter
//! negotiation, a stream framer and the sans-IO link state machine.

pub mod address;
pub mod frame;
pub mod framer;
pub mod link;
pub mod params;

pub use address::Address;
pub use frame::{decode, decode_body, Control, Frame, FrameKind, FLAG};
pub use framer::Framer;
pub use link::{Event, Link, LinkConfig, LinkState, Role, MAX_REASSEMBLY};
pub use params::Parameters;

/// LLC header of a client -> server information field.
pub const LLC_REQUEST: [u8; 3] = [0xE6, 0xE6, 0x00];
/// LLC header of a server -> client information field.
pub const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];

#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;
