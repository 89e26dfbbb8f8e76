//! Block arithmetic shared by both roles: how many bytes of data fit one
//! APDU under a PDU size (ciphering included), splitting, and a reassembly
//! buffer bounded by `max_block_transfer`.

use super::cipher::{ciphered_len, len_prefix, Form};
use crate::error::{Error, ErrorKind, Layer, Result};

/// The size on the wire of a block APDU whose plain header (everything but
/// the data's octet-string) is `header` bytes and which carries `n` data bytes.
pub(crate) fn block_size(header: usize, n: usize, form: Option<Form>) -> usize {
    let plain = header + len_prefix(n) + n;
    match form {
        Some(f) => ciphered_len(plain, f),
        None => plain,
    }
}

/// The most data bytes (at least 1) a block APDU with this plain header can
/// carry within `limit`; `None` when not even one byte fits.
pub(crate) fn fit(limit: usize, header: usize, form: Option<Form>) -> Option<usize> {
    if block_size(header, 1, form) > limit {
        return None;
    }
    let (mut lo, mut hi) = (1usize, limit);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if block_size(header, mid, form) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Split `data` into a first chunk of at most `first` bytes and further
/// chunks of at most `rest` bytes (always at least one chunk).
pub(crate) fn split(data: &[u8], first: usize, rest: usize) -> Vec<Vec<u8>> {
    let first = first.max(1).min(data.len());
    let mut out = vec![data[..first].to_vec()];
    out.extend(data[first..].chunks(rest.max(1)).map(<[u8]>::to_vec));
    out
}

/// Bytes collected from blocks, refused past the ceiling.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    pub buf: Vec<u8>,
}

/// What is reassembled, as the `field` of a ceiling error (the shell reads
/// the part before " (" as the name of the transfer).
pub(crate) const GBT_CEILING: &str = "general-block-transfer (max_block_transfer)";
pub(crate) const DATABLOCKS_CEILING: &str = "data blocks (max_block_transfer)";
pub(crate) const PBLOCKS_CEILING: &str = "pblocks (max_block_transfer)";

impl Reassembly {
    /// Append block `block` of a transfer named `what` (one of the `*_CEILING` fields).
    pub fn push(&mut self, data: &[u8], ceiling: usize, what: &'static str, block: u32) -> Result<()> {
        let length = self.buf.len().saturating_add(data.len());
        if length > ceiling {
            return Err(Error::new(Layer::Apdu, what, 0, ErrorKind::TooLongAtBlock { length, limit: ceiling, block }));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }
}

/// The error for an APDU over a PDU size.
pub(crate) fn too_long(field: &'static str, length: usize, limit: usize) -> Error {
    Error::new(Layer::Apdu, field, 0, ErrorKind::TooLong { length, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_is_the_largest_that_fits() {
        for limit in [20usize, 64, 127, 128, 129, 130, 200, 256, 1000, 65535] {
            for header in [3usize, 9, 14, 100] {
                for form in [None, Some(Form { dedicated: false, general: true, security_control: 0x30 })] {
                    match fit(limit, header, form) {
                        Some(n) => {
                            assert!(block_size(header, n, form) <= limit);
                            assert!(block_size(header, n + 1, form) > limit, "{limit} {header} {n}");
                        }
                        None => assert!(block_size(header, 1, form) > limit),
                    }
                }
            }
        }
    }

    #[test]
    fn split_and_cap() {
        assert_eq!(split(b"abcdefg", 2, 3), vec![b"ab".to_vec(), b"cde".to_vec(), b"fg".to_vec()]);
        assert_eq!(split(b"", 2, 3), vec![Vec::<u8>::new()]);
        let mut r = Reassembly::default();
        r.push(&[0; 10], 15, GBT_CEILING, 1).unwrap();
        let e = r.push(&[0; 6], 15, GBT_CEILING, 2).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLongAtBlock { length: 16, limit: 15, block: 2 });
        assert_eq!(e.field, GBT_CEILING);
    }
}
