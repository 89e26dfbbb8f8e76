//! The one error type of the core: every failure names the layer, the field
//! and the byte offset where it was found, so a field engineer can act on it.

use std::fmt;

/// The protocol layer that rejected the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Hdlc,
    Wrapper,
    Axdr,
    Apdu,
    Ber,
    Security,
    Profile,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Hdlc => "HDLC",
            Layer::Wrapper => "wrapper",
            Layer::Axdr => "A-XDR",
            Layer::Apdu => "xDLMS APDU",
            Layer::Ber => "BER (ACSE)",
            Layer::Security => "security",
            Layer::Profile => "profile buffer",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("truncated: needs {needed} more byte(s), {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("unknown tag 0x{0:02x}")]
    UnknownTag(u8),
    #[error("invalid value {found}: expected {expected}")]
    Invalid { found: String, expected: &'static str },
    #[error("checksum mismatch: computed 0x{computed:04x}, frame carries 0x{carried:04x}")]
    Checksum { computed: u16, carried: u16 },
    #[error("length {length} exceeds the limit {limit}")]
    TooLong { length: usize, limit: usize },
    /// A transfer reassembled from blocks grew past its ceiling at block `block`.
    #[error("{length} bytes up to block {block} exceed the limit {limit}")]
    TooLongAtBlock { length: usize, limit: usize, block: u32 },
    /// Nothing arrived within the response timeout (milliseconds).
    #[error("no answer within {} s", *millis as f64 / 1000.0)]
    NoAnswer { millis: u64 },
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("{0} trailing byte(s) after the value")]
    Trailing(usize),
    #[error("authentication failed: tag does not match (wrong key, or tampered data)")]
    AuthenticationFailed,
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Other(String),
}

/// A typed error of the core. Displays as
/// `HDLC: FCS: checksum mismatch: computed 0x1234, frame carries 0x4321 (at byte 17)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub layer: Layer,
    pub field: &'static str,
    pub offset: usize,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(layer: Layer, field: &'static str, offset: usize, kind: ErrorKind) -> Self {
        Error { layer, field, offset, kind }
    }

    pub fn truncated(layer: Layer, field: &'static str, offset: usize, needed: usize, available: usize) -> Self {
        Error::new(layer, field, offset, ErrorKind::Truncated { needed, available })
    }

    pub fn invalid(
        layer: Layer,
        field: &'static str,
        offset: usize,
        found: impl fmt::Display,
        expected: &'static str,
    ) -> Self {
        Error::new(layer, field, offset, ErrorKind::Invalid { found: found.to_string(), expected })
    }

    /// The same error, found `base` bytes further into an enclosing buffer.
    pub fn shifted(mut self, base: usize) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }

    /// The same error, re-attributed to an enclosing layer (the inner layer stays in the message).
    pub fn within(self, layer: Layer, field: &'static str, base: usize) -> Self {
        let inner = format!("{}", self);
        Error::new(layer, field, base.saturating_add(self.offset), ErrorKind::Other(inner))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {} (at byte {})", self.layer, self.field, self.kind, self.offset)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_layer_field_and_offset() {
        let e = Error::new(Layer::Hdlc, "FCS", 17, ErrorKind::Checksum { computed: 0x1234, carried: 0x4321 });
        assert_eq!(e.to_string(), "HDLC: FCS: checksum mismatch: computed 0x1234, frame carries 0x4321 (at byte 17)");
    }
}
